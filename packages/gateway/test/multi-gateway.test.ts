/**
 * Two gateway processes on one PostgreSQL, real WebSocket agents on each (#8):
 * - a push decided on one gateway reaches the agent connected to the other, with the same
 *   versioned acks; when a gateway is killed (SIGKILL) its agents resume on the survivor
 *   without a config sent twice;
 * - kill -9 of the gateway that leads (runs the silence sensor) while a VIP holder goes
 *   silent: the survivor takes the lease and the failover happens exactly once.
 */
import { fork, type ChildProcess } from "node:child_process"
import { afterEach, describe, expect, it } from "vitest"
import { createFleet } from "@fleetplane/sdk"
import { AgentClient } from "@fleetplane/agent-protocol/client"
import type { GatewayOptions } from "../src/index"
import { adminClient, freshPostgresDatabase } from "./support/gateway-harness"
import { TestAgent, wireguardKeyPair } from "./support/test-agent"
// @ts-expect-error: a plain-JS script shared with the vitest globalSetup
import { startPostgres } from "../../../scripts/throwaway-postgres.mjs"
import { poll as pollUntil } from "./support/agent-steps"

const runner = new URL("./support/gateway-process.ts", import.meta.url).pathname
const children: Array<ChildProcess> = []
const agents: Array<TestAgent> = []
afterEach(() => {
  for (const agent of agents.splice(0)) agent.close()
  for (const child of children.splice(0)) child.kill("SIGKILL")
})

const freshDatabase = freshPostgresDatabase

const timing = { heartbeatIntervalMs: 200, silenceThresholdMs: 800, sensorIntervalMs: 50, livenessSyncMs: 100, leaseRetryMs: 100, helloTimeoutMs: 2_000 }

const startGatewayProcess = (postgres: string, overrides: Partial<GatewayOptions> = {}) =>
  new Promise<{ child: ChildProcess; agentUrl: string; adminUrl: string }>((resolve, reject) => {
    const options: GatewayOptions = { postgres, listen: "127.0.0.1:0", adminListen: "127.0.0.1:0", ...timing, ...overrides }
    const child = fork(runner, [JSON.stringify(options)], { execArgv: ["--import", "tsx"], stdio: ["ignore", "ignore", "inherit", "ipc"] })
    children.push(child)
    const timer = setTimeout(() => reject(new Error("gateway did not start")), 30_000)
    child.once("message", (message: { agentUrl: string; adminUrl: string }) => {
      clearTimeout(timer)
      resolve({ child, ...message })
    })
    child.once("exit", (code) => reject(new Error(`gateway exited with ${code}`)))
  })

const poll = <T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 10_000) => pollUntil(check, what, timeoutMs)

/** An account with an API key, a network and server/worker templates, made directly on the database. */
const setup = async (postgres: string, policy: "automatic" | "require_approval") => {
  const fleet = await createFleet({ postgres, runSensor: false })
  try {
    const account = await fleet.createAccount({ name: "acme" })
    const { api_key } = await fleet.createApiKey({ account_id: account.id, name: "tests", role: "admin" })
    const ops = fleet.forAccount(account.id)
    const network = await ops.actions.system_sdwan_create_network({ name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
    const servers = await ops.actions.system_create_template({ name: "servers" })
    await ops.actions.system_assign_module_to_template({ template_id: servers.id, module_name: "k3s-server", config: { vip_policy: policy } })
    const workers = await ops.actions.system_create_template({ name: "workers" })
    await ops.actions.system_assign_module_to_template({ template_id: workers.id, module_name: "k3s-agent" })
    const nodes: Record<string, { instanceId: string; credential: string }> = {}
    for (const [hostname, template] of [["s1", servers.id], ["s2", servers.id], ["w1", workers.id]] as const) {
      const node = await ops.actions.system_create_node({ hostname, node_template_id: template })
      const instance = await ops.actions.system_provision_instance({ node_id: node.id })
      await ops.actions.system_sdwan_attach_peer({ network_id: network.id, node_instance_id: instance.id })
      nodes[hostname] = { instanceId: instance.id, credential: instance.agent_credential }
    }
    return { apiKey: api_key, networkId: network.id as string, nodes }
  } finally {
    await fleet.close()
  }
}

/** An agent that acks what it applies and heartbeats until it goes silent. */
const connect = async (url: string, node: { instanceId: string; credential: string }, networkId: string, keys?: TestAgent["keys"], applied: Array<{ kind: string; key: string; version: number }> = []) => {
  const agent = await TestAgent.connect(url)
  agents.push(agent)
  if (keys !== undefined) Object.assign(agent.keys, keys)
  agent.onMessage = (message) => {
    if (message.type === "config_push") agent.send({ type: "config_ack", body: { kind: message.body.kind, key: message.body.key, version: message.body.version, status: "applied" } })
    if (message.type === "vip_assign" || message.type === "vip_release") {
      agent.send({ type: "vip_ack", body: { vip_id: message.body.vip_id, epoch: message.body.epoch, held: message.type === "vip_assign" } })
    }
  }
  agent.hello(node.instanceId, node.credential, { wireguard_keys: [{ network_id: networkId, public_key: agent.keys.publicKey }], applied: applied as never })
  await agent.message("welcome")
  return agent
}
const join = async (agent: TestAgent, module: "k3s-server" | "k3s-agent", target: string | null) => {
  const request_id = `join-${agent.seq++}`
  agent.send({ type: "join_request", body: { request_id, module_name: module, target_cluster_id: target } })
  const answer = await agent.until((a) => a.received.find((m) => (m.type === "join_accepted" || m.type === "join_rejected") && m.body.request_id === request_id), 10_000, "join")
  if (answer.type !== "join_accepted") throw new Error(`join rejected: ${JSON.stringify(answer.body)}`)
  agent.send({ type: "status_report", body: { k3s: { service: "active", node_ready: true }, modules: [] } })
  return answer.body.cluster_id
}
const beating = (list: Array<{ agent: TestAgent; silent?: boolean }>, networkId: string) => {
  const timer = setInterval(() => list.forEach((entry) => !entry.silent && !entry.agent.closed && entry.agent.heartbeat([networkId])), 100)
  return () => clearInterval(timer)
}
const isLeader = async (adminUrl: string) => ((await (await fetch(`${adminUrl}/healthz`)).json()) as { leader: boolean }).leader

describe("several gateways on one PostgreSQL", () => {
  it("a push decided on one gateway reaches the agent on the other; agents of a killed gateway resume on the survivor", async () => {
    const postgres = await freshDatabase()
    const { apiKey, networkId, nodes } = await setup(postgres, "require_approval")
    const [a, b] = await Promise.all([startGatewayProcess(postgres), startGatewayProcess(postgres)])
    const onB = adminClient(b, apiKey)

    const s1 = await connect(a.agentUrl, nodes.s1!, networkId)
    const clusterId = await join(s1, "k3s-server", null)
    await poll(async () => (await onB.action("kubernetes_get_cluster", { id: clusterId })).body.status === "active", "cluster active")
    // The worker joins through the other gateway: s1 (on A) hears of the new peer from B's decision.
    const w1 = await connect(b.agentUrl, nodes.w1!, networkId)
    await join(w1, "k3s-agent", clusterId)
    await s1.until((x) => x.wireguardConfig().includes(w1.keys.publicKey), 5_000, "s1's config with the worker")

    // An operator on B rotates the token: s1 on A gets it and acks it (A records the ack).
    const tokenBefore = Math.max(...s1.pushes("token").map((p) => p.version))
    expect((await onB.confirmed("kubernetes_rotate_token", { cluster_id: clusterId })).status).toBe(200)
    const rotated = await s1.until((x) => x.pushes("token").find((p) => p.version > tokenBefore), 5_000, "the rotated token on the other gateway")
    expect(rotated.version).toBe(tokenBefore + 1)

    // A dies. s1 comes back on B with what it applied: nothing is sent twice.
    await new Promise((resolve) => setTimeout(resolve, 300))
    const applied = s1.pushes().map((p) => ({ kind: p.kind, key: p.key, version: p.version }))
    a.child.kill("SIGKILL")
    await s1.waitClosed(5_000)
    const back = await connect(b.agentUrl, nodes.s1!, networkId, s1.keys, applied)
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(back.pushes()).toEqual([])
    // And it keeps receiving: a change after the move reaches it on B.
    expect((await onB.confirmed("kubernetes_rotate_token", { cluster_id: clusterId })).status).toBe(200)
    const next = await back.until((x) => x.pushes("token")[0], 5_000, "the next token on the survivor")
    expect(next.version).toBe(rotated.version + 1)
  }, 60_000)

  it("a publish on the leading gateway reaches every agent on the other, whose sessions are told without the records and read them together", async () => {
    const postgres = await freshDatabase()
    const { networkId, nodes } = await setup(postgres, "require_approval")
    const [a, b] = await Promise.all([startGatewayProcess(postgres), startGatewayProcess(postgres)])
    const leaderIsA = await poll(async () => ((await isLeader(a.adminUrl)) ? "a" : (await isLeader(b.adminUrl)) ? "b" : undefined), "a leader")
    const [leader, other] = leaderIsA === "a" ? [a, b] : [b, a]
    // Two sessions on the gateway that does not publish: its signals from the leader carry instance ids only.
    const watchers = [await connect(other.agentUrl, nodes.s2!, networkId), await connect(other.agentUrl, nodes.w1!, networkId)]
    await watchers[0]!.until((x) => x.wireguardConfig().includes(watchers[1]!.keys.publicKey), 10_000, "the other watcher's key")
    await watchers[1]!.until((x) => x.wireguardConfig().includes(watchers[0]!.keys.publicKey), 10_000, "the other watcher's key")
    // A new peer's key on the leader: published there, read here for both sessions at once.
    const s1 = await connect(leader.agentUrl, nodes.s1!, networkId)
    for (const watcher of watchers) await watcher.until((x) => x.wireguardConfig().includes(s1.keys.publicKey), 10_000, "the new peer, published on the other gateway")
    for (const watcher of watchers) expect(watcher.peerSetErrors).toEqual([])
  }, 60_000)

  it("kill -9 of the leading gateway while the VIP holder goes silent: the survivor takes over and fails over exactly once", async () => {
    const postgres = await freshDatabase()
    const { apiKey, networkId, nodes } = await setup(postgres, "automatic")
    const first = await startGatewayProcess(postgres)
    await poll(() => isLeader(first.adminUrl), "the first gateway to lead")
    const second = await startGatewayProcess(postgres)
    expect(await isLeader(second.adminUrl)).toBe(false)

    // The holder on the leader, a standby and a worker on the other gateway.
    const s1 = { agent: await connect(first.agentUrl, nodes.s1!, networkId), silent: false }
    const clusterId = await join(s1.agent, "k3s-server", null)
    const onSecond = adminClient(second, apiKey)
    await poll(async () => (await onSecond.action("kubernetes_get_cluster", { id: clusterId })).body.status === "active", "cluster active")
    const s2 = { agent: await connect(second.agentUrl, nodes.s2!, networkId) }
    await join(s2.agent, "k3s-server", clusterId)
    const w1 = { agent: await connect(second.agentUrl, nodes.w1!, networkId) }
    await join(w1.agent, "k3s-agent", clusterId)
    const stop = beating([s1, s2, w1], networkId)
    await new Promise((resolve) => setTimeout(resolve, 1_000)) // liveness shared both ways
    const before = (await onSecond.action("kubernetes_get_cluster", { id: clusterId })).body.virtual_ip
    expect(before.epoch).toBe(1)

    // The holder stops heartbeating and its gateway is killed with it.
    s1.silent = true
    first.child.kill("SIGKILL")
    await poll(() => isLeader(second.adminUrl), "the survivor to take the lease", 5_000)
    const assigned = await s2.agent.message("vip_assign", (m) => m.body.epoch === 2, 10_000)
    expect(assigned.body.vip_id).toBe(before.id)
    // The worker routes the VIP to the new holder.
    await w1.agent.until(
      (x) => x.pushes("vip_routes").some((p) => (p.payload as unknown as { routes: Array<{ public_key: string; epoch: number }> }).routes.some((r) => r.epoch === 2 && r.public_key === s2.agent.keys.publicKey)),
      5_000,
      "the worker's new VIP routes"
    )
    await new Promise((resolve) => setTimeout(resolve, 1_500)) // nothing more happens
    stop()
    const events = (await onSecond.action("system_list_events", { limit: 1000 })).body.events as Array<{ type: string; data: Record<string, unknown> }>
    expect(events.filter((e) => e.type === "sdwan.vip_holder_silent")).toHaveLength(1)
    expect(events.filter((e) => e.type === "sdwan.vip_failover_promoted").map((e) => e.data.epoch)).toEqual([2])
    expect((await onSecond.action("kubernetes_get_cluster", { id: clusterId })).body.virtual_ip.epoch).toBe(2)
  }, 60_000)

  it("a cluster bootstrapped through the gateway that does not lead raises no silence alarm (its holder's heartbeats are on the other gateway)", async () => {
    const postgres = await freshDatabase()
    const { apiKey, networkId, nodes } = await setup(postgres, "automatic")
    // Sharing slower than the sensor: the leader hears of the holder well after the VIP exists.
    const slowSharing = { livenessSyncMs: 600 }
    const leader = await startGatewayProcess(postgres, slowSharing)
    await poll(() => isLeader(leader.adminUrl), "the first gateway to lead")
    // The leader has been watching for longer than the silence threshold before the cluster exists.
    await new Promise((resolve) => setTimeout(resolve, timing.silenceThresholdMs * 2))
    const other = await startGatewayProcess(postgres, slowSharing)
    const s1 = { agent: await connect(other.agentUrl, nodes.s1!, networkId) }
    const stop = beating([s1], networkId)
    try {
      const clusterId = await join(s1.agent, "k3s-server", null)
      const onLeader = adminClient(leader, apiKey)
      await poll(async () => (await onLeader.action("kubernetes_get_cluster", { id: clusterId })).body.status === "active", "cluster active")
      await new Promise((resolve) => setTimeout(resolve, 3_000))
      const events = (await onLeader.action("system_list_events", { limit: 1000 })).body.events as Array<{ type: string }>
      expect(events.map((e) => e.type)).toContain("kubernetes.cluster_created")
      expect(events.filter((e) => e.type.startsWith("sdwan.vip_holder") || e.type.startsWith("sdwan.vip_failover"))).toEqual([])
    } finally {
      stop()
    }
  }, 60_000)

  it("when a gateway dies with its VIP holder, the survivor declares silence no earlier than the threshold after the holder's last heartbeat", async () => {
    const postgres = await freshDatabase()
    const { apiKey, networkId, nodes } = await setup(postgres, "automatic")
    // Sharing slower than the threshold's margin: an early declaration would show.
    const slowSharing = { livenessSyncMs: 600 }
    const survivor = await startGatewayProcess(postgres, slowSharing)
    await poll(() => isLeader(survivor.adminUrl), "the survivor to lead")
    const doomed = await startGatewayProcess(postgres, slowSharing)
    const s1 = await connect(doomed.agentUrl, nodes.s1!, networkId)
    let lastBeat = 0
    const timer = setInterval(() => {
      s1.heartbeat([networkId])
      lastBeat = Date.now()
    }, 100)
    const clusterId = await join(s1, "k3s-server", null)
    const onSurvivor = adminClient(survivor, apiKey)
    await poll(async () => (await onSurvivor.action("kubernetes_get_cluster", { id: clusterId })).body.status === "active", "cluster active")
    await new Promise((resolve) => setTimeout(resolve, 2_000)) // shared a few times
    // The holder stops, and its gateway dies with it, at a moment unrelated to the sharing cycle.
    await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 600)))
    clearInterval(timer)
    doomed.child.kill("SIGKILL")
    const silent = await poll(
      async () => ((await onSurvivor.action("system_list_events", { limit: 1000 })).body.events as Array<{ type: string; at: string; data: Record<string, unknown> }>).find((e) => e.type === "sdwan.vip_holder_silent"),
      "the silence event",
      10_000
    )
    expect(Date.parse(silent.at) - lastBeat).toBeGreaterThanOrEqual(timing.silenceThresholdMs)
    expect(silent.data).toMatchObject({ last_heartbeat_seen_by: "another gateway", threshold_ms: timing.silenceThresholdMs })
  }, 60_000)

  it("an agent moves to another gateway when its own is killed (one it learnt from welcome) or drains (1001), without a config applied twice", async () => {
    const postgres = await freshDatabase()
    const { networkId, nodes } = await setup(postgres, "automatic")
    // c <- b <- a: each gateway names the next in welcome; the agent is configured with a only.
    const c = await startGatewayProcess(postgres)
    const b = await startGatewayProcess(postgres, { peerGateways: [c.agentUrl] })
    const a = await startGatewayProcess(postgres, { peerGateways: [b.agentUrl] })
    const applied: Array<string> = []
    const keys = wireguardKeyPair()
    const client = new AgentClient({
      url: a.agentUrl,
      instanceId: nodes.s1!.instanceId,
      credential: nodes.s1!.credential,
      agentVersion: "test",
      wireguardKeys: () => [{ network_id: networkId, public_key: keys.publicKey }],
      applied: () => applied.map((entry) => {
        const [kind, key, version] = entry.split("|")
        return { kind: kind as "k3s", key: key!, version: Number(version) }
      }),
      heldVips: () => [],
      nodeState: () => ({ k3s: { service: "active", node_ready: true }, wireguard: [], load: { cpu_ratio: 0.1, memory_ratio: 0.1 } }),
      handlers: { applyConfig: async (push) => void applied.push(`${push.kind}|${push.key}|${push.version}`) },
      backoff: { initialDelayMs: 50, maxDelayMs: 500, multiplier: 2 }
    })
    try {
      await client.start()
      const joined = await client.requestJoin("k3s-server", null)
      expect(joined.accepted).toBe(true)
      await poll(() => applied.some((entry) => entry.startsWith("k3s|")), "the k3s config applied")
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(client.gateways.all).toEqual([a.agentUrl, b.agentUrl])

      // kill -9: the agent tries its gateway once more, then the one it learnt.
      const killedAt = Date.now()
      const onB = client.nextWelcome()
      a.child.kill("SIGKILL")
      await onB
      expect(client.gatewayUrl).toBe(b.agentUrl)
      expect(Date.now() - killedAt).toBeLessThan(5_000)
      expect(client.gateways.all).toEqual([a.agentUrl, b.agentUrl, c.agentUrl])

      // b drains (a graceful stop closes sessions with 1001): the preferred one is dead, so c.
      const onC = client.nextWelcome()
      b.child.kill("SIGTERM")
      await onC
      expect(client.gatewayUrl).toBe(c.agentUrl)
      await new Promise((resolve) => setTimeout(resolve, 500))
      expect(new Set(applied).size).toBe(applied.length) // nothing applied twice
    } finally {
      client.stop()
    }
  }, 60_000)

  it("while PostgreSQL is down, sessions stay up and heartbeats flow, decisions answer store_unavailable, and nothing is lost", async () => {
    // A server of its own: this test stops and restarts it.
    const own = await startPostgres()
    try {
      const { apiKey, networkId, nodes } = await setup(own.url, "require_approval")
      const gateway = await startGatewayProcess(own.url)
      const admin = adminClient(gateway, apiKey)
      const s1 = await connect(gateway.agentUrl, nodes.s1!, networkId)
      const clusterId = await join(s1, "k3s-server", null)
      await poll(async () => (await admin.action("kubernetes_get_cluster", { id: clusterId })).body.status === "active", "cluster active")
      const stop = beating([{ agent: s1 }], networkId)

      own.pause()
      const during = await admin.action("kubernetes_get_cluster", { id: clusterId })
      expect(during.status).toBe(503)
      expect(during.body.error.code).toBe("store_unavailable")
      await new Promise((resolve) => setTimeout(resolve, 1_500)) // longer than the silence threshold
      expect(s1.closed).toBeUndefined() // the agent's session is still up

      own.resume()
      const after = await poll(async () => {
        const answer = await admin.action("kubernetes_get_cluster", { id: clusterId })
        return answer.status === 200 ? answer.body : undefined
      }, "the gateway to answer again")
      expect(after.status).toBe("active")
      // The holder kept heartbeating: no silence was declared while the database was away.
      await new Promise((resolve) => setTimeout(resolve, 500))
      const events = (await admin.action("system_list_events", { limit: 1000 })).body.events as Array<{ type: string }>
      expect(events.filter((e) => e.type === "sdwan.vip_holder_silent")).toEqual([])
      expect(events.some((e) => e.type === "kubernetes.cluster_created")).toBe(true)
      stop()
    } finally {
      own.stop()
    }
  }, 60_000)
})
