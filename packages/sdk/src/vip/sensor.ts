/**
 * R15 + R26: `sdwan_vip_reachability_sensor`. Looks at every VIP holder on the Effect Clock and
 * judges it with two views: its own heartbeats to the gateway, and its peers' probes of the VIP
 * over the overlay (peer-view.ts). One incident per VIP epoch, recorded in the store (so a restart
 * does not repeat it), of one of three kinds:
 *
 *   holder silent, peers do not say the VIP answers   -> `sdwan.vip_holder_silent`, failover skill
 *   holder silent, most peers still reach the VIP     -> `sdwan.vip_holder_gateway_unreachable`,
 *                                                        no failover (an approval says why, under
 *                                                        require_approval)
 *   holder heartbeating, most peers lost the VIP for
 *   the threshold                                     -> `sdwan.vip_unreachable`, failover skill
 *
 * When the holder heartbeats and the VIP answers again, `sdwan.vip_holder_recovered` closes it.
 *
 * Cost when nothing happens (#20): the running sensor keeps the held VIPs in memory (one query,
 * refreshed when a VIP or cluster event says they changed, and every 30 s as a safety net) and
 * sleeps until the earliest deadline among them (when a holder would pass the silence
 * threshold) or until it is rung: a holder heard from or gone, a VIP's peers starting to report
 * probes, a VIP event, the lead taken (domain/leader-loop.ts). It then looks only at the VIPs
 * whose deadline came or whose holder changed. An idle gateway with 1,000 VIPs and no agents
 * wakes once per safety read.
 */
import { Clock, Context, Effect, Layer } from "effect"
import { AgentLiveness, silenceOf } from "../domain/liveness"
import { FleetConfig } from "../domain/fleet-config"
import { makeAlarm, onLeadershipChange, ringOnSignals, whileLeading } from "../domain/leader-loop"
import { Leadership } from "../domain/shared-state"
import { Signals } from "../domain/signals"
import { Transactor } from "../domain/transactor"
import type { InstanceId } from "../model/ids"
import { Store } from "../store/store"
import type { VipIncident, VipRecord } from "../store/records"

type HeldVip = VipRecord & { readonly holder_instance_id: InstanceId }

/** What the running sensor remembers of a VIP between ticks, to skip it while nothing can have changed. */
interface Watched {
  readonly vip: HeldVip
  /** The holder's liveness as last judged. */
  seenAt: number | undefined
  connected: boolean | undefined
  /** Look again at this time even if nothing changed (the holder's silence deadline); 0: every tick. */
  wakeAt: number
}

/** Whether a re-read row changes nothing the sensor judges by. */
const sameJudgement = (a: HeldVip, b: HeldVip) =>
  a.holder_instance_id === b.holder_instance_id &&
  a.holder_peer_id === b.holder_peer_id &&
  a.epoch === b.epoch &&
  a.silent_epoch === b.silent_epoch &&
  a.incident === b.incident &&
  a.holder_since === b.holder_since &&
  a.policy === b.policy

/** Events after which the held VIPs are read again (a VIP created, moved, released, or its incident recorded). */
const changesVips = (type: string) => type.startsWith("sdwan.vip") || type.startsWith("kubernetes.cluster_")
import { holderSince, hostnameOf, runVipFailoverSkill, type FailoverDeps } from "./failover"
import { judgePeerView, type PeerVerdict } from "./peer-view"

/** The incident open at the VIP's current epoch ("none" when there is none; old rows were all holder_silent). */
const openIncident = (vip: VipRecord): VipIncident | "none" => (vip.silent_epoch === vip.epoch ? (vip.incident ?? "holder_silent") : "none")

/** R26: what the holder's silence and the peers' view call for now ("wait": the peers have not had their say yet). */
export const wantedIncident = (silent: boolean, verdict: PeerVerdict): VipIncident | "none" | "wait" =>
  silent
    ? verdict === "reachable"
      ? "gateway_unreachable"
      : verdict === "awaiting_reports"
        ? "wait"
        : "holder_silent"
    : verdict === "unreachable"
      ? "vip_unreachable"
      : "none"

/**
 * The incident to move to, or undefined to stay. An incident whose failover skill ran
 * (`holder_silent`, `vip_unreachable`) stays open until the VIP is healthy again, so the skill
 * runs once per incident; `gateway_unreachable` (no failover) gives way to either as soon as
 * the peers lose the VIP too.
 */
export const nextIncident = (open: VipIncident | "none", wanted: VipIncident | "none" | "wait"): VipIncident | "none" | undefined => {
  if (wanted === "wait" || wanted === open) return undefined
  if (wanted === "none") return open === "none" ? undefined : "none"
  if (open === "none" || open === "gateway_unreachable") return wanted
  return undefined
}

export class VipSensor extends Context.Service<
  VipSensor,
  {
    /** One look at every VIP holder. */
    readonly check: Effect.Effect<void>
    /** Looks at each holder at its deadline, or when it is heard from, a probe comes in, or a VIP changes (at most every `sensorIntervalMs`), forever (fork it). */
    readonly run: Effect.Effect<never>
  }
>()("@fleetplane/sdk/vip/VipSensor") {
  static readonly layer = Layer.effect(
    VipSensor,
    Effect.gen(function* () {
      const store = yield* Store
      const transactor = yield* Transactor
      const liveness = yield* AgentLiveness
      const leadership = yield* Leadership
      const signals = yield* Signals

      /**
       * Judges one held VIP now; records an incident (and runs the failover skill) when one is due.
       * Answers when to look again if nothing changes, and whether the VIP's row changed.
       */
      const judge = (vip: HeldVip, now: number) =>
        Effect.gen(function* () {
          const config = yield* FleetConfig
          const since = holderSince(vip, liveness.startedAt)
          const silence = silenceOf(liveness.get(vip.holder_instance_id), since, now, config)
          const view = judgePeerView({
            observations: liveness.probesOf(vip.id).values(),
            epoch: vip.epoch,
            now,
            holderLastSeenAt: silence.lastSeenAt ?? since,
            silentPastThresholdMs: silence.silent ? silence.silentForMs - silence.allowanceMs - config.silenceThresholdMs : undefined,
            config
          })
          const wanted = wantedIncident(silence.silent, view.verdict)
          const next = nextIncident(openIncident(vip), wanted)
          // When to look again if nothing changes: the holder's silence deadline; every tick while the
          // peers' view is still forming or probes come in; never while an incident stays open as it is.
          const probing = liveness.probesOf(vip.id).size > 0
          const wakeAt = wanted === "wait" || probing ? 0 : silence.silent ? Number.POSITIVE_INFINITY : now + silence.allowanceMs + config.silenceThresholdMs - silence.silentForMs
          if (next === undefined) return { wakeAt, changed: false }
          yield* transactor.transact((ctx) =>
            Effect.gen(function* () {
              // Re-read inside the transaction: an approval or a manual failover may have moved it.
              const current = yield* ctx.tx.getVip(vip.account_id, vip.id)
              if (current === undefined || current.epoch !== vip.epoch || current.holder_peer_id !== vip.holder_peer_id) return
              const open = openIncident(current)
              if (nextIncident(open, wanted) !== next) return
              const about = {
                virtual_ip_id: vip.id,
                cluster_id: vip.cluster_id,
                address: vip.address,
                address_ipv4: vip.address_ipv4,
                holder_peer_id: vip.holder_peer_id,
                holder_hostname: yield* hostnameOf(ctx, vip.account_id, vip.holder_peer_id),
                instance_id: vip.holder_instance_id,
                epoch: vip.epoch
              }
              if (next === "none") {
                // The kind stays recorded: an approval filed for it is judged by it (approveFailover).
                yield* ctx.tx.updateVipIfEpoch(vip.account_id, vip.id, vip.epoch, { silent_epoch: null })
                yield* ctx.emit(vip.account_id, "sdwan.vip_holder_recovered", {
                  virtual_ip_id: vip.id,
                  cluster_id: vip.cluster_id,
                  holder_peer_id: vip.holder_peer_id,
                  epoch: vip.epoch,
                  incident: open,
                  peer_view: view
                })
                return
              }
              yield* ctx.tx.updateVipIfEpoch(vip.account_id, vip.id, vip.epoch, { silent_epoch: vip.epoch, incident: next })
              const silenceFields = {
                // null: no gateway has seen it since it became the holder (or since this process started).
                last_heartbeat_at: silence.lastSeenAt === null ? null : new Date(silence.lastSeenAt).toISOString(),
                last_heartbeat_seen_by: silence.seenBy,
                silent_for_ms: silence.silentForMs,
                threshold_ms: config.silenceThresholdMs,
                // Heard of through another gateway: the sharing delay allowed on top of the threshold.
                sharing_allowance_ms: silence.allowanceMs
              }
              const runsFailover = next !== "gateway_unreachable" || current.policy === "require_approval"
              if (next === "holder_silent") yield* ctx.emit(vip.account_id, "sdwan.vip_holder_silent", { ...about, ...silenceFields, peer_view: view })
              if (next === "gateway_unreachable") {
                yield* ctx.emit(vip.account_id, "sdwan.vip_holder_gateway_unreachable", {
                  ...about,
                  ...silenceFields,
                  peer_view: view,
                  // Automatic policy: nothing moves. require_approval: the operator decides, told why not to.
                  failover: runsFailover ? "approval_requested" : "none"
                })
              }
              if (next === "vip_unreachable") yield* ctx.emit(vip.account_id, "sdwan.vip_unreachable", { ...about, threshold_ms: config.silenceThresholdMs, peer_view: view })
              if (!runsFailover) return
              const deps: FailoverDeps = { liveness, config, now }
              yield* runVipFailoverSkill(ctx, deps, { ...current, silent_epoch: vip.epoch, incident: next }, { incident: next, peerView: view })
            })
          )
          return { wakeAt: 0, changed: true }
        })

      const readHeld = store.transaction((tx) => tx.listHeldVips())

      /** One look at every VIP holder, read from the store now (tests and hosts call this). */
      const check = Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        for (const vip of yield* readHeld) yield* judge(vip, now)
      }).pipe(
        // A failed look (the store was briefly unavailable) is logged and retried on the next tick.
        Effect.catch((error) => Effect.logWarning("vip.sensor_check_failed", { error: error.message, retry: "next tick" }))
      )

      // The running sensor's memory: the held VIPs, read again when `stale` or every `refreshMs`.
      let watched: Array<Watched> | undefined
      let readAt = 0
      let stale = true
      const alarm = makeAlarm()
      let unwatch: (() => void) | undefined
      /** One step of the running sensor; answers when it must look again if nothing rings before. */
      const step = Effect.gen(function* () {
        const config = yield* FleetConfig
        const now = yield* Clock.currentTimeMillis
        const refreshMs = Math.max(5_000, 300 * config.sensorIntervalMs)
        // Signals say when the VIPs changed (here or on another gateway); the periodic read is a safety net.
        if (stale || watched === undefined || now - readAt >= refreshMs) {
          stale = false
          readAt = now
          const previous = new Map((watched ?? []).map((w) => [w.vip.id, w]))
          watched = (yield* readHeld).map((vip) => {
            const before = previous.get(vip.id)
            // The same holder, epoch and incident as before: keep what was judged; otherwise judge afresh.
            return before !== undefined && sameJudgement(before.vip, vip) ? before : { vip, seenAt: undefined, connected: undefined, wakeAt: 0 }
          })
          // A holder heard from (or gone) may have recovered or moved its deadline: the sensor is woken to look.
          unwatch = liveness.watch(new Set(watched.map((w) => w.vip.holder_instance_id)), alarm.ring)
        }
        let nextAt = readAt + refreshMs
        for (const w of watched) {
          const entry = liveness.get(w.vip.holder_instance_id)
          if (now < w.wakeAt && entry?.lastSeenAt === w.seenAt && entry?.connected === w.connected) {
            nextAt = Math.min(nextAt, w.wakeAt)
            continue
          }
          w.seenAt = entry?.lastSeenAt
          w.connected = entry?.connected
          const { wakeAt, changed } = yield* judge(w.vip, now)
          w.wakeAt = wakeAt
          nextAt = Math.min(nextAt, wakeAt)
          if (changed) stale = true
        }
        return stale ? 0 : nextAt
      }).pipe(
        Effect.catch((error) =>
          Effect.sync(() => (stale = true)).pipe(
            Effect.andThen(Effect.logWarning("vip.sensor_check_failed", { error: error.message, retry: "next tick" })),
            Effect.as(0)
          )
        )
      )

      const run = Effect.gen(function* () {
        const config = yield* FleetConfig
        // A VIP created, moved, released or given an incident (here, or by another gateway): read them again.
        yield* ringOnSignals(signals, alarm, (signal) => {
          const vipsChanged =
            signal._tag === "VipHolderChanged" ||
            signal._tag === "SignalsMissed" ||
            (signal._tag === "EventsAppended" && signal.events.some((e) => changesVips(e.type)))
          if (vipsChanged) stale = true
          return vipsChanged
        })
        // Several gateways: only the leader looks (see domain/shared-state.ts); one that just took the lead reads afresh.
        yield* onLeadershipChange(leadership, () => (stale = true))
        // Stopped, it hears no more heartbeats (`step` watches the holders it reads).
        yield* Effect.addFinalizer(() => Effect.sync(() => unwatch?.()))
        return yield* whileLeading(leadership, config.sensorIntervalMs, alarm, step)
      }).pipe(Effect.scoped)

      return VipSensor.of({ check, run })
    })
  )
}
