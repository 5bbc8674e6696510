/**
 * Executing a rolling module upgrade (R19) against live agents. The run's whole state lives
 * in its skill_runs row, so a restarted gateway picks it up where it was. Each step:
 * an instance of the current batch succeeds when its agent acks the `module_upgrade` push
 * (the agent acks once the new version runs healthy), fails on a failed ack or when
 * `timeout_ms` passes without one; `max_consecutive_failures` consecutive failures halt
 * the run; a batch starts only when the previous one is done.
 */
import { Effect } from "effect"
import type { TxContext } from "../domain/transactor"
import { putDesired } from "../config/desired-configs"
import { notFound, stateError } from "../model/errors"
import type { AccountId, InstanceId } from "../model/ids"
import type { SkillRunRecord } from "../store/records"
import type { SkillRunStatus } from "../model/entities"
import type { RollingUpgradePlan } from "./rolling-upgrade-plan"
import { recordClusterVersions } from "./upgrade-targets"

export const ROLLING_UPGRADE_SKILL = "system-rolling-module-upgrade"

export type RunStatus = SkillRunStatus

export interface RollingUpgradeState {
  readonly plan: RollingUpgradePlan
  readonly module_name: "k3s-server" | "k3s-agent"
  readonly timeout_ms: number
  /** Index of the next batch to start. */
  readonly next_batch: number
  /** Instances upgrading now: when their push went out, and its version. */
  readonly in_flight: Readonly<Record<string, { readonly started_at_ms: number; readonly version: number }>>
  readonly completed: ReadonlyArray<string>
  readonly failed: ReadonlyArray<{ readonly instance_id: string; readonly reason: string }>
  readonly consecutive_failures: number
  /** The most instances upgrading at once so far (for the quorum guarantee). */
  readonly max_in_flight_servers: number
  /** Each cluster the run touches and the instances of it it upgrades (its version is recorded when all succeed). */
  readonly clusters?: Readonly<Record<string, ReadonlyArray<string>>>
}

export interface RollingUpgradeInputs {
  readonly module_id: string
  readonly target_version_id: string
  readonly max_consecutive_failures: number
}

const save = (ctx: TxContext, run: SkillRunRecord, status: RunStatus, state: RollingUpgradeState) =>
  ctx.tx.putSkillRun({ ...run, status, state, updated_at: ctx.nowIso })

/** One step of a running upgrade; a no-op for runs that are not running. */
export const advanceRollingUpgrade = (ctx: TxContext, run: SkillRunRecord, roles: ReadonlyMap<string, string | null>) =>
  Effect.gen(function* () {
    if (run.status !== "running") return
    const inputs = run.inputs as RollingUpgradeInputs
    let state = run.state as RollingUpgradeState
    const now = ctx.now.getTime()
    const inFlight = { ...state.in_flight }
    const completed = [...state.completed]
    const failed = [...state.failed]
    let consecutive = state.consecutive_failures
    // Reaching the limit halts the run even if a later instance of the same batch succeeds.
    let halt = consecutive >= inputs.max_consecutive_failures

    for (const [instanceId, flight] of Object.entries(inFlight)) {
      const record = (yield* ctx.tx.listDesiredConfigs(instanceId as InstanceId)).find((r) => r.kind === "module_upgrade" && r.key === state.module_name)
      let outcome: "ok" | string | undefined
      if (record !== undefined && (record.acked_version ?? 0) >= flight.version) outcome = "ok"
      else if (record !== undefined && record.version === flight.version && record.ack_error !== null) outcome = record.ack_error
      else if (now - flight.started_at_ms > state.timeout_ms) outcome = `no healthy report within ${state.timeout_ms} ms`
      if (outcome === undefined) continue
      delete inFlight[instanceId]
      if (outcome === "ok") {
        completed.push(instanceId)
        consecutive = 0
      } else {
        failed.push({ instance_id: instanceId, reason: outcome })
        consecutive += 1
        if (consecutive >= inputs.max_consecutive_failures) halt = true
      }
      yield* ctx.emit(run.account_id, outcome === "ok" ? "skill.instance_upgraded" : "skill.instance_upgrade_failed", {
        run_id: run.id,
        instance_id: instanceId,
        version_id: inputs.target_version_id,
        ...(outcome === "ok" ? {} : { reason: outcome })
      })
    }
    state = { ...state, in_flight: inFlight, completed, failed, consecutive_failures: consecutive }

    if (halt) {
      yield* save(ctx, run, "halted", state)
      yield* ctx.emit(run.account_id, "skill.run_halted", {
        run_id: run.id,
        consecutive_failures: consecutive,
        completed: completed.length,
        failed: failed.length,
        message: "halted after too many consecutive failures; fix the cause, then resume or abort the run"
      })
      return
    }
    if (Object.keys(inFlight).length > 0) return yield* save(ctx, run, "running", state)
    if (state.next_batch >= state.plan.batches.length) {
      yield* save(ctx, run, "completed", state)
      yield* recordClusterVersions(ctx, run.account_id, state.clusters ?? {}, completed, inputs.target_version_id)
      yield* ctx.emit(run.account_id, "skill.run_completed", { run_id: run.id, completed: completed.length, failed: failed.length })
      return
    }
    const batch = state.plan.batches[state.next_batch]!
    const started: Record<string, { started_at_ms: number; version: number }> = {}
    for (const instanceId of batch) {
      const record = yield* putDesired(ctx, instanceId as InstanceId, "module_upgrade", state.module_name, {
        module_name: state.module_name,
        module_id: inputs.module_id,
        version_id: inputs.target_version_id,
        run_id: run.id
      })
      started[instanceId] = { started_at_ms: now, version: record.version }
    }
    const servers = batch.filter((id) => roles.get(id) === "control-plane").length
    state = { ...state, in_flight: started, next_batch: state.next_batch + 1, max_in_flight_servers: Math.max(state.max_in_flight_servers, servers) }
    yield* save(ctx, run, "running", state)
    yield* ctx.emit(run.account_id, "skill.batch_started", { run_id: run.id, batch: state.next_batch, of: state.plan.batches.length, instances: batch })
  })

const requireRun = (ctx: TxContext, accountId: AccountId, runId: string) =>
  Effect.flatMap(ctx.tx.getSkillRun(accountId, runId), (run) =>
    run === undefined ? Effect.fail(notFound("skill_run_not_found", `skill run ${runId} does not exist in this account`, { run_id: runId })) : Effect.succeed(run)
  )

/** A halted run continues with its next instances; the failure count starts again. */
export const resumeRollingUpgrade = (ctx: TxContext, accountId: AccountId, runId: string) =>
  Effect.gen(function* () {
    const run = yield* requireRun(ctx, accountId, runId)
    if (run.status !== "halted") return yield* stateError("skill_run_not_halted", `skill run ${runId} is ${run.status}; only a halted run can be resumed`, { run_id: runId, status: run.status })
    const state = { ...(run.state as RollingUpgradeState), consecutive_failures: 0 }
    yield* save(ctx, run, "running", state)
    yield* ctx.emit(accountId, "skill.run_resumed", { run_id: runId })
    return { run_id: runId, status: "running" as const }
  })

/** Stops a run for good: nothing more is pushed; instances already upgraded stay upgraded. */
export const abortRollingUpgrade = (ctx: TxContext, accountId: AccountId, runId: string) =>
  Effect.gen(function* () {
    const run = yield* requireRun(ctx, accountId, runId)
    if (run.status === "completed" || run.status === "aborted") {
      return yield* stateError("skill_run_finished", `skill run ${runId} is already ${run.status}`, { run_id: runId, status: run.status })
    }
    yield* save(ctx, run, "aborted", run.state as RollingUpgradeState)
    yield* ctx.emit(accountId, "skill.run_aborted", { run_id: runId })
    return { run_id: runId, status: "aborted" as const }
  })
