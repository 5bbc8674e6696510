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
 */
import { Clock, Context, Effect, Layer } from "effect"
import { AgentLiveness, silenceOf } from "../domain/liveness"
import { FleetConfig } from "../domain/fleet-config"
import { Leadership, whileLeading } from "../domain/shared-state"
import { Transactor } from "../domain/transactor"
import { Store } from "../store/store"
import type { VipIncident, VipRecord } from "../store/records"
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
    /** Checks every `sensorIntervalMs`, forever (fork it). */
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

      const check = Effect.gen(function* () {
        const config = yield* FleetConfig
        const now = yield* Clock.currentTimeMillis
        const held = yield* store.transaction((tx) => tx.listHeldVips())
        for (const vip of held) {
          const holder = yield* store.transaction((tx) => tx.getPeer(vip.account_id, vip.holder_peer_id!))
          if (holder === undefined) continue
          const since = holderSince(vip, liveness.startedAt)
          const silence = silenceOf(liveness.get(holder.instance_id), since, now, config)
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
          if (next === undefined) continue
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
                instance_id: holder.instance_id,
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
        }
      }).pipe(
        // A failed look (the store was briefly unavailable) is logged and retried on the next tick.
        Effect.catch((error) => Effect.logWarning("VIP silence check failed; retrying on the next tick", error.message))
      )

      const run = Effect.gen(function* () {
        const config = yield* FleetConfig
        // Several gateways: only the leader looks (see domain/shared-state.ts).
        return yield* whileLeading(leadership, config.sensorIntervalMs, check)
      })

      return VipSensor.of({ check, run })
    })
  )
}
