import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { AgentPort, fleetLayer, SkillRunner, type AccountId } from "../src/index"
import { accountWithNetwork, activeCluster, events, exec, failure, join as joinCluster, pendingPushes, provisionAgent, type SimAgent, withFleet } from "./support/fleet-harness"

const tick = Effect.flatMap(Effect.service(SkillRunner), (runner) => runner.tick)

/** Every agent acks its pending module_upgrade push, as applied or failed. */
const agentsAck = (agents: ReadonlyArray<SimAgent>, outcome: (agent: SimAgent) => "applied" | "failed" | "silent" = () => "applied") =>
  Effect.gen(function* () {
    const port = yield* AgentPort
    for (const agent of agents) {
      const push = (yield* pendingPushes(agent)).find((p) => p.kind === "module_upgrade")
      if (push === undefined) continue
      const result = outcome(agent)
      if (result === "silent") continue
      yield* port.configAck(agent.identity, {
        kind: "module_upgrade",
        key: push.key,
        version: push.version,
        status: result,
        ...(result === "failed" ? { error: { code: "upgrade_failed", message: "k3s did not come back" } } : {})
      })
    }
  })

const startUpgrade = (accountId: any, templateId: string, batchPct: number, maxFailures = 1, timeoutMs?: number, moduleId = "mod-k3s-agent") =>
  exec(accountId, "execute_skill", {
    skill: "system-rolling-module-upgrade",
    inputs: {
      template_id: templateId,
      module_id: moduleId,
      target_version_id: "v-k3s-1.31.0",
      batch_pct: batchPct,
      max_consecutive_failures: maxFailures,
      ...(timeoutMs === undefined ? {} : { timeout_ms: timeoutMs })
    }
  })

const workersOf = (setup: { readonly accountId: AccountId; readonly workerTemplateId: string; readonly networkId: string }, clusterId: string, count: number) =>
  Effect.gen(function* () {
    const workers: Array<SimAgent> = []
    for (let i = 0; i < count; i++) {
      const worker = yield* provisionAgent(setup.accountId, { hostname: `w${i}`, templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
      yield* joinCluster(worker, "k3s-agent", clusterId)
      workers.push(worker)
    }
    return workers
  })

describe("rolling module upgrades against live agents (R19)", () => {
  it.effect("a 6-worker template with batch_pct 50 upgrades in 2 batches, one after the other", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId } = yield* activeCluster(setup)
        const workers = yield* workersOf(setup, clusterId, 6)
        const run = yield* startUpgrade(setup.accountId, setup.workerTemplateId, 50)
        assert.deepStrictEqual(run.plan.batches.map((b: Array<string>) => b.length), [3, 3])
        yield* tick
        let status = yield* exec(setup.accountId, "skill_run_status", { run_id: run.run_id })
        assert.strictEqual(Object.keys(status.state.in_flight).length, 3)
        // Nothing of the second batch starts before the first is healthy.
        yield* tick
        assert.strictEqual((yield* exec(setup.accountId, "skill_run_status", { run_id: run.run_id })).state.next_batch, 1)
        yield* agentsAck(workers)
        yield* tick
        status = yield* exec(setup.accountId, "skill_run_status", { run_id: run.run_id })
        assert.strictEqual(status.state.completed.length, 3)
        assert.strictEqual(status.state.next_batch, 2)
        yield* agentsAck(workers)
        yield* tick
        status = yield* exec(setup.accountId, "skill_run_status", { run_id: run.run_id })
        assert.strictEqual(status.status, "completed")
        assert.strictEqual(status.state.completed.length, 6)
        const log = (yield* events(setup.accountId)).map((e) => e.type)
        assert.strictEqual(log.filter((t) => t === "skill.batch_started").length, 2)
        assert.strictEqual(log.filter((t) => t === "skill.instance_upgraded").length, 6)
        assert.include(log, "skill.run_completed")
      })
    )
  )

  it.effect("a 3-server control-plane template with batch_pct 100 never has more than one server down", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { servers } = yield* activeCluster(setup, { servers: 3 })
        const run = yield* startUpgrade(setup.accountId, setup.serverTemplateId, 100, 1, undefined, "mod-k3s-server")
        assert.deepStrictEqual(run.plan.batches.map((b: Array<string>) => b.length), [1, 1, 1])
        for (let i = 0; i < 4; i++) {
          yield* tick
          const status = yield* exec(setup.accountId, "skill_run_status", { run_id: run.run_id })
          assert.isAtMost(Object.keys(status.state.in_flight).length, 1)
          yield* agentsAck(servers)
        }
        yield* tick
        const status = yield* exec(setup.accountId, "skill_run_status", { run_id: run.run_id })
        assert.strictEqual(status.status, "completed")
        assert.strictEqual(status.state.max_in_flight_servers, 1)
      })
    )
  )

  it.effect("injected failures halt the run at max_consecutive_failures; it can be resumed or aborted", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId } = yield* activeCluster(setup)
        const workers = yield* workersOf(setup, clusterId, 6)
        const run = yield* startUpgrade(setup.accountId, setup.workerTemplateId, 33, 2)
        assert.deepStrictEqual(run.plan.batches.map((b: Array<string>) => b.length), [2, 2, 2])
        yield* tick
        yield* agentsAck(workers, () => "failed")
        yield* tick
        let status = yield* exec(setup.accountId, "skill_run_status", { run_id: run.run_id })
        assert.strictEqual(status.status, "halted")
        assert.strictEqual(status.state.failed.length, 2)
        assert.strictEqual(status.state.failed[0].reason, "upgrade_failed: k3s did not come back")
        // Halted: ticks change nothing.
        yield* tick
        assert.strictEqual((yield* exec(setup.accountId, "skill_run_status", { run_id: run.run_id })).state.next_batch, 1)
        yield* exec(setup.accountId, "skill_run_resume", { run_id: run.run_id })
        yield* tick
        status = yield* exec(setup.accountId, "skill_run_status", { run_id: run.run_id })
        assert.strictEqual(status.status, "running")
        assert.strictEqual(status.state.next_batch, 2)
        yield* exec(setup.accountId, "skill_run_abort", { run_id: run.run_id })
        assert.strictEqual((yield* exec(setup.accountId, "skill_run_status", { run_id: run.run_id })).status, "aborted")
        assert.strictEqual((yield* failure(exec(setup.accountId, "skill_run_resume", { run_id: run.run_id }))).code, "skill_run_not_halted")
      })
    )
  )

  it.effect("an instance that never reports healthy fails after the timeout", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId } = yield* activeCluster(setup)
        yield* workersOf(setup, clusterId, 1)
        const run = yield* startUpgrade(setup.accountId, setup.workerTemplateId, 100, 1, 5_000)
        yield* tick
        yield* TestClock.adjust(4_000)
        yield* tick
        assert.strictEqual((yield* exec(setup.accountId, "skill_run_status", { run_id: run.run_id })).status, "running")
        yield* TestClock.adjust(2_000)
        yield* tick
        const status = yield* exec(setup.accountId, "skill_run_status", { run_id: run.run_id })
        assert.strictEqual(status.status, "halted")
        assert.match(status.state.failed[0].reason, /no healthy report within 5000 ms/)
      })
    )
  )

  it.effect("a restart mid-run resumes the run where it was", () =>
    Effect.gen(function* () {
      const database = join(mkdtempSync(join(tmpdir(), "fleetplane-upgrade-")), "fleet.db")
      const layer = () => fleetLayer({ database, runSensor: false })
      const first = yield* Effect.provide(
        Effect.gen(function* () {
          const setup = yield* accountWithNetwork()
          const { clusterId } = yield* activeCluster(setup)
          const workers = yield* workersOf(setup, clusterId, 4)
          const run = yield* startUpgrade(setup.accountId, setup.workerTemplateId, 50)
          yield* tick
          yield* agentsAck(workers)
          return { setup, workers, runId: run.run_id as string }
        }),
        layer()
      )
      // A new process on the same database: the run is still running and carries on.
      yield* Effect.provide(
        Effect.gen(function* () {
          yield* tick
          let status = yield* exec(first.setup.accountId, "skill_run_status", { run_id: first.runId })
          assert.strictEqual(status.state.completed.length, 2)
          assert.strictEqual(status.state.next_batch, 2)
          yield* agentsAck(first.workers)
          yield* tick
          status = yield* exec(first.setup.accountId, "skill_run_status", { run_id: first.runId })
          assert.strictEqual(status.status, "completed")
          assert.strictEqual(status.state.completed.length, 4)
        }),
        layer()
      )
    })
  )
})
