/**
 * The runbook through a real gateway with debug logging on: no log line, event, error message
 * or admin API answer (other than where a secret is handed out once) contains an agent
 * credential, an API key, a join token, or a CA or client private key.
 */
import { afterEach, describe, expect, it } from "vitest"
import { createLogger, type Gateway } from "../src/index"
import { adminClient, quietGateway } from "./support/gateway-harness"
import { TestAgent } from "./support/test-agent"

let gateway: Gateway | undefined
const agents: Array<TestAgent> = []
afterEach(async () => {
  for (const agent of agents.splice(0)) agent.close()
  await gateway?.close()
  gateway = undefined
})

describe("secrets stay out of logs, events and errors", () => {
  it("holds across bootstrap, join, rotation, failover, kubeconfig and bad credentials", async () => {
    const logs: Array<string> = []
    gateway = await quietGateway({ logger: createLogger("debug", (line) => logs.push(line)) })
    const account = await gateway.fleet.createAccount({ name: "acme" })
    const key = await gateway.fleet.createApiKey({ account_id: account.id, name: "ops", role: "admin" })
    const admin = adminClient(gateway, key.api_key)
    const answers: Array<unknown> = []
    const call = async (name: string, input: Record<string, unknown> = {}) => {
      const result = await admin.confirmed(name, input)
      answers.push(result.body)
      return result.body
    }
    const network = await call("system_sdwan_create_network", { name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
    const template = await call("system_create_template", { name: "servers" })
    await call("system_assign_module_to_template", { template_id: template.id, module_name: "k3s-server", config: { vip_policy: "automatic" } })
    const credentials: Array<string> = []
    const connected: Array<TestAgent> = []
    for (const hostname of ["s1", "s2"]) {
      const node = await call("system_create_node", { hostname, node_template_id: template.id })
      const instance = (await admin.action("system_provision_instance", { node_id: node.id })).body
      credentials.push(instance.agent_credential)
      await call("system_sdwan_attach_peer", { network_id: network.id, node_instance_id: instance.id })
      const agent = await TestAgent.connect(gateway.agentUrl)
      agents.push(agent)
      agent.hello(instance.id, instance.agent_credential, { wireguard_keys: [{ network_id: network.id, public_key: agent.keys.publicKey }] })
      await agent.message("welcome")
      connected.push(agent)
      // A wrong credential for the same instance, too: refused, and logged without the secret.
      const intruder = await TestAgent.connect(gateway.agentUrl)
      intruder.hello(instance.id, `${instance.agent_credential}-wrong`)
      await intruder.waitClosed()
    }
    const [s1, s2] = connected as [TestAgent, TestAgent]
    s1.send({ type: "join_request", body: { request_id: "r1", module_name: "k3s-server", target_cluster_id: null } })
    const accepted = await s1.message("join_accepted")
    s1.send({ type: "status_report", body: { k3s: { service: "active", node_ready: true }, modules: [] } })
    for (let i = 0; i < 50 && (await call("kubernetes_get_cluster", { id: accepted.body.cluster_id })).status !== "active"; i++) await new Promise((r) => setTimeout(r, 50))
    s2.send({ type: "join_request", body: { request_id: "r2", module_name: "k3s-server", target_cluster_id: accepted.body.cluster_id } })
    await s2.message("join_accepted")
    await call("kubernetes_rotate_token", { cluster_id: accepted.body.cluster_id })
    const kubeconfig = (await admin.action("kubernetes_get_kubeconfig", { cluster_id: accepted.body.cluster_id })).body.kubeconfig as string
    const cluster = await call("kubernetes_get_cluster", { id: accepted.body.cluster_id })
    s1.heartbeat([network.id])
    s2.heartbeat([network.id])
    await call("system_sdwan_failover_virtual_ip", { virtual_ip_id: cluster.virtual_ip.id, dry_run: true })
    await call("kubernetes_get_cluster", { id: "clu_nope" })
    await s2.until((a) => a.pushes("token").length >= 2, 5_000, "rotated token")

    // The secrets that exist now.
    const tokens = s2.pushes("token").map((p) => (p.payload as { token: string }).token)
    const caKey = (s1.pushes("k3s")[0]!.payload as unknown as { files: Array<{ path: string; content: string }> }).files.find((f) => f.path.endsWith("server-ca.key"))!.content
    const clientKey = Buffer.from(kubeconfig.match(/client-key-data: (\S+)/)![1]!, "base64").toString()
    const secrets = [
      key.api_key,
      ...credentials,
      ...tokens,
      ...tokens.map((t) => t.split("::server:")[1]!),
      caKey.split("\n")[1]!,
      clientKey.split("\n")[1]!
    ]
    const events = (await admin.action("system_list_events", { limit: 1000 })).body
    const haystack = JSON.stringify({ logs, events, answers })
    expect(logs.length).toBeGreaterThan(3)
    expect(logs.some((line) => line.includes("agent.auth_failed"))).toBe(true)
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(10)
      expect(haystack.includes(secret), `a secret leaked: ${secret.slice(0, 8)}…`).toBe(false)
    }
  }, 30_000)
})
