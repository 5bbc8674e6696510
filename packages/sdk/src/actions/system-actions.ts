/** The event log and skills (`execute_skill`, `skill_run_status`). */
import { Effect, Schema } from "effect"
import { describeSchemaError } from "@fleetplane/agent-protocol"
import { invalidInput, notFound, stateError } from "../model/errors"
import { newId } from "../model/ids"
import { SkillRunStatus } from "../model/entities"
import { resolveUpgradeScope, validateUpgradeVersion } from "../upgrade/upgrade-targets"
import { planRollingUpgrade } from "../upgrade/rolling-upgrade-plan"
import { abortRollingUpgrade, resumeRollingUpgrade, type RollingUpgradeState } from "../upgrade/rolling-upgrade-run"
import { defineAction, inReadTransaction, inTransaction } from "./action"
import { ExecuteSkillOutput, ListEventsOutput, ListSkillRunsOutput, SkillRunChangeOutput, SkillRunStatusOutput } from "./action-outputs"
import { Ref } from "./input-fields"


export const systemListEvents = defineAction({
  name: "system_list_events",
  description:
    "The account's event log in order, after sequence number `since` (default 0), at most `limit` (default 100, max 1000). With `latest: true`, the newest `limit` events instead (still oldest first).",
  destructive: false,
  access: "read",
  input: Schema.Struct({
    since: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
    limit: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 }))),
    latest: Schema.optionalKey(Schema.Boolean)
  }),
  output: ListEventsOutput,
  run: (input, { accountId }) =>
    inReadTransaction((ctx) =>
      Effect.map(
        input.latest === true ? ctx.tx.listLatestEvents(accountId, input.limit ?? 100) : ctx.tx.listEvents(accountId, input.since ?? 0, input.limit ?? 100),
        (events) => ({ events })
      )
    )
})

const RollingUpgradeInputs = Schema.Struct({
  /** Upgrade this template's instances (the module must be assigned on it)... */
  template_id: Schema.optionalKey(Ref),
  /** ...or every member of this cluster running the module, whatever its template. */
  cluster_id: Schema.optionalKey(Ref),
  module_id: Ref,
  target_version_id: Ref,
  batch_pct: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 })),
  max_consecutive_failures: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 })),
  /** How long an instance may take to report the new version healthy (default 10 minutes). */
  timeout_ms: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 100, maximum: 24 * 3600_000 }))),
  /** Only show the plan (batches, quorum cap, warnings); start nothing. */
  dry_run: Schema.optionalKey(Schema.Boolean)
})

export const executeSkill = defineAction({
  name: "execute_skill",
  description:
    "Run a skill. system-rolling-module-upgrade upgrades a template's instances (template_id) or a cluster's members (cluster_id) in batches (R19: never more control-plane servers down than etcd quorum allows), halting after max_consecutive_failures; dry_run: true shows the plan without starting; skill_run_status shows progress, and a completed run records the cluster's version.",
  destructive: false,
  access: "operate",
  input: Schema.Struct({ skill: Schema.Literal("system-rolling-module-upgrade"), inputs: Schema.Unknown }),
  output: ExecuteSkillOutput,
  run: (input, { accountId }) =>
    Effect.gen(function* () {
      const inputs = yield* Schema.decodeUnknownEffect(RollingUpgradeInputs)(input.inputs, { onExcessProperty: "error" }).pipe(
        Effect.mapError((error) => invalidInput("invalid_input", `invalid inputs for ${input.skill}: ${describeSchemaError(error)}`, { skill: input.skill }))
      )
      yield* validateUpgradeVersion(inputs.target_version_id)
      return yield* inTransaction((ctx) =>
        Effect.gen(function* () {
          const scope = yield* resolveUpgradeScope(ctx, accountId, inputs)
          const plan = planRollingUpgrade(scope.targets, scope.cluster_servers, inputs.batch_pct, inputs.max_consecutive_failures)
          if (inputs.dry_run === true) return { run_id: null, skill: input.skill, status: "preview" as const, module_name: scope.module_name, plan }
          if (scope.targets.length === 0) {
            return yield* stateError("nothing_to_upgrade", `no running instance runs ${scope.module_name} in that scope; there is nothing to upgrade`, { module_name: scope.module_name })
          }
          const id = newId("skillRun")
          const state: RollingUpgradeState = {
            plan,
            module_name: scope.module_name,
            timeout_ms: inputs.timeout_ms ?? 10 * 60_000,
            next_batch: 0,
            in_flight: {},
            completed: [],
            failed: [],
            consecutive_failures: 0,
            max_in_flight_servers: 0,
            clusters: scope.clusters
          }
          // The skill runner advances it from here, batch by batch, and after restarts too.
          yield* ctx.tx.putSkillRun({ id, account_id: accountId, skill: input.skill, status: "running", inputs, state, created_at: ctx.nowIso, updated_at: ctx.nowIso })
          yield* ctx.emit(accountId, "skill.run_started", { run_id: id, skill: input.skill, module_name: scope.module_name, batches: plan.batches.length, warnings: plan.warnings })
          return { run_id: id, skill: input.skill, status: "running" as const, module_name: scope.module_name, plan }
        })
      )
    })
})

export const skillListRuns = defineAction({
  name: "skill_list_runs",
  description: "The account's skill runs (rolling upgrades), newest first, optionally of one status.",
  destructive: false,
  access: "read",
  input: Schema.Struct({ status: Schema.optionalKey(SkillRunStatus) }),
  output: ListSkillRunsOutput,
  run: (input, { accountId }) =>
    inReadTransaction((ctx) =>
      Effect.map(ctx.tx.listSkillRuns(accountId, input.status), (runs) => ({
        runs: runs.map((run) => ({
          run_id: run.id,
          skill: run.skill,
          status: run.status,
          inputs: run.inputs,
          progress: progressOf(run.state as RollingUpgradeState),
          created_at: run.created_at,
          updated_at: run.updated_at
        }))
      }))
    )
})

const progressOf = (state: RollingUpgradeState) => ({
  batches: state.plan.batches.length,
  next_batch: state.next_batch,
  completed: state.completed.length,
  failed: state.failed.length,
  in_flight: Object.keys(state.in_flight).length
})

export const skillRunStatus = defineAction({
  name: "skill_run_status",
  description: "Status and progress of a skill run.",
  destructive: false,
  access: "read",
  input: Schema.Struct({ run_id: Ref }),
  output: SkillRunStatusOutput,
  run: (input, { accountId }) =>
    inReadTransaction((ctx) =>
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
  access: "operate",
  input: Schema.Struct({ run_id: Ref }),
  output: SkillRunChangeOutput,
  run: (input, { accountId }) => inTransaction((ctx) => resumeRollingUpgrade(ctx, accountId, input.run_id))
})

export const skillRunAbort = defineAction({
  name: "skill_run_abort",
  description: "Abort a skill run: nothing more is pushed; instances already upgraded stay upgraded.",
  destructive: false,
  access: "operate",
  input: Schema.Struct({ run_id: Ref }),
  output: SkillRunChangeOutput,
  run: (input, { accountId }) => inTransaction((ctx) => abortRollingUpgrade(ctx, accountId, input.run_id))
})
