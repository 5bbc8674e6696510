/**
 * #14's acceptance walk: the runbook driven by the `fleetplane` CLI alone, with every agent
 * started with only its gateway address, instance id and credential. Two clusters come up
 * by name (prod first, then staging — the most recently activated), and a worker whose
 * template names k3s-prod joins k3s-prod: before R24 it went to staging.
 */
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { runCli, type Gateway } from "@fleetplane/gateway"
import { startReferenceAgent, type ReferenceAgent } from "../src/index"
import { scratch, testGateway, waitFor } from "./support/fixture"

let gateway: Gateway | undefined
const agents: Array<ReferenceAgent> = []
afterEach(async () => {
  for (const agent of agents.splice(0)) agent.stop()
  await gateway?.close()
  gateway = undefined
})

describe("the runbook by the CLI alone", () => {
  it("puts every worker in the cluster its template names, with agents given only gateway, instance and credential", async () => {
    const database = join(scratch("db"), "fleet.db")
    gateway = await testGateway({ database })
    const env: Record<string, string> = {}
    const fleetplane = async (...args: Array<string>) => {
      let out = ""
      let err = ""
      const code = await runCli(["--json", ...args], { out: (t) => (out += t), err: (t) => (err += t), ask: undefined }, env)
      if (code !== 0) throw new Error(`fleetplane ${args.join(" ")} exited ${code}: ${err}`)
      return JSON.parse(out)
    }
    const account = await fleetplane("account", "create", "--name", "acme", "--db", database)
    const key = await fleetplane("apikey", "create", "--account", account.id, "--name", "ops", "--role", "admin", "--db", database)
    env.FLEETPLANE_URL = gateway.adminUrl
    env.FLEETPLANE_API_KEY = key.api_key

    /** A node with an agent that knows only where the gateway is, who it is and its credential. */
    const machine = async (hostname: string, template: string, network: string) => {
      await fleetplane("nodes", "create", "--hostname", hostname, "--template", template)
      const instance = await fleetplane("instances", "provision", "--node", hostname)
      await fleetplane("peers", "attach", "--network", network, "--instance", instance.id)
      const agent = await startReferenceAgent({
        gatewayUrl: gateway!.agentUrl,
        stateDir: scratch("state"),
        root: scratch("root"),
        instanceId: instance.id,
        credential: instance.agent_credential,
        simulate: true,
        readyDelayMs: 50,
        log: () => undefined
      })
      agents.push(agent)
      return agent
    }
    const clusterStatus = async (name: string) => ((await fleetplane("clusters", "list")).clusters as Array<{ name: string; status: string }>).find((c) => c.name === name)?.status

    // Phase 1, twice: prod, then staging, each on its own network, named by their templates.
    for (const [site, prefix] of [["prod", "10.42.0.0/16"], ["staging", "10.44.0.0/16"]] as const) {
      await fleetplane("networks", "create", "--name", `${site}-net`, "--handle", site.slice(0, 4), "--pod-prefix", prefix)
      const template = await fleetplane("templates", "create", "--name", `k3s-${site}-server`)
      await fleetplane("templates", "assign", "--template", template.name, "--module", "k3s-server", "--cluster-name", `k3s-${site}`)
      await machine(`k3s-${site}-server-1`, template.name, site.slice(0, 4))
      await waitFor(async () => (await clusterStatus(`k3s-${site}`)) === "active", `k3s-${site} active`)
    }

    // Phase 3: a worker template pinned to prod by name; its agent has no module or cluster flag.
    const workers = await fleetplane("templates", "create", "--name", "k3s-prod-worker")
    await fleetplane("templates", "assign", "--template", workers.name, "--module", "k3s-agent", "--target-cluster", "k3s-prod")
    const worker = await machine("k3s-prod-worker-1", workers.name, "prod")
    const accepted = await worker.joined
    const prod = await fleetplane("clusters", "get", "k3s-prod")
    expect(accepted.cluster_id).toBe(prod.id)
    expect(accepted.role).toBe("worker")

    const members = async (cluster: string) => ((await fleetplane("clusters", "nodes", cluster)).nodes as Array<{ hostname: string }>).map((n) => n.hostname).sort()
    expect(await members("k3s-prod")).toEqual(["k3s-prod-server-1", "k3s-prod-worker-1"])
    expect(await members("k3s-staging")).toEqual(["k3s-staging-server-1"])
  }, 60_000)
})
