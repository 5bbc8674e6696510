/**
 * What each connected agent last reported, kept in memory only: a heartbeat is a map
 * update, never a database write (STYLE: the hot path is obvious). Times come from the
 * Effect Clock, so tests drive silence with TestClock.
 */
import { Clock, Context, Effect, Layer } from "effect"
import type { K3sState, Load, WireguardInterfaceState } from "@fleetplane/agent-protocol"
import type { InstanceId } from "../model/ids"

export interface AgentLivenessEntry {
  /** Clock millis of the last heartbeat (or of the session start, before the first one). */
  lastSeenAt: number
  /** Learnt from another gateway (shared liveness): `lastSeenAt` may be up to one sharing interval old. */
  fromOtherGateway?: boolean
  connected: boolean
  k3s: K3sState | undefined
  wireguard: ReadonlyArray<WireguardInterfaceState>
  load: Load | undefined
}

export interface AgentLivenessService {
  readonly get: (instanceId: InstanceId) => AgentLivenessEntry | undefined
  /** Heartbeat hot path: one map lookup and a few field writes. */
  readonly recordHeartbeat: (
    instanceId: InstanceId,
    at: number,
    k3s: K3sState,
    wireguard: ReadonlyArray<WireguardInterfaceState>,
    load: Load
  ) => void
  /** A status report: liveness and k3s state only. */
  readonly recordStatus: (instanceId: InstanceId, at: number, k3s: K3sState) => void
  readonly recordConnected: (instanceId: InstanceId, at: number) => void
  readonly recordDisconnected: (instanceId: InstanceId) => void
  /** When the sensor started watching: the baseline for agents not seen since a restart. */
  readonly startedAt: number
  /** Every entry (for sharing with other gateways on one store). */
  readonly entries: () => IterableIterator<[InstanceId, AgentLivenessEntry]>
  /** Takes what another gateway saw, if it is newer than what this one has. */
  readonly merge: (instanceId: InstanceId, seen: AgentLivenessEntry) => void
}

export class AgentLiveness extends Context.Service<AgentLiveness, AgentLivenessService>()("@fleetplane/sdk/domain/AgentLiveness") {
  static readonly layer = Layer.effect(
    AgentLiveness,
    Effect.gen(function* () {
      const startedAt = yield* Clock.currentTimeMillis
      const entries = new Map<InstanceId, AgentLivenessEntry>()
      const entryFor = (instanceId: InstanceId, at: number) => {
        let entry = entries.get(instanceId)
        if (entry === undefined) {
          entry = { lastSeenAt: at, connected: true, k3s: undefined, wireguard: [], load: undefined }
          entries.set(instanceId, entry)
        }
        return entry
      }
      return AgentLiveness.of({
        get: (instanceId) => entries.get(instanceId),
        recordHeartbeat: (instanceId, at, k3s, wireguard, load) => {
          const entry = entryFor(instanceId, at)
          entry.lastSeenAt = at
          entry.fromOtherGateway = false
          entry.k3s = k3s
          entry.wireguard = wireguard
          entry.load = load
        },
        recordStatus: (instanceId, at, k3s) => {
          const entry = entryFor(instanceId, at)
          entry.lastSeenAt = at
          entry.fromOtherGateway = false
          entry.k3s = k3s
        },
        recordConnected: (instanceId, at) => {
          const entry = entryFor(instanceId, at)
          entry.connected = true
          entry.lastSeenAt = at
          entry.fromOtherGateway = false
        },
        recordDisconnected: (instanceId) => {
          const entry = entries.get(instanceId)
          if (entry !== undefined) entry.connected = false
        },
        startedAt,
        entries: () => entries.entries(),
        merge: (instanceId, seen) => {
          const entry = entries.get(instanceId)
          if (entry === undefined || entry.lastSeenAt < seen.lastSeenAt) entries.set(instanceId, { ...seen, fromOtherGateway: true })
        }
      })
    })
  )
}

/**
 * An agent's silence as far as this process can know it (R15), judged so that silence is
 * never declared early, whichever gateway holds the agent's session:
 *
 * - seen here: silent since its last heartbeat;
 * - seen by another gateway: what was shared may be one sharing interval old, and reading it
 *   takes up to another, so `2 × livenessSyncMs` is allowed on top of the threshold;
 * - seen nowhere yet (it became the holder moments ago through another gateway, or this
 *   process just started): judged from `since`, with the same allowance — never from a
 *   process start alone.
 */
export const silenceOf = (
  entry: AgentLivenessEntry | undefined,
  since: number,
  now: number,
  config: { readonly silenceThresholdMs: number; readonly livenessSyncMs: number }
) => {
  const seenHere = entry !== undefined && entry.fromOtherGateway !== true
  const lastSeenAt = entry?.lastSeenAt ?? since
  const allowanceMs = seenHere ? 0 : 2 * config.livenessSyncMs
  const silentForMs = now - lastSeenAt
  return {
    lastSeenAt: entry === undefined ? null : lastSeenAt,
    seenBy: entry === undefined ? null : seenHere ? ("this gateway" as const) : ("another gateway" as const),
    silentForMs,
    allowanceMs,
    silent: silentForMs - allowanceMs >= config.silenceThresholdMs
  }
}

/** Whether an agent counts as silent now (see `silenceOf`). */
export const isSilentNow = (entry: AgentLivenessEntry | undefined, since: number, now: number, config: { readonly silenceThresholdMs: number; readonly livenessSyncMs: number }) =>
  silenceOf(entry, since, now, config).silent
