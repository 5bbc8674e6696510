import { afterEach, describe, expect, it } from "vitest"
import { CloseCode } from "@fleetplane/agent-protocol"
import type { Gateway } from "../src/index"
import { adminClient, quietGateway, setupAccount, tempDatabase } from "./support/gateway-harness"
import { TestAgent } from "./support/test-agent"
import { connectAgent, heartbeating, join, poll, ready } from "./support/agent-steps"

let gateways: Array<Gateway> = []
const agents: Array<TestAgent> = []
afterEach(async () => {
  for (const agent of agents.splice(0)) agent.close()
  for (const gateway of gateways.splice(0)) await gateway.close()
})

const start = async (database = tempDatabase()) => {
  const gateway = await quietGateway({ database })
  gateways.push(gateway)
  return gateway
}

const connect = async (gateway: Gateway, node: { instanceId: string; credential: string }, networkId: string, extra: Record<string, unknown> = {}) => {
  const agent = await connectAgent(gateway, node, networkId, extra)
  agents.push(agent)
  return agent
}

/** The VIP routes naming the cluster's first holder have arrived (earlier versions list none). */
const hasVipRoute = (agent: TestAgent) => agent.pushes("vip_routes").some((p) => (p.payload as unknown as { routes: Array<unknown> }).routes.length > 0)

describe("gateway: the fleet over real sockets", () => {
  it("bootstrap, join, silence -> event -> approval -> promotion -> every peer receives and acks its new WireGuard config", async () => {
    const gateway = await start()
    const account = await setupAccount(gateway)
    const s1 = await connect(gateway, await account.provision("k3s-prod-server-1", account.serverTemplateId), account.networkId)
    const accepted = await join(s1, "k3s-server", null)
    expect(accepted.type).toBe("join_accepted")
    const clusterId = accepted.type === "join_accepted" ? accepted.body.cluster_id : ""
    await s1.until((a) => ["k3s", "token", "kubeconfig", "wireguard"].every((k) => a.pushes(k).length > 0), 5_000, "bootstrap configs")
    expect(s1.pushes("k3s")[0]!.payload).toMatchObject({ cluster_id: clusterId, role: "control-plane" })
    await s1.message("vip_assign")
    ready(s1)
    await poll(async () => (await account.admin.action("kubernetes_get_cluster", { id: clusterId })).body.status === "active", "cluster active")

    const s2 = await connect(gateway, await account.provision("k3s-prod-server-2", account.serverTemplateId), account.networkId)
    expect((await join(s2, "k3s-server", clusterId)).type).toBe("join_accepted")
    ready(s2)
    const w1 = await connect(gateway, await account.provision("worker-1", account.workerTemplateId), account.networkId)
    expect((await join(w1, "k3s-agent", clusterId)).type).toBe("join_accepted")
    const peers = [s1, s2, w1]
    const stopAll = heartbeating(peers, account.networkId)
    for (const peer of peers) {
      await peer.until((a) => a.wireguardConfig().split("[Peer]").length === 3, 5_000, "full mesh config")
      peer.ackAll()
    }
    await new Promise((resolve) => setTimeout(resolve, 300))
    stopAll()

    // s1 (the holder) goes silent with its socket still open; the others keep heartbeating.
    const stopOthers = heartbeating([s2, w1], account.networkId)
    const approval = await poll(async () => (await account.admin.get("/v1/approvals")).body.approvals[0], "an approval")
    const { body: events } = await account.admin.action("system_list_events", { limit: 1000 })
    expect(events.events.filter((e: { type: string }) => e.type === "sdwan.vip_holder_silent")).toHaveLength(1)

    const versionsBefore = peers.map((p) => Math.max(...p.pushes("vip_routes").map((x) => x.version)))
    const decided = (await fetch(`${gateway.adminUrl}/v1/approvals/${approval.id}/approve`, {
      method: "POST",
      headers: { authorization: `Bearer ${account.apiKey}` }
    }).then((r) => r.json())) as { status: string }
    expect(decided.status).toBe("approved")
    const assigned = await s2.message("vip_assign", (m) => m.body.epoch === 2)
    expect(assigned.body.epoch).toBe(2)
    await s1.message("vip_release", (m) => m.body.epoch === 2)
    const started = Date.now()
    for (const [index, peer] of peers.entries()) {
      // The VIP moves by its routes alone: a few hundred bytes per peer, naming the new holder's key.
      const routes = await peer.until((a) => a.pushes("vip_routes").find((p) => p.version > versionsBefore[index]!), 5_000, "new VIP routes")
      expect((routes.payload as unknown as { routes: Array<{ public_key: string; epoch: number }> }).routes).toEqual([expect.objectContaining({ public_key: s2.keys.publicKey, epoch: 2 })])
      peer.ackAll()
    }
    expect(Date.now() - started).toBeLessThan(5_000)
    stopOthers()
    // Acks were recorded: nothing is pending for any peer.
    await s2.until(() => gateway.metrics.pushesAcked.value > 0 && [...gateway.sessions.all()].every((s) => s.pendingPushes === 0), 3_000, "acks recorded")
  }, 30_000)

  it("rejections carry the reason and retry_after_ms", async () => {
    const gateway = await start()
    const account = await setupAccount(gateway)
    const worker = await connect(gateway, await account.provision("w1", account.workerTemplateId), account.networkId)
    const answer = await join(worker, "k3s-agent", "clu_nope")
    expect(answer.type).toBe("join_rejected")
    if (answer.type === "join_rejected") {
      expect(answer.body.code).toBe("cluster_not_found")
      expect(answer.body.retry_after_ms).toBeGreaterThan(0)
    }
  })

  it("an agent away during a change gets exactly the newer versions when it comes back", async () => {
    const gateway = await start()
    const account = await setupAccount(gateway)
    const node = await account.provision("s1", account.serverTemplateId)
    const first = await connect(gateway, node, account.networkId)
    await join(first, "k3s-server", null)
    await first.until((a) => ["token", "k3s", "wireguard"].every((kind) => a.pushes(kind).length > 0) && hasVipRoute(a), 5_000, "configs")
    first.ackAll()
    await first.until(() => [...gateway.sessions.all()].every((s) => s.pendingPushes === 0), 3_000, "acks")
    const applied = first.pushes().map((p) => ({ kind: p.kind, key: p.key, version: p.version }))
    const clusterId = first.pushes("token")[0]!.key
    first.close()
    await first.waitClosed()

    // Decided while the agent is away: a token rotation.
    const rotated = await account.admin.confirmed("kubernetes_rotate_token", { cluster_id: clusterId })
    expect(rotated.status).toBe(200)

    // The same node: the same WireGuard key (a new key would rightly change every peer's config).
    const back = await connect(gateway, node, account.networkId, { applied, wireguard_keys: [{ network_id: account.networkId, public_key: first.keys.publicKey }] })
    await back.until((a) => a.pushes("token").length > 0, 5_000, "rotated token")
    await new Promise((resolve) => setTimeout(resolve, 200))
    const resent = back.pushes()
    // The rotation changed the token and the k3s config (which carries it); nothing else is resent.
    expect(resent.map((p) => p.kind).sort()).toEqual(["k3s", "token"])
    for (const push of resent) {
      const before = applied.find((a) => a.kind === push.kind && a.key === push.key)
      expect(push.version).toBeGreaterThan(before?.version ?? 0)
    }
    expect(resent.some((p) => p.kind === "wireguard")).toBe(false)
  })

  it("a gateway restart in the middle of the flow loses nothing", async () => {
    const database = tempDatabase()
    const first = await start(database)
    const account = await setupAccount(first)
    const node = await account.provision("s1", account.serverTemplateId)
    const s1 = await connect(first, node, account.networkId)
    const accepted = await join(s1, "k3s-server", null)
    const clusterId = accepted.type === "join_accepted" ? accepted.body.cluster_id : ""
    await s1.until((a) => a.pushes("k3s").length > 0 && a.pushes("wireguard").length > 0 && hasVipRoute(a), 5_000, "configs")
    const before = s1.pushes().map((p) => ({ kind: p.kind, key: p.key, version: p.version }))

    await first.close()
    gateways = gateways.filter((g) => g !== first)
    expect((await s1.waitClosed()).code).toBe(CloseCode.GoingAway)

    const second = await start(database)
    const back = await connect(second, node, account.networkId, { applied: before, wireguard_keys: [{ network_id: account.networkId, public_key: s1.keys.publicKey }] })
    ready(back)
    const admin = adminClient(second, account.apiKey)
    await poll(async () => (await admin.action("kubernetes_get_cluster", { id: clusterId })).body.status === "active", "cluster active after restart")
    // Reconnected with everything applied: nothing is sent twice.
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(back.pushes()).toEqual([])
    // A second bootstrap join from the same instance is idempotent across the restart.
    const again = await join(back, "k3s-server", null)
    expect(again.type === "join_accepted" && again.body.cluster_id === clusterId && !again.body.created_cluster).toBe(true)
    const { body } = await admin.action("kubernetes_list_clusters")
    expect(body.clusters).toHaveLength(1)
  })
})
