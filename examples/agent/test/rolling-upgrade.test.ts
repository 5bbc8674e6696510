/** A rolling upgrade against live reference agents through a real gateway, driven by the CLI. */
import { afterEach, describe, expect, it } from "vitest"
import { runCli, type Gateway } from "@fleetplane/gateway"
import { startReferenceAgent, type ReferenceAgent } from "../src/index"
import { scratch, testGateway } from "./support/fixture"
let gateway: Gateway | undefined
const agents: Array<ReferenceAgent> = []
afterEach(async () => {
  for (const agent of agents.splice(0)) agent.stop()
  await gateway?.close()
  gateway = undefined
})

const cli = async (env: Record<string, string>, args: Array<string>) => {
  let out = ""
  let err = ""
  const code = await runCli(["--json", ...args], { out: (t) => (out += t), err: (t) => (err += t), ask: undefined }, env)
  if (code !== 0) throw new Error(`fleetplane ${args.join(" ")}: ${code} ${err}`)
  return JSON.parse(out)
}

describe("rolling upgrade with live agents", () => {
  it("upgrades batch by batch, halts on a failing node, and completes once resumed", async () => {
    gateway = await testGateway()
    const account = await gateway.fleet.createAccount({ name: "acme" })
    const { api_key } = await gateway.fleet.createApiKey({ account_id: account.id, name: "ops", role: "admin" })
    const env = { FLEETPLANE_URL: gateway.adminUrl, FLEETPLANE_API_KEY: api_key }
    const template = await cli(env, ["templates", "create", "--name", "edge-workers"])
    await cli(env, ["templates", "assign", "--template", template.id, "--module", "k3s-agent"])
    for (let i = 1; i <= 4; i++) {
      const node = await cli(env, ["nodes", "create", "--hostname", `edge-${i}`, "--template", template.id])
      const instance = await cli(env, ["instances", "provision", "--node", node.id])
      agents.push(
        await startReferenceAgent({
          gatewayUrl: gateway.agentUrl,
          stateDir: scratch(`state-${i}`),
          root: scratch(`root-${i}`),
          instanceId: instance.id,
          credential: instance.agent_credential,
          simulate: true,
          // The third node cannot take the new version.
          ...(i === 3 ? { failUpgradesTo: ["v-k3s-1.31.0"] } : {}),
          log: () => undefined
        })
      )
    }
    // A preview first: the plan, and nothing started.
    const preview = await cli(env, ["upgrade", "start", "--dry-run", "--template", template.id, "--module", "mod-k3s-agent", "--version", "v-k3s-1.31.0", "--batch-pct", "50", "--max-failures", "1"])
    expect(preview).toMatchObject({ run_id: null, status: "preview", module_name: "k3s-agent" })
    expect(preview.plan.batches.map((b: Array<string>) => b.length)).toEqual([2, 2])
    expect((await cli(env, ["upgrade", "list"])).runs).toEqual([])
    const run = await cli(env, ["upgrade", "start", "--template", template.id, "--module", "mod-k3s-agent", "--version", "v-k3s-1.31.0", "--batch-pct", "50", "--max-failures", "1"])
    expect(run.plan.batches.map((b: Array<string>) => b.length)).toEqual([2, 2])
    // `upgrade wait` follows the run to its end: a halt is a failure (exit 6), saying how far it got.
    let waitErr = ""
    const waited = await runCli(["upgrade", "wait", run.run_id, "--timeout", "30s"], { out: () => undefined, err: (t) => (waitErr += t), ask: undefined }, env)
    expect(waited).toBe(6)
    expect(waitErr).toMatch(/upgrade run_\S+ halted: halted: batch 2 of 2, 3 upgraded, 1 failed, 0 upgrading; .*upgrade resume continues it/)
    const halted = await cli(env, ["upgrade", "status", run.run_id])
    // The second batch held the failing node: the run halts after it, the other node of that batch upgraded.
    expect(halted.state.next_batch).toBe(2)
    expect(halted.state.completed).toHaveLength(3)
    expect(halted.state.failed).toEqual([expect.objectContaining({ reason: expect.stringContaining("simulated failure") })])
    expect(agents.filter((a) => a.executedCommands.some((c) => c.includes("v-k3s-1.31.0")))).toHaveLength(3)

    await cli(env, ["upgrade", "resume", run.run_id])
    const done = await cli(env, ["upgrade", "wait", run.run_id, "--timeout", "30s"])
    expect(done.status).toBe("completed")
    expect(done.state.completed).toHaveLength(3)
    const listed = await cli(env, ["upgrade", "list", "--status", "completed"])
    expect(listed.runs).toEqual([expect.objectContaining({ run_id: run.run_id, status: "completed", progress: expect.objectContaining({ batches: 2, completed: 3, failed: 1 }) })])
    const log = (await cli(env, ["action", "system_list_events", JSON.stringify({ limit: 1000 })])).events.map((e: { type: string }) => e.type)
    expect(log).toEqual(expect.arrayContaining(["skill.run_started", "skill.batch_started", "skill.instance_upgraded", "skill.instance_upgrade_failed", "skill.run_halted", "skill.run_resumed", "skill.run_completed"]))
  }, 40_000)
})
