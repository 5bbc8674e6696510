import { afterEach, describe, expect, it } from "vitest"
import { actionCatalog } from "@fleetplane/sdk"
import type { Gateway } from "../src/index"
import { adminClient, quietGateway, setupAccount } from "./support/gateway-harness"
import { TestAgent } from "./support/test-agent"

let gateway: Gateway | undefined
afterEach(async () => {
  await gateway?.close()
  gateway = undefined
})

describe("admin API", () => {
  it("refuses requests without a key or with an unknown key, and serves healthz and metrics without one", async () => {
    gateway = await quietGateway()
    const missing = await fetch(`${gateway.adminUrl}/v1/actions`)
    expect(missing.status).toBe(401)
    expect(((await missing.json()) as any).error.code).toBe("missing_api_key")
    const wrong = await adminClient(gateway, "fpk_guess").action("kubernetes_list_clusters")
    expect(wrong.status).toBe(401)
    expect(wrong.body.error.code).toBe("invalid_api_key")
    const health = await fetch(`${gateway.adminUrl}/healthz`)
    expect(((await health.json()) as any).status).toBe("ok")
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text()
    for (const name of ["fleetplane_agent_sessions", "fleetplane_heartbeats_received_total", "fleetplane_pushes_pending", "fleetplane_joins_rejected_total", "# TYPE fleetplane_push_ack_latency_seconds histogram"]) {
      expect(metrics).toContain(name)
    }
  })

  it("metrics: push latency by kind and network (never by agent), sessions opened, process and event-loop lag from prom-client", async () => {
    gateway = await quietGateway()
    const { provision, serverTemplateId, networkId } = await setupAccount(gateway)
    const nodes = [await provision("m1", serverTemplateId), await provision("m2", serverTemplateId)]
    const agents = await Promise.all(nodes.map(() => TestAgent.connect(gateway!.agentUrl)))
    try {
      nodes.forEach((node, i) => agents[i]!.hello(node.instanceId, node.credential, { wireguard_keys: [{ network_id: networkId, public_key: agents[i]!.keys.publicKey }] }))
      for (const agent of agents) await agent.until((a) => a.pushes("wireguard").length > 0, 5_000, "a wireguard push")
      for (const agent of agents) agent.ackAll()
      const scrape = async () => (await fetch(`${gateway!.adminUrl}/metrics`)).text()
      let text = await scrape()
      for (let i = 0; i < 50 && !text.includes(`kind="wireguard",network_id="${networkId}"`); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        text = await scrape()
      }
      expect(text).toMatch(new RegExp(`fleetplane_push_ack_latency_seconds_count\\{kind="wireguard",network_id="${networkId}"\\} [1-9]`))
      expect(text).toMatch(/fleetplane_pushes_acked_total [1-9]/)
      // Sessions opened: a fleet reconnecting shows as a jump (and counts as a burst for memory reclaim).
      expect(text).toMatch(/fleetplane_agent_sessions_opened_total 2\n/)
      for (const name of ["process_resident_memory_bytes", "process_cpu_seconds_total", "nodejs_eventloop_lag_p99_seconds", "nodejs_heap_size_used_bytes"]) expect(text).toContain(name)
      // No series per agent: instance ids appear nowhere.
      for (const node of nodes) expect(text).not.toContain(node.instanceId)
    } finally {
      for (const agent of agents) agent.close()
    }
  })

  it("lists every action with its JSON Schema, and maps errors to HTTP statuses with code, message and details", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const { body } = await account.admin.get("/v1/actions")
    expect(body.actions.map((a: { name: string }) => a.name).sort()).toEqual(Object.keys(actionCatalog).sort())
    const invalid = await account.admin.action("system_sdwan_create_network", { name: "x", handle: "x", pod_subnet_prefix: "10.42.7.0/16" })
    expect(invalid.status).toBe(400)
    expect(invalid.body.error).toMatchObject({ code: "pod_prefix_not_canonical", details: { canonical: "10.42.0.0/16" } })
    const conflict = await account.admin.action("system_sdwan_create_network", { name: "y", handle: "y", pod_subnet_prefix: "10.42.0.0/16" })
    expect(conflict.status).toBe(409)
    const missing = await account.admin.action("kubernetes_get_cluster", { id: "clu_nope" })
    expect(missing.status).toBe(404)
    const unknown = await account.admin.action("launch_missiles")
    expect(unknown.status).toBe(404)
    const badJson = await fetch(`${gateway.adminUrl}/v1/actions/kubernetes_list_clusters`, {
      method: "POST",
      headers: { authorization: `Bearer ${account.apiKey}` },
      body: "{not json"
    })
    expect(badJson.status).toBe(400)
  })

  it("a destructive action answers 428 confirmation_required with a token, and the repeated call executes", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const node = await account.provision("w1", account.workerTemplateId)
    const first = await account.admin.action("system_terminate_instance", { instance_id: node.instanceId })
    expect(first.status).toBe(428)
    expect(first.body.error.code).toBe("confirmation_required")
    const second = await account.admin.action("system_terminate_instance", { instance_id: node.instanceId, confirmation_token: first.body.error.details.confirmation_token })
    expect(second.status).toBe(200)
    expect(second.body.status).toBe("terminated")
  })

  it("an account's key can neither see nor touch another account's entities", async () => {
    gateway = await quietGateway()
    const a = await setupAccount(gateway, { name: "a" })
    const b = await setupAccount(gateway, { name: "b" })
    const node = await a.provision("w1", a.workerTemplateId)
    const probes: Array<[string, Record<string, unknown>]> = [
      ["system_sdwan_attach_peer", { network_id: a.networkId, node_instance_id: node.instanceId }],
      ["system_create_node", { hostname: "intruder", node_template_id: a.serverTemplateId }],
      ["system_terminate_instance", { instance_id: node.instanceId }],
      ["system_assign_module_to_template", { template_id: a.workerTemplateId, module_name: "k3s-agent" }]
    ]
    for (const [name, input] of probes) {
      const result = await b.admin.action(name, input)
      expect(result.status, name).toBe(404)
    }
    const events = (await b.admin.action("system_list_events", { limit: 1000 })).body.events
    expect(JSON.stringify(events)).not.toContain(a.networkId)
  })

  it("streams the account's events as Server-Sent Events, backlog first, then live", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const controller = new AbortController()
    const response = await fetch(`${gateway.adminUrl}/v1/events?since=0`, { headers: { authorization: `Bearer ${account.apiKey}` }, signal: controller.signal })
    expect(response.headers.get("content-type")).toContain("text/event-stream")
    const reader = response.body!.getReader()
    let text = ""
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read()
        if (done) throw new Error("stream ended")
        text += new TextDecoder().decode(value)
      }
    }
    await readUntil("event: system.module_assigned")
    await account.admin.action("system_create_template", { name: "live" })
    await readUntil(`"name":"live"`)
    expect(text.indexOf("system.account_created")).toBeLessThan(text.indexOf("system.template_created"))
    expect(text).toMatch(/id: \d+\nevent: /)
    controller.abort()
  })
})
