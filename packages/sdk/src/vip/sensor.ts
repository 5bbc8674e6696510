/**
 * R15: `sdwan_vip_reachability_sensor`. Looks at every VIP holder on the Effect Clock;
 * when a holder's agent has been silent past the threshold it emits exactly one
 * `sdwan.vip_holder_silent` per incident (the incident is the VIP's epoch, recorded in the
 * store so a restart does not repeat it) and runs the failover skill. When the holder
 * heartbeats again, `sdwan.vip_holder_recovered` closes the incident.
 */
import { Clock, Context, Effect, Layer } from "effect"
import { AgentLiveness, silenceOf } from "../domain/liveness"
import { FleetConfig } from "../domain/fleet-config"
import { Leadership, whileLeading } from "../domain/shared-state"
import { Transactor } from "../domain/transactor"
import { Store } from "../store/store"
import { holderSince, hostnameOf, runVipFailoverSkill, type FailoverDeps } from "./failover"

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
          const entry = liveness.get(holder.instance_id)
          const silence = silenceOf(entry, holderSince(vip, liveness.startedAt), now, config)
          const silent = silence.silent
          const inIncident = vip.silent_epoch === vip.epoch
          if (silent === inIncident) continue
          yield* transactor.transact((ctx) =>
            Effect.gen(function* () {
              // Re-read inside the transaction: an approval or a manual failover may have moved it.
              const current = yield* ctx.tx.getVip(vip.account_id, vip.id)
              if (current === undefined || current.epoch !== vip.epoch || current.holder_peer_id !== vip.holder_peer_id) return
              if (silent) {
                if (current.silent_epoch === current.epoch) return
                yield* ctx.tx.updateVipIfEpoch(vip.account_id, vip.id, vip.epoch, { silent_epoch: vip.epoch })
                yield* ctx.emit(vip.account_id, "sdwan.vip_holder_silent", {
                  virtual_ip_id: vip.id,
                  cluster_id: vip.cluster_id,
                  address: vip.address,
                  address_ipv4: vip.address_ipv4,
                  holder_peer_id: vip.holder_peer_id,
                  holder_hostname: yield* hostnameOf(ctx, vip.account_id, vip.holder_peer_id),
                  instance_id: holder.instance_id,
                  epoch: vip.epoch,
                  // null: no gateway has seen it since it became the holder (or since this process started).
                  last_heartbeat_at: silence.lastSeenAt === null ? null : new Date(silence.lastSeenAt).toISOString(),
                  last_heartbeat_seen_by: silence.seenBy,
                  silent_for_ms: silence.silentForMs,
                  threshold_ms: config.silenceThresholdMs,
                  // Heard of through another gateway: the sharing delay allowed on top of the threshold.
                  sharing_allowance_ms: silence.allowanceMs
                })
                const deps: FailoverDeps = { liveness, config, now }
                yield* runVipFailoverSkill(ctx, deps, { ...current, silent_epoch: vip.epoch })
              } else {
                if (current.silent_epoch !== current.epoch) return
                yield* ctx.tx.updateVipIfEpoch(vip.account_id, vip.id, vip.epoch, { silent_epoch: null })
                yield* ctx.emit(vip.account_id, "sdwan.vip_holder_recovered", {
                  virtual_ip_id: vip.id,
                  cluster_id: vip.cluster_id,
                  holder_peer_id: vip.holder_peer_id,
                  epoch: vip.epoch
                })
              }
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
