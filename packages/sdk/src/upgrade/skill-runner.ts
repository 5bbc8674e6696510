/**
 * Advances every running skill run on the Effect Clock. Runs are rows in the store, so after
 * a restart the runner simply finds them running and carries on.
 */
import { Context, Effect, Layer } from "effect"
import { Leadership, whileLeading } from "../domain/shared-state"
import { Transactor } from "../domain/transactor"
import { Store } from "../store/store"
import { advanceRollingUpgrade, ROLLING_UPGRADE_SKILL } from "./rolling-upgrade-run"

export const SKILL_RUNNER_INTERVAL_MS = 250

export class SkillRunner extends Context.Service<
  SkillRunner,
  {
    readonly tick: Effect.Effect<void>
    readonly run: Effect.Effect<never>
  }
>()("@fleetplane/sdk/upgrade/SkillRunner") {
  static readonly layer = Layer.effect(
    SkillRunner,
    Effect.gen(function* () {
      const store = yield* Store
      const { transact } = yield* Transactor
      const leadership = yield* Leadership
      const tick = Effect.gen(function* () {
        const running = yield* store.transaction((tx) => tx.listSkillRunsByStatus("running"))
        for (const run of running) {
          if (run.skill !== ROLLING_UPGRADE_SKILL) continue
          yield* transact((ctx) =>
            Effect.gen(function* () {
              const current = yield* ctx.tx.getSkillRun(run.account_id, run.id)
              if (current === undefined) return
              const roles = new Map<string, string | null>()
              for (const batch of (current.state as { plan: { batches: ReadonlyArray<ReadonlyArray<string>> } }).plan.batches) {
                for (const id of batch) roles.set(id, (yield* ctx.tx.findKubernetesNodeOfInstance(run.account_id, id as never))?.role ?? null)
              }
              yield* advanceRollingUpgrade(ctx, current, roles)
            })
          )
        }
      }).pipe(Effect.catch((error) => Effect.logWarning("skill runner tick failed; retrying on the next tick", error.message)))
      // Several gateways: only the leader advances runs (see domain/shared-state.ts).
      const run = whileLeading(leadership, SKILL_RUNNER_INTERVAL_MS, tick)
      return SkillRunner.of({ tick, run })
    })
  )
}
