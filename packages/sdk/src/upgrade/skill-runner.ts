/**
 * Advances every running skill run on the Effect Clock. Runs are rows in the store, so after
 * a restart the runner simply finds them running and carries on. With no run in progress the
 * running loop reads the store only after a `skill.*` event (a run started or resumed, here or
 * on another gateway) and every few seconds as a safety net.
 */
import { Clock, Context, Effect, Layer } from "effect"
import { Signals } from "../domain/signals"
import { makeAlarm, ringOnSignals, whileLeading } from "../domain/leader-loop"
import { Leadership } from "../domain/shared-state"
import { Transactor } from "../domain/transactor"
import { Store } from "../store/store"
import { advanceRollingUpgrade, ROLLING_UPGRADE_SKILL } from "./rolling-upgrade-run"

export const SKILL_RUNNER_INTERVAL_MS = 250
/** With no run in progress and no skill event, the runs are still read this often. */
const IDLE_READ_MS = 5_000

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
      const signals = yield* Signals
      /** Advances every running run; answers how many were running. */
      const advance = Effect.gen(function* () {
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
        return running.length
      }).pipe(Effect.catch((error) => Effect.as(Effect.logWarning("skill.runner_tick_failed", { error: error.message, retry: "next tick" }), 1)))
      const tick = Effect.asVoid(advance)
      const run = Effect.gen(function* () {
        const alarm = makeAlarm()
        yield* ringOnSignals(
          signals,
          alarm,
          (signal) => signal._tag === "SignalsMissed" || (signal._tag === "EventsAppended" && signal.events.some((e) => e.type.startsWith("skill.")))
        )
        // Several gateways: only the leader advances runs (see domain/shared-state.ts). While a run
        // is in progress, every interval; otherwise when a skill event rings, or after IDLE_READ_MS.
        return yield* whileLeading(
          leadership,
          SKILL_RUNNER_INTERVAL_MS,
          alarm,
          Effect.gen(function* () {
            const running = yield* advance
            return running > 0 ? 0 : (yield* Clock.currentTimeMillis) + IDLE_READ_MS
          })
        )
      }).pipe(Effect.scoped)
      return SkillRunner.of({ tick, run })
    })
  )
}
