/**
 * `agent.connected` / `agent.disconnected` in the event log, damped: an agent whose session
 * flaps (a bad link, a crash loop) could otherwise write an event per reconnect. Per instance,
 * at most `maxPerWindow` presence events per `windowMs`; the ones held back are counted and
 * reported (`suppressed_events`) with the next one that is written. Memory only, one small
 * entry per instance; the current state is always in `system_get_instance` (`agent`).
 */
import type { InstanceId } from "../model/ids"

export interface PresenceDecision {
  readonly record: boolean
  /** Presence events held back since the last one recorded (reported with this one). */
  readonly suppressed: number
}

export const createPresenceDamper = (options: { readonly windowMs: number; readonly maxPerWindow: number } = { windowMs: 60_000, maxPerWindow: 4 }) => {
  const entries = new Map<InstanceId, { windowStart: number; recorded: number; suppressed: number }>()
  return {
    /** Whether a presence event for `instanceId` at `now` is recorded. */
    admit: (instanceId: InstanceId, now: number): PresenceDecision => {
      let entry = entries.get(instanceId)
      if (entry === undefined || now - entry.windowStart >= options.windowMs) {
        entry = { windowStart: now, recorded: 0, suppressed: entry?.suppressed ?? 0 }
        entries.set(instanceId, entry)
      }
      if (entry.recorded >= options.maxPerWindow) {
        entry.suppressed++
        return { record: false, suppressed: entry.suppressed }
      }
      entry.recorded++
      const suppressed = entry.suppressed
      entry.suppressed = 0
      return { record: true, suppressed }
    }
  }
}
