/**
 * Several gateways on one store (PostgreSQL). Each gateway keeps its agents' sessions and
 * heartbeats in its own memory; what the others need travels through the store:
 *
 * - Signals: a transaction that changed desired configs, VIP holders or events also sends
 *   them with NOTIFY — delivered only if it commits — so a push decided on gateway B reaches
 *   the agent connected to gateway A. Events travel as sequence ranges and are read back
 *   from the store, so every gateway's event stream is the same.
 * - Liveness: every `livenessSyncMs` each gateway shares what its agents last reported and
 *   takes what the others saw, so the silence sensor and failover scoring see every agent.
 * - Leadership: the silence sensor and the skill runner act on exactly one gateway at a time
 *   — the one holding a lease (a PostgreSQL advisory lock tied to its connection): when that
 *   gateway dies, its connection closes and another takes the lease within a retry interval.
 *
 * On SQLite (one process) none of this runs: the process is always the leader.
 */
import { Clock, Context, Effect, Layer, PubSub } from "effect"
import type { K3sState, Load, WireguardInterfaceState } from "@fleetplane/agent-protocol"
import type { AccountId, InstanceId, VipId } from "../model/ids"
import { Store } from "../store/store"
import { FleetConfig } from "./fleet-config"
import type { LeadershipView } from "./leader-loop"
import { AgentLiveness, type VipProbeObservation } from "./liveness"
import { Signals, type Signal } from "./signals"

/** Whether this process runs the fleet-wide loops (silence sensor, skill runner) right now. */
export class Leadership extends Context.Service<Leadership, LeadershipView>()("@fleetplane/sdk/domain/Leadership") {
  /** One process owns the store: always the leader, and that never changes. */
  static readonly alone = Layer.succeed(Leadership)({ isLeader: () => true, onChange: () => () => {} })
}

/** Signals as they travel between gateways: compact, and small enough for NOTIFY (8 KB). */
type Remote =
  | { readonly t: "D"; readonly i: ReadonlyArray<string> }
  | { readonly t: "V"; readonly a: string; readonly v: string; readonly i: ReadonlyArray<string> }
  | { readonly t: "E"; readonly a: string; readonly f: number; readonly l: number }
  | { readonly t: "N" }

const MAX_PAYLOAD = 7_000
const INSTANCES_PER_MESSAGE = 150

/** The NOTIFY payloads for what a transaction is about to publish. */
export const encodeSignals = (origin: string, signals: ReadonlyArray<Signal>): Array<string> => {
  const messages: Array<Remote> = []
  for (const signal of signals) {
    if (signal._tag === "SignalsMissed") continue
    if (signal._tag === "NetworkSyncRequested") {
      messages.push({ t: "N" })
      continue
    }
    if (signal._tag === "EventsAppended") {
      if (signal.events.length === 0) continue
      messages.push({ t: "E", a: signal.accountId, f: signal.events[0]!.seq, l: signal.events[signal.events.length - 1]!.seq })
      continue
    }
    for (let at = 0; at < signal.instanceIds.length || at === 0; at += INSTANCES_PER_MESSAGE) {
      const ids = signal.instanceIds.slice(at, at + INSTANCES_PER_MESSAGE)
      messages.push(signal._tag === "DesiredConfigsChanged" ? { t: "D", i: ids } : { t: "V", a: signal.accountId, v: signal.vipId, i: ids })
    }
  }
  const payloads: Array<string> = []
  let batch: Array<Remote> = []
  const flush = () => {
    if (batch.length > 0) payloads.push(JSON.stringify({ o: origin, s: batch }))
    batch = []
  }
  for (const message of messages) {
    if (JSON.stringify({ o: origin, s: [...batch, message] }).length > MAX_PAYLOAD) flush()
    batch.push(message)
  }
  flush()
  return payloads
}

const decode = (payload: string): { o: string; s: Array<Remote> } | undefined => {
  try {
    const parsed = JSON.parse(payload) as { o?: unknown; s?: unknown }
    return typeof parsed.o === "string" && Array.isArray(parsed.s) ? (parsed as { o: string; s: Array<Remote> }) : undefined
  } catch {
    return undefined
  }
}

/** Leadership, and the background work that keeps this gateway in step with the others. */
export const sharedStateLayer = Layer.effect(
  Leadership,
  Effect.gen(function* () {
    const store = yield* Store
    const shared = store.shared
    if (shared === undefined) return { isLeader: () => true, onChange: () => () => {} }
    const signals = yield* Signals
    const liveness = yield* AgentLiveness
    const config = yield* FleetConfig

    // Signals from the other gateways, published here as if committed here.
    const deliver = (payload: string) => {
      const message = decode(payload)
      if (message === undefined || message.o === shared.origin) return
      Effect.runFork(
        Effect.gen(function* () {
          const local: Array<Signal> = []
          for (const remote of message.s) {
            if (remote.t === "D") local.push({ _tag: "DesiredConfigsChanged", instanceIds: remote.i as Array<InstanceId> })
            else if (remote.t === "V") local.push({ _tag: "VipHolderChanged", accountId: remote.a as AccountId, vipId: remote.v as VipId, instanceIds: remote.i as Array<InstanceId> })
            else if (remote.t === "N") local.push({ _tag: "NetworkSyncRequested" })
            else {
              const events = yield* store.transaction((tx) => tx.listEvents(remote.a as AccountId, remote.f - 1, remote.l - remote.f + 1))
              local.push({ _tag: "EventsAppended", accountId: remote.a as AccountId, events })
            }
          }
          yield* PubSub.publishAll(signals, local)
        }).pipe(Effect.ignore)
      )
    }
    // After a gap in listening, pushes may have been missed: offer every local agent what it lacks,
    // and tell whatever remembers shared state to read it again.
    const resync = () => {
      const connected = [...liveness.entries()].filter(([, entry]) => entry.connected).map(([id]) => id)
      const missed: Array<Signal> = [{ _tag: "SignalsMissed" }]
      if (connected.length > 0) missed.push({ _tag: "DesiredConfigsChanged", instanceIds: connected })
      Effect.runFork(PubSub.publishAll(signals, missed))
    }
    yield* shared.listen(deliver, resync)

    let leader = false
    const listeners = new Set<() => void>()
    yield* shared.holdLease("leader", config.leaseRetryMs, (held) => {
      if (held === leader) return
      leader = held
      for (const listener of listeners) listener()
    })

    // Liveness: share what changed here, take what is newer elsewhere.
    let sharedUpTo = 0
    let readUpTo = 0
    const syncLiveness = Effect.gen(function* () {
      const started = yield* Clock.currentTimeMillis
      const rows = []
      for (const [instanceId, entry] of liveness.entries()) {
        if (entry.lastSeenAt <= sharedUpTo) continue
        // The load is copied: liveness writes an entry's load in place at its next heartbeat.
        rows.push({ instance_id: instanceId, gateway: shared.origin, last_seen_at: entry.lastSeenAt, connected: entry.connected, k3s: entry.k3s, wireguard: entry.wireguard, load: entry.load === undefined ? undefined : { ...entry.load }, vip_probes: entry.vipProbes })
      }
      yield* shared.publishLiveness(rows)
      for (const row of rows) sharedUpTo = Math.max(sharedUpTo, row.last_seen_at)
      for (const row of yield* shared.readLiveness(readUpTo - config.livenessSyncMs * 2)) {
        if (row.gateway === shared.origin) continue
        liveness.merge(row.instance_id, {
          lastSeenAt: row.last_seen_at,
          connected: row.connected,
          k3s: row.k3s as K3sState | undefined,
          wireguard: row.wireguard as ReadonlyArray<WireguardInterfaceState>,
          load: row.load as Load | undefined,
          vipProbes: (row.vip_probes ?? []) as ReadonlyArray<VipProbeObservation>
        })
      }
      readUpTo = started
    }).pipe(Effect.catch((error) => Effect.logWarning("liveness.sharing_failed", { error: error.message, retry: "next interval" })))
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(syncLiveness, Effect.sleep(config.livenessSyncMs))))

    return {
      isLeader: () => leader,
      onChange: (listener: () => void) => {
        // Wrapped: the same function registered twice is two registrations.
        const registered = () => listener()
        listeners.add(registered)
        return () => void listeners.delete(registered)
      }
    }
  })
)
