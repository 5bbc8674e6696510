/**
 * The account's event stream (`GET /v1/events`, server-sent events) as the CLI follows it:
 * `events --follow` and `--watch`. After a dropped stream (a gateway restart) it reconnects
 * with backoff from the last event seen, so nothing is missed or repeated.
 */
import { CliError } from "./admin-client"
import type { CliSession } from "./cli-session"

export interface FleetEventLine {
  readonly seq: number
  readonly type: string
  readonly at: string
  readonly data: Record<string, any>
}

/** Reads the stream from `since` until it ends; a refused stream is a CliError, an unreachable gateway exit code 10. */
const readStream = (session: CliSession, since: number, onOpen: () => void, onEvent: (event: FleetEventLine) => void) =>
  session.api().events(since, { onOpen, onEvent: (event) => onEvent(event as FleetEventLine) })

/** The newest event's sequence number (0 when there is none): follow from it to see only what comes next. */
export const latestEventSeq = async (session: CliSession): Promise<number> =>
  ((await session.run("system_list_events", { latest: true, limit: 1 })).events as Array<FleetEventLine>).at(-1)?.seq ?? 0

/** Follows events after `since` ("latest": from now on) until the process is interrupted. */
export const followEventStream = async (session: CliSession, since: number | "latest", onEvent: (event: FleetEventLine) => void): Promise<never> => {
  let from = since === "latest" ? await latestEventSeq(session) : since
  let streamed = false
  for (let attempt = 0; ; attempt++) {
    const ended = await readStream(session, from, () => (streamed = true), (event) => {
      from = event.seq
      attempt = 0
      onEvent(event)
    }).then(
      () => "the stream ended",
      (error: unknown) => {
        // A gateway that was never reached is a mistake to report (wrong --url), not to wait out.
        if (error instanceof CliError && (error.exitCode !== 10 || !streamed)) throw error
        return error instanceof Error ? error.message : String(error)
      }
    )
    const delay = Math.min(10_000, 250 * 2 ** Math.min(attempt, 6))
    session.io.err(`(${ended}; reconnecting from event ${from} in ${(delay / 1000).toFixed(1)} s)\n`)
    await new Promise((resolve) => setTimeout(resolve, delay))
  }
}
