/**
 * The AI concierge (#18): the official MCP TypeScript client against a real gateway with
 * simulated agents, over Streamable HTTP (`/v1/mcp`) and stdio (`fleetplane mcp`).
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import Ajv2020 from "ajv/dist/2020.js"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { ElicitRequestSchema, ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import { describeActions } from "@fleetplane/sdk"
import type { Gateway } from "../src/index"
import { quietGateway, setupAccount } from "./support/gateway-harness"
import { TestAgent } from "./support/test-agent"
import { poll as pollUntil } from "./support/agent-steps"

let gateway: Gateway | undefined
const clients: Array<Client> = []
const agents: Array<TestAgent> = []
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close().catch(() => undefined)
  for (const agent of agents.splice(0)) agent.close()
  await gateway?.close()
  gateway = undefined
})

const httpClient = async (g: Gateway, apiKey: string, capabilities: ConstructorParameters<typeof Client>[1] = {}) => {
  const client = new Client({ name: "fleetplane-tests", version: "1.0.0" }, capabilities)
  await client.connect(new StreamableHTTPClientTransport(new URL(`${g.adminUrl}/v1/mcp`), { requestInit: { headers: { authorization: `Bearer ${apiKey}` } } }))
  clients.push(client)
  // Listing the tools makes the official client check every later tool result against the
  // tool's output schema (results, typed errors and confirmation answers alike).
  await client.listTools()
  return client
}

type ToolAnswer = { isError?: boolean; structuredContent?: any; content: Array<{ type: string; text?: string }> }
const call = async (client: Client, name: string, args: Record<string, unknown> = {}) => (await client.callTool({ name, arguments: args })) as ToolAnswer
/** A tool call that must succeed; its structured result. */
const ok = async (client: Client, name: string, args: Record<string, unknown> = {}) => {
  const answer = await call(client, name, args)
  if (answer.isError) throw new Error(`${name} failed: ${answer.content[0]?.text}`)
  return answer.structuredContent
}

const resourceText = (read: { contents: ReadonlyArray<object> }) => String((read.contents[0] as { text?: string } | undefined)?.text)

const poll = <T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 8_000) => pollUntil(check, what, timeoutMs)

/** An agent for a provisioned instance: hello with its key, then join as its template says. */
const agentFor = async (instance: { id: string; agent_credential: string }, networkId: string, module: "k3s-server" | "k3s-agent") => {
  const agent = await TestAgent.connect(gateway!.agentUrl)
  agents.push(agent)
  agent.hello(instance.id, instance.agent_credential, { wireguard_keys: [{ network_id: networkId, public_key: agent.keys.publicKey }] })
  await agent.message("welcome")
  const request_id = `req_${agent.seq++}`
  agent.send({ type: "join_request", body: { request_id, module_name: module, target_cluster_id: null } })
  const answer = await agent.message("join_accepted", (m) => m.body.request_id === request_id)
  agent.send({ type: "status_report", body: { k3s: { service: "active", node_ready: true }, modules: [] } })
  return { agent, clusterId: answer.body.cluster_id }
}

describe("MCP: the fleet as tools, resources and prompts", () => {
  it("lists every action the key may run as a tool, generated from the catalog, each with valid input and output JSON Schemas and annotations", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const client = await httpClient(gateway, account.apiKey)
    expect(client.getServerVersion()).toMatchObject({ name: "fleetplane", version: JSON.parse(readFileSync(join(__dirname, "..", "package.json"), "utf8")).version })
    const { tools } = await client.listTools()
    expect(tools.map((t) => t.name).sort()).toEqual(describeActions().map((a) => a.name).sort())
    const ajv = new Ajv2020({ strict: false })
    for (const tool of tools) {
      expect(tool.inputSchema.type).toBe("object")
      expect(() => ajv.compile(tool.inputSchema)).not.toThrow()
      expect(tool.outputSchema?.type).toBe("object")
      expect(() => ajv.compile(tool.outputSchema!)).not.toThrow()
      expect(tool.description?.length ?? 0).toBeGreaterThan(10)
    }
    const byName = new Map(tools.map((t) => [t.name, t]))
    expect(byName.get("kubernetes_list_clusters")!.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false })
    expect(byName.get("kubernetes_decommission_cluster")!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true })
    expect(byName.get("system_create_template")!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false })
    // The destructive tools accept the confirmation token; no schema allows unknown fields.
    expect(Object.keys((byName.get("kubernetes_decommission_cluster")!.inputSchema.properties ?? {}) as object)).toContain("confirmation_token")
    expect(tools.every((t) => t.inputSchema.additionalProperties === false)).toBe(true)
  })

  it("a read-only key sees no tool that changes anything, and calling one is a typed tool error", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const readKey = await gateway.fleet.createApiKey({ account_id: account.accountId, name: "dashboard", role: "read" })
    const client = await httpClient(gateway, readKey.api_key)
    const { tools } = await client.listTools()
    expect(tools.length).toBeGreaterThan(5)
    expect(tools.every((t) => t.annotations?.readOnlyHint === true && t.annotations?.destructiveHint === false)).toBe(true)
    expect(tools.map((t) => t.name)).not.toContain("kubernetes_decommission_cluster")
    const refused = await call(client, "system_create_template", { name: "nope" })
    expect(refused.isError).toBe(true)
    expect(refused.structuredContent.error.code).toBe("unknown_tool")
    expect((await ok(client, "kubernetes_list_clusters")).clusters).toEqual([])
  })

  it("bad arguments give a tool error with the SDK's code, and the server keeps serving", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const client = await httpClient(gateway, account.apiKey)
    const typo = await call(client, "system_create_template", { nmae: "servers" })
    expect(typo.isError).toBe(true)
    expect(typo.structuredContent.error).toMatchObject({ category: "InvalidInputError" })
    expect(typo.content[0]!.text).toMatch(/nmae|name/)
    const wrongType = await call(client, "system_sdwan_create_network", { name: 42, handle: ["x"] })
    expect(wrongType.isError).toBe(true)
    const missing = await call(client, "kubernetes_get_cluster", { id: "k3s-nowhere" })
    expect(missing.structuredContent.error).toMatchObject({ code: "cluster_not_found", category: "NotFoundError" })
    expect((await ok(client, "system_create_template", { name: "servers-2" })).name).toBe("servers-2")
  })

  it("walks the runbook's phases 1-6 by tool calls alone: two clusters, a pinned worker, HA with an approved failover, a kubeconfig, a confirmed decommission", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const client = await httpClient(gateway, account.apiKey)

    // Phases 1 and 2: prod and staging, each bootstrapped by its own server template.
    const clusters: Record<string, { clusterId: string; networkId: string; agent: TestAgent }> = {}
    for (const [site, prefix] of [["prod", "10.60.0.0/16"], ["staging", "10.61.0.0/16"]] as const) {
      const network = await ok(client, "system_sdwan_create_network", { name: `${site}-net`, handle: site === "prod" ? "prd" : "stg", pod_subnet_prefix: prefix })
      const template = await ok(client, "system_create_template", { name: `k3s-${site}-server` })
      await ok(client, "system_assign_module_to_template", { template_id: template.id, module_name: "k3s-server", config: { cluster_name: `k3s-${site}` } })
      const node = await ok(client, "system_create_node", { hostname: `k3s-${site}-server-1`, node_template_id: template.id })
      const instance = await ok(client, "system_provision_instance", { node_id: node.id })
      await ok(client, "system_sdwan_attach_peer", { network_id: network.id, node_instance_id: instance.id })
      const { agent, clusterId } = await agentFor(instance, network.id, "k3s-server")
      clusters[site] = { clusterId, networkId: network.id, agent }
      await poll(async () => (await ok(client, "kubernetes_get_cluster", { id: `k3s-${site}` })).status === "active", `k3s-${site} active`)
    }
    const listed = await ok(client, "kubernetes_list_clusters")
    expect(listed.clusters.map((c: { name: string }) => c.name).sort()).toEqual(["k3s-prod", "k3s-staging"])

    // Phase 3: a worker pinned to prod joins prod, although staging was activated last.
    const workers = await ok(client, "system_create_template", { name: "k3s-prod-worker" })
    await ok(client, "system_assign_module_to_template", { template_id: workers.id, module_name: "k3s-agent", config: { target_cluster_id: "k3s-prod" } })
    const workerNode = await ok(client, "system_create_node", { hostname: "k3s-prod-worker-1", node_template_id: workers.id })
    const workerInstance = await ok(client, "system_provision_instance", { node_id: workerNode.id })
    await ok(client, "system_sdwan_attach_peer", { network_id: clusters.prod!.networkId, node_instance_id: workerInstance.id })
    expect((await agentFor(workerInstance, clusters.prod!.networkId, "k3s-agent")).clusterId).toBe(clusters.prod!.clusterId)

    // Phase 4: a second prod server joins; the dry run shows it as the candidate.
    await ok(client, "system_assign_module_to_template", { template_id: "k3s-prod-server", module_name: "k3s-server", config: { target_cluster_id: "k3s-prod", vip_policy: "require_approval" } })
    const server2Node = await ok(client, "system_create_node", { hostname: "k3s-prod-server-2", node_template_id: "k3s-prod-server" })
    const server2Instance = await ok(client, "system_provision_instance", { node_id: server2Node.id })
    await ok(client, "system_sdwan_attach_peer", { network_id: clusters.prod!.networkId, node_instance_id: server2Instance.id })
    const server2 = await agentFor(server2Instance, clusters.prod!.networkId, "k3s-server")
    expect(server2.clusterId).toBe(clusters.prod!.clusterId)
    const heartbeats = setInterval(() => [clusters.prod!.agent, server2.agent, clusters.staging!.agent].forEach((a) => !a.closed && a.heartbeat([])), 100)
    try {
      await poll(async () => (await ok(client, "kubernetes_list_nodes", { cluster_id: "k3s-prod" })).nodes.filter((n: { status: string }) => n.status === "ready").length === 3, "prod nodes ready")
      const plan = await ok(client, "system_sdwan_failover_virtual_ip", { virtual_ip_id: "k3s-prod", dry_run: true })
      expect(plan.candidates.map((c: { hostname: string }) => c.hostname)).toEqual(["k3s-prod-server-2"])

      // The holder goes silent: the failover waits for a person; approved by tool, the VIP moves.
      clearInterval(heartbeats)
      const keepOthers = setInterval(() => [server2.agent, clusters.staging!.agent].forEach((a) => a.heartbeat([])), 100)
      try {
        const approval = await poll(async () => (await ok(client, "system_list_approvals", {})).approvals[0], "an approval")
        await ok(client, "system_approve", { approval_id: approval.id })
        await server2.agent.message("vip_assign", (m) => m.body.epoch === 2)
      } finally {
        clearInterval(keepOthers)
      }
    } finally {
      clearInterval(heartbeats)
    }

    // Phase 5: a kubeconfig whose context is the cluster's name.
    const kubeconfig = await ok(client, "kubernetes_get_kubeconfig", { cluster_id: "k3s-prod" })
    expect(kubeconfig.kubeconfig).toContain("current-context: k3s-prod")

    // Phase 6: decommission staging; the first call changes nothing and hands back a token.
    const pending = await call(client, "kubernetes_decommission_cluster", { cluster_id: "k3s-staging" })
    expect(pending.isError).toBeFalsy()
    expect(pending.structuredContent).toMatchObject({ confirmation_required: true, confirmation_token: expect.any(String) })
    expect(pending.structuredContent.summary).toContain("k3s-staging")
    expect((await ok(client, "kubernetes_get_cluster", { id: "k3s-staging" })).status).toBe("active")
    const done = await ok(client, "kubernetes_decommission_cluster", { cluster_id: "k3s-staging", confirmation_token: pending.structuredContent.confirmation_token })
    expect(done).toBeDefined()
    const after = await ok(client, "kubernetes_list_clusters", { include_decommissioned: true })
    expect(after.clusters.find((c: { name: string }) => c.name === "k3s-staging").status).not.toBe("active")
  }, 60_000)

  it("asks the user directly when the client supports elicitation: declined changes nothing, accepted executes in one call", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const node = await account.provision("edge-1", account.workerTemplateId)
    let answer: "decline" | "accept" = "decline"
    const asked: Array<string> = []
    const client = new Client({ name: "fleetplane-tests", version: "1.0.0" }, { capabilities: { elicitation: { form: {} } } })
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push((request.params as { message: string }).message)
      return answer === "accept" ? { action: "accept", content: { confirm: true } } : { action: "decline" }
    })
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gateway.adminUrl}/v1/mcp`), { requestInit: { headers: { authorization: `Bearer ${account.apiKey}` } } }))
    clients.push(client)

    const declined = await call(client, "system_terminate_instance", { instance_id: "edge-1" })
    expect(declined.structuredContent).toMatchObject({ cancelled: true })
    expect(asked[0]).toContain("terminate instance")
    expect((await ok(client, "system_get_instance", { instance_id: node.instanceId })).status).toBe("running")

    answer = "accept"
    const terminated = await ok(client, "system_terminate_instance", { instance_id: "edge-1" })
    expect(terminated).toMatchObject({ instance_id: node.instanceId, status: "terminated" })
  })

  it("serves clusters, networks and the event log as resources, with live updates to subscribers, and the runbook as prompts", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const client = await httpClient(gateway, account.apiKey)
    const { resources } = await client.listResources()
    expect(resources.map((r) => r.uri)).toEqual(expect.arrayContaining(["fleetplane://clusters", "fleetplane://networks", "fleetplane://events"]))
    const networks = JSON.parse(resourceText(await client.readResource({ uri: "fleetplane://networks" })))
    expect(networks.networks).toHaveLength(1)

    const updated: Array<string> = []
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => {
      updated.push(notification.params.uri)
    })
    await client.subscribeResource({ uri: "fleetplane://events" })
    await ok(client, "system_create_template", { name: "edge" })
    await poll(async () => updated.includes("fleetplane://events"), "a resource update")
    const events = JSON.parse(resourceText(await client.readResource({ uri: "fleetplane://events" })))
    expect(events.events.at(-1).type).toBe("system.template_created")

    const { prompts } = await client.listPrompts()
    expect(prompts.map((p) => p.name)).toEqual(expect.arrayContaining(["bootstrap-cluster", "add-worker", "make-cluster-ha", "get-kubeconfig", "decommission-cluster", "troubleshoot"]))
    const addWorker = await client.getPrompt({ name: "add-worker", arguments: { cluster: "k3s-prod", hostname: "k3s-prod-worker-9" } })
    const text = (addWorker.messages[0]!.content as { text: string }).text
    expect(text).toContain("target_cluster_id")
    expect(text).toContain("k3s-prod-worker-9")
    await expect(client.getPrompt({ name: "add-worker", arguments: { cluster: "k3s-prod" } })).rejects.toThrow(/hostname/)
  })

  it("a session answers only to the key that opened it, and ends when that key is revoked", async () => {
    gateway = await quietGateway({ apiKeyRecheckIntervalMs: 50 })
    const account = await setupAccount(gateway)
    const first = await httpClient(gateway, account.apiKey)
    const sessionId = (first.transport as StreamableHTTPClientTransport).sessionId!
    const other = await gateway.fleet.createApiKey({ account_id: account.accountId, name: "other", role: "admin" })
    const hijack = await fetch(`${gateway.adminUrl}/v1/mcp`, {
      method: "POST",
      headers: { authorization: `Bearer ${other.api_key}`, "mcp-session-id": sessionId, "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list", params: {} })
    })
    expect(hijack.status).toBe(404)
    await gateway.fleet.revokeApiKey({ account_id: account.accountId, api_key_id: account.apiKeyId })
    await poll(() => first.listTools().then(() => false, () => true), "the session to end")
  })

  it("serves the same tools over stdio (`fleetplane mcp`), talking to the gateway's admin API", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const client = new Client({ name: "fleetplane-tests", version: "1.0.0" })
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [join(__dirname, "..", "bin", "fleetplane.js"), "mcp"],
        env: { PATH: process.env.PATH ?? "", FLEETPLANE_URL: gateway.adminUrl, FLEETPLANE_API_KEY: account.apiKey },
        stderr: "pipe"
      })
    )
    clients.push(client)
    const { tools } = await client.listTools()
    expect(tools.map((t) => t.name).sort()).toEqual(describeActions().map((a) => a.name).sort())
    expect((await ok(client, "system_create_template", { name: "from-stdio" })).name).toBe("from-stdio")
    const refused = await call(client, "kubernetes_get_cluster", { id: "nowhere" })
    expect(refused.structuredContent.error.code).toBe("cluster_not_found")
    const pending = await call(client, "system_terminate_instance", { instance_id: (await account.provision("edge-1", account.workerTemplateId)).instanceId })
    expect(pending.structuredContent.confirmation_required).toBe(true)
  }, 30_000)
})
