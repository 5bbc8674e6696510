/**
 * WireGuard pushes through a real gateway as peer-set deltas (#20): a peer that joins costs each
 * other peer one entry, an agent that reconnects with its version gets only what changed, and an
 * agent whose copy went out of step says so and is sent the full set at once.
 */
import { afterEach, describe, expect, it } from "vitest"
import type { ConfigPushBody } from "@fleetplane/agent-protocol"
import type { Gateway } from "../src/index"
import { quietGateway, setupAccount } from "./support/gateway-harness"
import { TestAgent } from "./support/test-agent"

let gateway: Gateway | undefined
const agents: Array<TestAgent> = []
afterEach(async () => {
  for (const agent of agents.splice(0)) agent.close()
  await gateway?.close()
  gateway = undefined
})

type WireguardPush = Extract<ConfigPushBody, { kind: "wireguard" }>
const wireguardPushes = (agent: TestAgent) => agent.pushes("wireguard") as Array<WireguardPush>

const connect = async (account: Awaited<ReturnType<typeof setupAccount>>, node: { instanceId: string; credential: string }, index: number, extra = {}) => {
  const agent = await TestAgent.connect(gateway!.agentUrl)
  agents.push(agent)
  agent.hello(node.instanceId, node.credential, {
    wireguard_keys: [{ network_id: account.networkId, public_key: agent.keys.publicKey, endpoint: `198.51.100.${index}:51820` }],
    ...extra
  })
  await agent.message("welcome")
  return agent
}

describe("gateway: WireGuard peer sets as deltas", () => {
  it("a peer joining a settled network reaches every other peer as its one entry", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const nodes = await Promise.all(Array.from({ length: 12 }, (_, i) => account.provision(`w${i}`, account.workerTemplateId)))
    const settled = await Promise.all(nodes.slice(0, 11).map((node, i) => connect(account, node, i + 1)))
    for (const agent of settled) await agent.until((a) => a.wireguardConfig().split("[Peer]").length === 11, 10_000, "the other ten peers")
    const before = settled.map((agent) => wireguardPushes(agent).length)

    const joiner = await connect(account, nodes[11]!, 12)
    for (const [i, agent] of settled.entries()) {
      await agent.until((a) => a.wireguardConfig().includes(joiner.keys.publicKey), 10_000, "the joiner")
      const delta = wireguardPushes(agent).slice(before[i]!)
      // Every push since carried a delta; together they hold the joiner's entry and nothing else.
      expect(delta.every((push) => !push.payload.peers.full)).toBe(true)
      expect(delta.flatMap((push) => push.payload.peers.upserts.map((entry) => entry.public_key))).toEqual([joiner.keys.publicKey])
      expect(agent.peerSetErrors).toEqual([])
    }
    // The joiner itself starts from the full set.
    await joiner.until((a) => a.wireguardConfig().split("[Peer]").length === 12, 10_000, "every other peer")
    expect(wireguardPushes(joiner)[0]!.payload.peers.full).toBe(true)
  }, 60_000)

  it("an agent reconnecting with its peer-set version gets what changed while it was away, as a delta", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((name) => account.provision(name, account.workerTemplateId)))
    const first = await connect(account, a!, 1)
    const second = await connect(account, b!, 2)
    await first.until((x) => x.wireguardConfig().includes(second.keys.publicKey), 10_000, "b in a's config")
    const kept = first.peerVersions()
    const applied = wireguardPushes(first).at(-1)!
    first.close()
    await first.waitClosed()
    const third = await connect(account, c!, 3)
    await second.until((x) => x.wireguardConfig().includes(third.keys.publicKey), 10_000, "c in b's config")

    const back = await connect(account, a!, 1, { applied: [{ kind: "wireguard", key: applied.key, version: applied.version }], peer_versions: kept })
    const missed = await back.until((x) => wireguardPushes(x)[0], 10_000, "the missed change")
    expect(missed.payload.peers).toMatchObject({ full: false, from_version: kept[0]!.version })
    expect(missed.payload.peers.upserts.map((entry) => entry.public_key)).toEqual([third.keys.publicKey])
  }, 60_000)

  it("an agent whose copy is out of step acks peer_set_out_of_sync and is sent the full set at once", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const [a, b] = await Promise.all(["a", "b"].map((name) => account.provision(name, account.workerTemplateId)))
    const other = await connect(account, b!, 2)
    // It claims a version it does not have (its state directory was restored from an old backup, say).
    const agent = await connect(account, a!, 1, { peer_versions: [{ network_id: account.networkId, version: 0 }] })
    await other.until((x) => x.wireguardConfig().includes(agent.keys.publicKey), 10_000, "a in b's config")
    const stale = await agent.until((x) => wireguardPushes(x).find((push) => !push.payload.peers.full), 10_000, "a delta from version 0")
    agent.send({
      type: "config_ack",
      body: { kind: "wireguard", key: stale.key, version: stale.version, status: "failed", error: { code: "peer_set_out_of_sync", message: "this node has version none" } }
    })
    const full = await agent.until((x) => wireguardPushes(x).find((push) => push.payload.peers.full), 10_000, "the full set")
    expect(full.version).toBe(stale.version)
    expect(full.payload.peers.upserts.map((entry) => entry.public_key)).toContain(other.keys.publicKey)
  }, 60_000)
})
