/** The event log and skills (`execute_skill`, `skill_run_status`). */
import { Effect, Schema } from "effect"
import { invalidInput, notFound } from "../model/errors"
import { newId } from "../model/ids"
import { requireTemplate } from "../inventory/inventory-lookups"
import { planRollingUpgrade } from "../upgrade/rolling-upgrade-plan"
import { abortRollingUpgrade, resumeRollingUpgrade, type RollingUpgradeState } from "../upgrade/rolling-upgrade-run"
import { defineAction, inTransaction } from "./action"

const Ref = Schema.String.check(Schema.isMaxLength(128))

export const systemListEvents = defineAction({
  name: "system_list_events",
  description: "The account's event log in order, after sequence number `since` (default 0), at most `limit` (default 100, max 1000).",
  destructive: false,
  input: Schema.Struct({
    since: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
    limit: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 })))
  }),
  run: (input, { accountId }) =>
    inTransaction((ctx) => Effect.map(ctx.tx.listEvents(accountId, input.since ?? 0, input.limit ?? 100), (events) => ({ events })))
})

const RollingUpgradeInputs = Schema.Struct({
  template_id: Ref,
  module_id: Ref,
  target_version_id: Ref,
  batch_pct: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 })),
  max_consecutive_failures: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 })),
  /** How long an instance may take to report the new version healthy (default 10 minutes). */
  timeout_ms: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 100, maximum: 24 * 3600_000 })))
})

export const executeSkill = defineAction({
  name: "execute_skill",
  description:
    "Run a skill. system-rolling-module-upgrade upgrades a template's instances in batches (R19: never more control-plane servers down than etcd quorum allows), halting after max_consecutive_failures; skill_run_status shows progress.",
  destructive: false,
  input: Schema.Struct({ skill: Schema.Literal("system-rolling-module-upgrade"), inputs: Schema.Unknown }),
  run: (input, { accountId }) =>
    Effect.gen(function* () {
      const inputs = yield* Schema.decodeUnknownEffect(RollingUpgradeInputs)(input.inputs).pipe(
        Effect.mapError((error) => invalidInput("invalid_input", `invalid inputs for ${input.skill}: ${error.message}`, { skill: input.skill }))
      )
      return yield* inTransaction((ctx) =>
        Effect.gen(function* () {
          const template = yield* requireTemplate(ctx, accountId, inputs.template_id)
          const instances = yield* ctx.tx.listInstancesOfTemplate(accountId, template.id)
          const targets = []
          let clusterServers = 0
          const counted = new Set<string>()
          for (const instance of instances) {
            const membership = yield* ctx.tx.findKubernetesNodeOfInstance(accountId, instance.id)
            targets.push({ instance_id: instance.id, role: membership?.role ?? null })
            if (membership !== undefined && !counted.has(membership.cluster_id)) {
              counted.add(membership.cluster_id)
              clusterServers += (yield* ctx.tx.listKubernetesNodes(accountId, membership.cluster_id)).filter((n) => n.role === "control-plane").length
            }
          }
          const plan = planRollingUpgrade(targets, clusterServers, inputs.batch_pct, inputs.max_consecutive_failures)
          const moduleName = template.modules.find((m) => inputs.module_id.includes(m.module_name))?.module_name ?? template.modules[0]?.module_name
          if (moduleName === undefined) {
            return yield* invalidInput("template_has_no_module", `template ${template.id} has no module assigned; there is nothing to upgrade`, { template_id: template.id })
          }
          const id = newId("skillRun")
          const state: RollingUpgradeState = {
            plan,
            module_name: moduleName,
            timeout_ms: inputs.timeout_ms ?? 10 * 60_000,
            next_batch: 0,
            in_flight: {},
            completed: [],
            failed: [],
            consecutive_failures: 0,
            max_in_flight_servers: 0
          }
          // The skill runner advances it from here, batch by batch, and after restarts too.
          yield* ctx.tx.putSkillRun({ id, account_id: accountId, skill: input.skill, status: "running", inputs, state, created_at: ctx.nowIso, updated_at: ctx.nowIso })
          yield* ctx.emit(accountId, "skill.run_started", { run_id: id, skill: input.skill, batches: plan.batches.length, warnings: plan.warnings })
          return { run_id: id, skill: input.skill, status: "running", plan }
        })
      )
    })
})

export const skillRunStatus = defineAction({
  name: "skill_run_status",
  description: "Status and progress of a skill run.",
  destructive: false,
  input: Schema.Struct({ run_id: Ref }),
  run: (input, { accountId }) =>
    inTransaction((ctx) =>
      Effect.gen(function* () {
        const run = yield* ctx.tx.getSkillRun(accountId, input.run_id)
        if (run === undefined) return yield* notFound("skill_run_not_found", `skill run ${input.run_id} does not exist in this account`, { run_id: input.run_id })
        return { run_id: run.id, skill: run.skill, status: run.status, inputs: run.inputs, state: run.state, created_at: run.created_at, updated_at: run.updated_at }
      })
    )
})

export const skillRunResume = defineAction({
  name: "skill_run_resume",
  description: "Resume a halted skill run (after fixing what made its instances fail).",
  destructive: false,
  input: Schema.Struct({ run_id: Ref }),
  run: (input, { accountId }) => inTransaction((ctx) => resumeRollingUpgrade(ctx, accountId, input.run_id))
})

export const skillRunAbort = defineAction({
  name: "skill_run_abort",
  description: "Abort a skill run: nothing more is pushed; instances already upgraded stay upgraded.",
  destructive: false,
  input: Schema.Struct({ run_id: Ref }),
  run: (input, { accountId }) => inTransaction((ctx) => abortRollingUpgrade(ctx, accountId, input.run_id))
})
