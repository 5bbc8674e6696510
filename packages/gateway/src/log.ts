/**
 * Structured logs: one JSON object per line on stderr, with a level filter. Callers pass
 * fields, never whole messages or configs, so credentials, tokens and keys stay out. The SDK
 * logs in the same format through Effect's logger (sdk/src/domain/logging.ts); the gateway
 * relays its lines here, so there is one stream, one format and one `--log-level`.
 */
import { Cause } from "effect"

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent"

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

export interface Logger {
  readonly debug: (event: string, fields?: Record<string, unknown>) => void
  readonly info: (event: string, fields?: Record<string, unknown>) => void
  readonly warn: (event: string, fields?: Record<string, unknown>) => void
  readonly error: (event: string, fields?: Record<string, unknown>) => void
}

export const createLogger = (level: LogLevel = "info", write: (line: string) => void = (line) => process.stderr.write(line)): Logger => {
  const at = (lineLevel: Exclude<LogLevel, "silent">) => (event: string, fields: Record<string, unknown> = {}) => {
    if (ORDER[lineLevel] < ORDER[level]) return
    write(`${JSON.stringify({ time: new Date().toISOString(), level: lineLevel, event, ...fields })}\n`)
  }
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") }
}

/** A JSON line from the SDK's logger (same format), handed to this logger so its level and writer apply. */
export const relayLogLine = (log: Logger, line: string) => {
  try {
    const { level, event, time: _time, ...fields } = JSON.parse(line) as { level: keyof Logger; event: string; time: string } & Record<string, unknown>
    ;(log[level] ?? log.info)(event, fields)
  } catch {
    log.warn("log.unreadable_line", { length: line.length })
  }
}

/** What failed, as a log field: the message of an Error, of a Cause's error, or the thrown value. */
export const failureMessage = (failure: unknown): string => {
  const error = Cause.isCause(failure) ? Cause.squash(failure) : failure
  return error instanceof Error ? error.message : String(error)
}
