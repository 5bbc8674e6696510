/**
 * Long operations: `--wait` and `wait` commands poll until a condition holds or a timeout
 * passes, showing progress as one redrawn line on a terminal and as a plain line per change
 * otherwise (CI logs, pipes). A timeout exits 8 and says what was last seen.
 */
import { InvalidArgumentError } from "commander"
import { CliError } from "./admin-client"
import type { Io } from "./output"

export const WAIT_TIMED_OUT_EXIT = 8

/** `90s`, `5m`, `1h`, `1500ms`, or a bare number of seconds. */
export const duration = (value: string): number => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim())
  const amount = match === null ? Number.NaN : Number(match[1])
  if (match === null || !Number.isFinite(amount) || amount <= 0) {
    throw new InvalidArgumentError(`expected a duration such as 90s, 5m or 1h, got "${value.slice(0, 32)}"`)
  }
  return Math.round(amount * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? "s") as "ms" | "s" | "m" | "h"])
}

export const formatDuration = (ms: number) => (ms < 120_000 ? `${Math.round(ms / 1000)}s` : `${Math.round(ms / 60_000)}m`)

export interface Progress {
  /** Shows the current state; unchanged text is not repeated. */
  readonly update: (text: string) => void
  /** Ends the progress line (on a terminal) so what follows starts on a fresh line. */
  readonly done: () => void
}

export const progress = (io: Io, what: string): Progress => {
  let last: string | undefined
  let drawn = false
  const started = Date.now()
  return {
    update: (text) => {
      // On a terminal one line is redrawn (the elapsed time moves even when the state does not);
      // elsewhere a line is printed only when the state changes.
      if (io.isTerminal === true) {
        io.err(`\r\u001b[K${what}: ${text} (${formatDuration(Date.now() - started)})`)
        drawn = true
      } else if (text !== last) {
        io.err(`${what}: ${text}\n`)
      }
      last = text
    },
    done: () => {
      if (drawn) io.err("\n")
      drawn = false
    }
  }
}

export interface WaitOptions {
  readonly io: Io
  /** What is being waited for, as the progress line and the timeout message say it. */
  readonly what: string
  readonly timeoutMs: number
  readonly intervalMs?: number
}

/**
 * Polls `check` until it answers `{ done: true, value }`; each answer's `status` is shown as
 * progress. A `CliError` from `check` ends the wait (a wrong name is not waited out).
 */
export const waitUntil = async <A>(options: WaitOptions, check: () => Promise<{ readonly done: boolean; readonly status: string; readonly value?: A }>): Promise<A> => {
  const shown = progress(options.io, options.what)
  const deadline = Date.now() + options.timeoutMs
  let status = "starting"
  try {
    for (;;) {
      const answer = await check()
      status = answer.status
      shown.update(status)
      if (answer.done) return answer.value as A
      if (Date.now() >= deadline) break
      await new Promise((resolve) => setTimeout(resolve, Math.min(options.intervalMs ?? 1000, Math.max(0, deadline - Date.now()))))
    }
  } finally {
    shown.done()
  }
  throw new CliError(`timed out after ${formatDuration(options.timeoutMs)} waiting for ${options.what}; last seen: ${status}. Raise --timeout, or look at fleetplane events`, WAIT_TIMED_OUT_EXIT, "wait_timed_out", {
    last_status: status
  })
}
