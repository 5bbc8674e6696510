import { existsSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import WebSocket from "ws"
import type { Gateway } from "@fleetplane/gateway"
import { AgentState, K3S_CONFIG_PATH, K3S_TOKEN_PATH, startReferenceAgent, wireguardPath, type ReferenceAgent } from "../src/index"
import { scratch, serverInstance, testGateway, waitFor } from "./support/fixture"

let gateway: Gateway | undefined
const agents: Array<ReferenceAgent> = []
afterEach(async () => {
  for (const agent of agents.splice(0)) agent.stop()
  await gateway?.close()
  gateway = undefined
})

/** Every frame any WebSocket in this process sends, before masking. */
const captureFrames = () => {
  const frames: Array<Buffer> = []
  const original = WebSocket.prototype.send
  WebSocket.prototype.send = function (this: WebSocket, data: unknown, ...rest: Array<unknown>) {
    frames.push(Buffer.from(data as Uint8Array))
    return (original as (...args: Array<unknown>) => void).call(this, data, ...rest)
  } as typeof original
  return { frames, restore: () => (WebSocket.prototype.send = original) }
}

describe("reference agent in --simulate against a real gateway", () => {
  it("bootstraps a cluster, writes its configs with the right content and modes, and never sends a private key", async () => {
    gateway = await testGateway()
    const { ops, network, instance } = await serverInstance(gateway)

    const capture = captureFrames()
    try {
      const stateDir = scratch("state")
      const root = scratch("root")
      const agent = await startReferenceAgent({
        gatewayUrl: gateway.agentUrl,
        stateDir,
        root,
        instanceId: instance.id,
        credential: instance.agent_credential,
        module: "k3s-server",
        targetClusterId: null,
        simulate: true,
        readyDelayMs: 100,
        log: () => undefined
      })
      agents.push(agent)
      const accepted = await agent.joined!
      expect(accepted.created_cluster).toBe(true)
      await waitFor(async () => (await ops.actions.kubernetes_get_cluster({ id: accepted.cluster_id })).status === "active", "cluster active")

      const privateKey = readFileSync(join(stateDir, "wireguard", `${network.id}.key`), "utf8").trim()
      const publicKey = readFileSync(join(stateDir, "wireguard", `${network.id}.pub`), "utf8").trim()
      expect(statSync(join(stateDir, "wireguard", `${network.id}.key`)).mode & 0o777).toBe(0o600)
      expect(statSync(join(stateDir, "identity.json")).mode & 0o777).toBe(0o600)

      await waitFor(() => {
        try {
          return readFileSync(join(root, wireguardPath("wg-sdwan-prod")), "utf8").includes("PrivateKey")
        } catch {
          return false
        }
      }, "wireguard config")
      const wg = readFileSync(join(root, wireguardPath("wg-sdwan-prod")), "utf8")
      expect(wg).toContain(`PrivateKey = ${privateKey}`)
      expect(wg).toContain("ListenPort = 51820")
      expect(statSync(join(root, wireguardPath("wg-sdwan-prod"))).mode & 0o777).toBe(0o600)
      const k3s = readFileSync(join(root, K3S_CONFIG_PATH), "utf8")
      expect(k3s).toContain("flannel-iface: wg-sdwan-prod")
      expect(k3s).toContain("cluster-init: true")
      expect(statSync(join(root, K3S_CONFIG_PATH)).mode & 0o777).toBe(0o600)
      expect(statSync(join(root, "/var/lib/rancher/k3s/server/tls/server-ca.key")).mode & 0o777).toBe(0o600)
      expect(readFileSync(join(root, K3S_TOKEN_PATH), "utf8")).toMatch(/^K10[0-9a-f]{64}::server:/)
      expect(agent.executedCommands).toContain("systemctl restart k3s")

      // The gateway knows the agent's public key; the private key was never in any frame.
      const peers = (await ops.actions.kubernetes_get_cluster({ id: accepted.cluster_id })).virtual_ip
      expect(peers).not.toBeNull()
      const sent = Buffer.concat(capture.frames)
      expect(capture.frames.length).toBeGreaterThan(3)
      expect(sent.includes(Buffer.from(publicKey))).toBe(true)
      expect(sent.includes(Buffer.from(privateKey))).toBe(false)
    } finally {
      capture.restore()
    }
  }, 30_000)

  it("a restarted agent resumes from its state directory without re-applying anything", async () => {
    gateway = await testGateway()
    const { instance } = await serverInstance(gateway, "s1")
    const stateDir = scratch("state")
    const root = scratch("root")
    const options = { gatewayUrl: gateway.agentUrl, stateDir, root, simulate: true, readyDelayMs: 50, log: () => undefined }
    const first = await startReferenceAgent({ ...options, instanceId: instance.id, credential: instance.agent_credential, module: "k3s-server", targetClusterId: null })
    await first.joined
    await waitFor(() => first.state.appliedConfigs().length >= 4, "configs applied")
    await new Promise((resolve) => setTimeout(resolve, 200))
    const appliedBefore = first.state.appliedConfigs()
    first.stop()

    const applied: Array<string> = []
    const second = await startReferenceAgent({ ...options, log: (line) => line.startsWith("applied") && applied.push(line) })
    agents.push(second)
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(applied).toEqual([])
    expect(second.state.appliedConfigs()).toEqual(appliedBefore)
  }, 30_000)

  it("R24: an agent started with only its gateway, instance and credential joins the cluster its template names, and waits for an assignment it does not have yet", async () => {
    gateway = await testGateway()
    const { ops, network, template, instance } = await serverInstance(gateway, "k3s-prod-server-1")
    const server = await startReferenceAgent({ gatewayUrl: gateway.agentUrl, stateDir: scratch("state"), root: scratch("root"), instanceId: instance.id, credential: instance.agent_credential, simulate: true, readyDelayMs: 50, log: () => undefined })
    agents.push(server)
    const prod = await server.joined
    expect(prod.created_cluster).toBe(true)
    await waitFor(async () => (await ops.actions.kubernetes_get_cluster({ id: prod.cluster_id })).status === "active", "prod active")

    // A worker whose template has no module yet: it connects, and joins once the assignment is pushed.
    const workers = await ops.actions.system_create_template({ name: "prod-workers" })
    const node = await ops.actions.system_create_node({ hostname: "prod-worker-1", node_template_id: workers.id })
    const workerInstance = await ops.actions.system_provision_instance({ node_id: node.id })
    await ops.actions.system_sdwan_attach_peer({ network_id: network.id, node_instance_id: workerInstance.id })
    const lines: Array<string> = []
    const worker = await startReferenceAgent({ gatewayUrl: gateway.agentUrl, stateDir: scratch("state"), root: scratch("root"), instanceId: workerInstance.id, credential: workerInstance.agent_credential, simulate: true, readyDelayMs: 50, log: (line) => lines.push(line) })
    agents.push(worker)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(lines.some((line) => line.startsWith("joining"))).toBe(false)
    await ops.actions.system_assign_module_to_template({ template_id: workers.id, module_name: "k3s-agent", config: { target_cluster_id: prod.cluster_id } })
    const joined = await worker.joined
    expect(joined).toMatchObject({ cluster_id: prod.cluster_id, role: "worker" })
    void template
  }, 30_000)
})

describe("reference agent: several gateways", () => {
  it("remembers the gateways a gateway named in welcome, and reaches one of them after a restart when its configured gateway is down", async () => {
    const peer = "ws://127.0.0.1:9/v1/agent"
    gateway = await testGateway({ peerGateways: [peer] })
    const { instance } = await serverInstance(gateway)
    const stateDir = scratch("state")
    const first = await startReferenceAgent({ gatewayUrl: gateway.agentUrl, stateDir, root: scratch("root"), instanceId: instance.id, credential: instance.agent_credential, simulate: true, log: () => undefined })
    agents.push(first)
    expect(first.client.gateways.all).toEqual([gateway.agentUrl, peer])
    await waitFor(() => existsSync(join(stateDir, "gateways.json")), "the learnt gateways stored")
    expect(JSON.parse(readFileSync(join(stateDir, "gateways.json"), "utf8"))).toEqual([peer])
    first.stop()

    // Say the gateway it learnt is the live one, and the one it is configured with is gone.
    new AgentState(stateDir).setKnownGateways([gateway.agentUrl])
    const again = await startReferenceAgent({ gatewayUrl: "ws://127.0.0.1:9/v1/agent", stateDir, root: scratch("root"), simulate: true, log: () => undefined, backoff: { initialDelayMs: 20, maxDelayMs: 100, multiplier: 2 } })
    agents.push(again)
    expect(again.client.gatewayUrl).toBe(gateway.agentUrl)
  })
})
