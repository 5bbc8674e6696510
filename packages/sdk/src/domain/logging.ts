/**
 * One log stream for the SDK and its host: Effect's logger, writing one JSON object per line
 * (`{ time, level, event, ...fields }`, the gateway's format), filtered by a level. Hosts pass
 * `logging: { level, write }` to `createFleet` / `fleetLayer` (the gateway hands over its own
 * writer and `--log-level`); by default lines go to stderr at `info`.
 *
 * Log calls name an event and pass fields, never whole messages or configs, so secrets stay out:
 * `Effect.logWarning("vip.sensor_check_failed", { error: error.message })`.
 */
import { Cause, Layer, Logger, References } from "effect"
import type { LogLevel as EffectLogLevel } from "effect/LogLevel"

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent"

export interface LoggingOptions {
  /** Lines below this level are dropped (default `info`); `silent` drops everything. */
  readonly level?: LogLevel
  /** Where each line goes (default: stderr). */
  readonly write?: (line: string) => void
}

const EFFECT_LEVELS: Record<LogLevel, EffectLogLevel> = { debug: "Debug", info: "Info", warn: "Warn", error: "Error", silent: "None" }
const NAMES: Partial<Record<EffectLogLevel, Exclude<LogLevel, "silent">>> = { Trace: "debug", Debug: "debug", Info: "info", Warn: "warn", Error: "error", Fatal: "error" }

/** A line from Effect's log call: the first string is the event, objects are fields, other strings `detail`. */
export const jsonLogLine = (options: { readonly message: unknown; readonly logLevel: EffectLogLevel; readonly cause: Cause.Cause<unknown>; readonly date: Date }) => {
  const parts = Array.isArray(options.message) ? options.message : [options.message]
  const [first, ...rest] = parts
  const fields: Record<string, unknown> = {}
  const details: Array<string> = []
  for (const part of rest) {
    if (part !== null && typeof part === "object" && !Array.isArray(part)) Object.assign(fields, part)
    else details.push(String(part))
  }
  return `${JSON.stringify({
    time: options.date.toISOString(),
    level: NAMES[options.logLevel] ?? "info",
    event: typeof first === "string" ? first : JSON.stringify(first),
    ...fields,
    ...(details.length === 0 ? {} : { detail: details.join(" ") }),
    ...(Cause.hasFails(options.cause) || Cause.hasDies(options.cause) ? { cause: Cause.pretty(options.cause) } : {})
  })}\n`
}

/** Effect's loggers replaced by the JSON-lines one, and the minimum level set. */
export const loggingLayer = (options: LoggingOptions = {}) => {
  const write = options.write ?? ((line: string) => void process.stderr.write(line))
  return Layer.mergeAll(
    Logger.layer([Logger.make((entry) => write(jsonLogLine(entry)))]),
    Layer.succeed(References.MinimumLogLevel)(EFFECT_LEVELS[options.level ?? "info"])
  )
}
