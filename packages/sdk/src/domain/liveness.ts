/**
 * What each connected agent last reported, kept in memory only: a heartbeat is a map
 * update, never a database write (STYLE: the hot path is obvious). Times come from the
 * Effect Clock, so tests drive silence with TestClock.
 */
import { Clock, Context, Effect, Layer } from "effect"
import type { K3sState, Load, VipProbeReport, WireguardInterfaceState } from "@fleetplane/agent-protocol"
import type { InstanceId } from "../model/ids"
import { internedOwnStrings, ownString, type Interned } from "./interned"

/** A reporter's latest probe of one VIP (R26), in this process's clock millis. */
export interface VipProbeObservation {
  readonly vipId: string
  readonly epoch: number
  readonly ok: boolean
  readonly rttMs: number | null
  /** When the probe finished. */
  readonly probedAt: number
  /** When the VIP stopped answering this reporter (null when `ok`, or when it has not answered it at this epoch yet). */
  readonly failingSince: number | null
  readonly holderOk: boolean | null
}

/** A heartbeat's reports, made absolute against the time the heartbeat arrived. */
export const observationsOf = (at: number, reports: ReadonlyArray<VipProbeReport>): ReadonlyArray<VipProbeObservation> =>
  reports.map((r) => {
    const probedAt = at - r.age_ms
    return { vipId: r.vip_id, epoch: r.epoch, ok: r.ok, rttMs: r.rtt_ms, probedAt, failingSince: r.ok || r.failing_for_ms === null ? null : probedAt - r.failing_for_ms, holderOk: r.holder_ok }
  })

export interface AgentLivenessEntry {
  /** Clock millis of the last heartbeat (or of the session start, before the first one). */
  lastSeenAt: number
  /** Learnt from another gateway (shared liveness): `lastSeenAt` may be up to one sharing interval old. */
  fromOtherGateway?: boolean
  connected: boolean
  k3s: K3sState | undefined
  wireguard: ReadonlyArray<WireguardInterfaceState>
  load: Load | undefined
  /** R26: what this agent last reported of the VIPs it probes (empty unless it is a reporter). */
  vipProbes: ReadonlyArray<VipProbeObservation>
}

export interface AgentLivenessService {
  readonly get: (instanceId: InstanceId) => AgentLivenessEntry | undefined
  /** Heartbeat hot path: one map lookup and a few field writes. */
  readonly recordHeartbeat: (
    instanceId: InstanceId,
    at: number,
    k3s: K3sState,
    wireguard: ReadonlyArray<WireguardInterfaceState>,
    load: Load,
    vipProbes?: ReadonlyArray<VipProbeReport>
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
  /** R26: every reporter's latest observation of one VIP (an index, so the sensor never scans all agents). */
  readonly probesOf: (vipId: string) => ReadonlyMap<InstanceId, VipProbeObservation>
  /**
   * An alarm (the silence sensor's): `ring` is called when one of `instances` is heard from,
   * connects or disconnects (here or through another gateway), and when a VIP gets its first
   * probe report. Watching again with the same `ring` replaces its set; the answer stops it.
   * A set lookup per watcher on the heartbeat path.
   */
  readonly watch: (instances: ReadonlySet<InstanceId>, ring: () => void) => () => void
}

/** One shared empty list for every entry that has none (at 10,000 agents, an empty array each adds up). */
const NOTHING: ReadonlyArray<never> = Object.freeze([])

/*
 * A heartbeat's decoded objects kept until the next heartbeat (5 s) outlive V8's young
 * generation and are promoted, so the old generation fills with the previous heartbeat's state at
 * the heartbeat rate (2,000/s at 10,000 agents) until a full collection. So an entry keeps the
 * objects it has while a heartbeat repeats them (the usual case: k3s and tunnels change rarely),
 * and its load is always a copy of its own (made by `recordHeartbeat` and `merge`, the only
 * writers), written in place.
 */
const sameK3s = (kept: K3sState | undefined, next: K3sState) =>
  kept !== undefined && kept.service === next.service && kept.node_ready === next.node_ready && kept.version === next.version && kept.pod_cidr === next.pod_cidr

const sameWireguard = (kept: ReadonlyArray<WireguardInterfaceState>, next: ReadonlyArray<WireguardInterfaceState>) => {
  if (kept.length !== next.length) return false
  for (let i = 0; i < kept.length; i++) {
    const a = kept[i]!
    const b = next[i]!
    if (a.network_id !== b.network_id || a.peers !== b.peers || a.fresh_handshakes !== b.fresh_handshakes) return false
  }
  return true
}

/**
 * The strings an entry keeps from a heartbeat, made its own (`ownString`: a slice of the frame
 * would keep the whole ~240-byte frame, as a heap snapshot of 2,000 sessions showed). Values
 * the fleet reports alike (k3s state and version, network ids) are kept once. Only when a
 * heartbeat changes what an entry holds: rare.
 */
type SharedString = Interned<string>

const keptK3s = (k3s: K3sState, shared: SharedString): K3sState => ({
  service: shared.of(k3s.service) as K3sState["service"],
  node_ready: k3s.node_ready,
  ...(k3s.version === undefined ? {} : { version: shared.of(k3s.version) }),
  // Each node's own: copied, not shared.
  ...(k3s.pod_cidr === undefined ? {} : { pod_cidr: ownString(k3s.pod_cidr) })
})

const keptWireguard = (wireguard: ReadonlyArray<WireguardInterfaceState>, shared: SharedString): ReadonlyArray<WireguardInterfaceState> =>
  wireguard.length === 0 ? NOTHING : wireguard.map((state) => ({ network_id: shared.of(state.network_id), peers: state.peers, fresh_handshakes: state.fresh_handshakes }))

type OwnLoad = { cpu_ratio: number; memory_ratio: number }
const copyOf = (load: Load | undefined): OwnLoad | undefined => (load === undefined ? undefined : { cpu_ratio: load.cpu_ratio, memory_ratio: load.memory_ratio })

export class AgentLiveness extends Context.Service<AgentLiveness, AgentLivenessService>()("@fleetplane/sdk/domain/AgentLiveness") {
  static readonly layer = Layer.effect(
    AgentLiveness,
    Effect.gen(function* () {
      const startedAt = yield* Clock.currentTimeMillis
      const entries = new Map<InstanceId, AgentLivenessEntry>()
      const shared = internedOwnStrings()
      const byVip = new Map<string, Map<InstanceId, VipProbeObservation>>()
      const NONE: ReadonlyMap<InstanceId, VipProbeObservation> = new Map()
      // Per alarm, the instances it watches (one sensor per process today; a second must not silence the first).
      const watchers = new Map<() => void, ReadonlySet<InstanceId>>()
      // On the heartbeat path: forEach, so no iterator or entry pair is allocated per heartbeat.
      const heard = (instanceId: InstanceId) => {
        watchers.forEach((instances, ring) => {
          if (instances.has(instanceId)) ring()
        })
      }
      const ringAll = () => watchers.forEach((_, ring) => ring())
      const entryFor = (instanceId: InstanceId, at: number) => {
        let entry = entries.get(instanceId)
        if (entry === undefined) {
          entry = { lastSeenAt: at, connected: true, k3s: undefined, wireguard: NOTHING, load: undefined, vipProbes: NOTHING }
          entries.set(instanceId, entry)
        }
        return entry
      }
      /** Keeps the per-VIP index in step with an entry's reports; nothing to do for the many agents that report none. */
      const setProbes = (instanceId: InstanceId, entry: AgentLivenessEntry, next: ReadonlyArray<VipProbeObservation>) => {
        if (entry.vipProbes.length === 0 && next.length === 0) return
        for (const old of entry.vipProbes) byVip.get(old.vipId)?.delete(instanceId)
        for (const observation of next) {
          let reporters = byVip.get(observation.vipId)
          if (reporters === undefined) byVip.set(observation.vipId, (reporters = new Map()))
          // A VIP's peers start reporting: the sensor judges it by their view from now on.
          if (reporters.size === 0) ringAll()
          reporters.set(instanceId, observation)
        }
        entry.vipProbes = next.length === 0 ? NOTHING : next
      }
      return AgentLiveness.of({
        get: (instanceId) => entries.get(instanceId),
        recordHeartbeat: (instanceId, at, k3s, wireguard, load, vipProbes) => {
          const entry = entryFor(instanceId, at)
          entry.lastSeenAt = at
          entry.fromOtherGateway = false
          if (!sameK3s(entry.k3s, k3s)) entry.k3s = keptK3s(k3s, shared)
          if (!sameWireguard(entry.wireguard, wireguard)) entry.wireguard = keptWireguard(wireguard, shared)
          // The entry's own copy (never an object it was given): written in place.
          const own = entry.load as OwnLoad | undefined
          if (own === undefined) entry.load = copyOf(load)
          else {
            own.cpu_ratio = load.cpu_ratio
            own.memory_ratio = load.memory_ratio
          }
          setProbes(instanceId, entry, vipProbes === undefined || vipProbes.length === 0 ? [] : observationsOf(at, vipProbes))
          heard(instanceId)
        },
        recordStatus: (instanceId, at, k3s) => {
          const entry = entryFor(instanceId, at)
          entry.lastSeenAt = at
          entry.fromOtherGateway = false
          if (!sameK3s(entry.k3s, k3s)) entry.k3s = keptK3s(k3s, shared)
          heard(instanceId)
        },
        recordConnected: (instanceId, at) => {
          const entry = entryFor(instanceId, at)
          entry.connected = true
          entry.lastSeenAt = at
          entry.fromOtherGateway = false
          heard(instanceId)
        },
        recordDisconnected: (instanceId) => {
          const entry = entries.get(instanceId)
          if (entry !== undefined) entry.connected = false
          heard(instanceId)
        },
        startedAt,
        entries: () => entries.entries(),
        merge: (instanceId, seen) => {
          const entry = entries.get(instanceId)
          if (entry !== undefined && entry.lastSeenAt >= seen.lastSeenAt) return
          const merged: AgentLivenessEntry = { ...seen, load: copyOf(seen.load), vipProbes: entry?.vipProbes ?? [], fromOtherGateway: true }
          entries.set(instanceId, merged)
          setProbes(instanceId, merged, seen.vipProbes)
          heard(instanceId)
        },
        probesOf: (vipId) => byVip.get(vipId) ?? NONE,
        watch: (instances, ring) => {
          watchers.set(ring, instances)
          return () => void watchers.delete(ring)
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
