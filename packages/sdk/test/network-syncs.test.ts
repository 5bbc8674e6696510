/**
 * Coalesced WireGuard re-renders: peers attached and agents registering keys only ask for their
 * network to be rendered again; one flush renders it once with every key, and a request
 * survives a restart.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { applyPeerSetChange, renderWireguardConfig, type ConfigPushBody } from "@fleetplane/agent-protocol"
import { createFleet, NetworkSyncer, peerSetChange, publishPeerSet, Store, Transactor, type AgentIdentity } from "../src/index"
import { PEER_SET_HISTORY_VERSIONS } from "../src/config/wireguard"
import { wireguardKeyPair } from "./support/wireguard-keys"
import { freshDatabase } from "./support/postgres"

const flush = Effect.flatMap(Effect.service(NetworkSyncer), (syncer) => syncer.flush)

/** `database`: a SQLite file (or ":memory:"), or a PostgreSQL database. */
const setup = async (database: string | { readonly postgres: string }, peers: number) => {
  const fleet = await createFleet(typeof database === "string" ? { database, runSensor: false } : { postgres: database.postgres, runSensor: false })
  const account = await fleet.createAccount({ name: "acme" })
  const ops = fleet.forAccount(account.id)
  const network = await ops.actions.system_sdwan_create_network({ name: "prod", handle: "prod" })
  const template = await ops.actions.system_create_template({ name: "workers" })
  const port = await fleet.agentPort()
  const agents: Array<{ identity: AgentIdentity; keys: ReturnType<typeof wireguardKeyPair> }> = []
  for (let i = 0; i < peers; i++) {
    const node = await ops.actions.system_create_node({ hostname: `w${i}`, node_template_id: template.id })
    const instance = await ops.actions.system_provision_instance({ node_id: node.id })
    await ops.actions.system_sdwan_attach_peer({ network_id: network.id, node_instance_id: instance.id })
    agents.push({ identity: await fleet.run(port.authenticate(instance.id, instance.agent_credential)), keys: wireguardKeyPair() })
  }
  const hello = (agent: (typeof agents)[number]) =>
    fleet.run(port.hello(agent.identity, { wireguard_keys: [{ network_id: network.id, public_key: agent.keys.publicKey, endpoint: "198.51.100.7:51820" }], applied: [], held_vips: [] }))
  const wireguardOf = async (agent: (typeof agents)[number], peerVersion?: number) =>
    (await fleet.run(port.pendingPushes(agent.identity, [], new Map(peerVersion === undefined ? [] : [[network.id, peerVersion]])))).find(
      (p) => p.kind === "wireguard"
    ) as Extract<ConfigPushBody, { kind: "wireguard" }>
  // Attaching rendered nothing in the requests (#20: no render inside an admin call); one flush renders them all.
  const renderedByAttach = agents.length === 0 ? undefined : await wireguardOf(agents[0]!)
  await fleet.run(flush)
  return { fleet, port, network, agents, hello, wireguardOf, renderedByAttach }
}

describe("WireGuard re-renders are coalesced", () => {
  it("60 agents registering keys cost one render of their network, with every key in every config", async () => {
    const { fleet, agents, hello, wireguardOf, renderedByAttach } = await setup(":memory:", 60)
    expect(renderedByAttach).toBeUndefined()
    const before = await wireguardOf(agents[0]!)
    expect(before.version).toBe(1) // the 60 attaches: one render
    for (const agent of agents) await hello(agent)
    // Nothing rendered yet: a hello only asked for it.
    expect((await wireguardOf(agents[0]!)).version).toBe(before.version)
    await fleet.run(flush)
    for (const agent of agents) {
      const config = await wireguardOf(agent)
      expect(config.version).toBe(before.version + 1) // one render, not sixty
      const listed = agents.filter((other) => other !== agent && renderWireguardConfig({ interface: config.payload, peers: config.payload.peers.upserts }).includes(other.keys.publicKey))
      expect(listed).toHaveLength(59)
    }
    // A flush with nothing requested changes nothing.
    await fleet.run(flush)
    expect((await wireguardOf(agents[0]!)).version).toBe(before.version + 1)
    await fleet.close()
  }, 60_000)

  it("a request made before a crash is still rendered after the restart", async () => {
    const database = join(mkdtempSync(join(tmpdir(), "fleetplane-syncs-")), "fleet.db")
    const first = await setup(database, 3)
    for (const agent of first.agents) await first.hello(agent)
    await first.fleet.close() // stopped before the syncer ran
    const reopened = await createFleet({ database, runSensor: false })
    await reopened.run(flush)
    const port = await reopened.agentPort()
    const config = (await reopened.run(port.pendingPushes(first.agents[0]!.identity, []))).find((p) => p.kind === "wireguard") as Extract<ConfigPushBody, { kind: "wireguard" }>
    const rendered = renderWireguardConfig({ interface: config.payload, peers: config.payload.peers.upserts })
    for (const other of first.agents.slice(1)) expect(rendered).toContain(other.keys.publicKey)
    await reopened.close()
  }, 60_000)
})

describe("a network's peer set travels as versioned deltas (#20)", () => {
  it("one peer's new key reaches every other peer as that one entry, from the version it has; the full set goes to an agent without one", async () => {
    const { fleet, agents, hello, wireguardOf } = await setup(":memory:", 40)
    for (const agent of agents.slice(0, 39)) await hello(agent)
    await fleet.run(flush)
    const settled = await wireguardOf(agents[0]!)
    expect(settled.payload.peers).toMatchObject({ full: true, from_version: 0 })
    expect(settled.payload.peers.upserts).toHaveLength(39)
    const have = settled.payload.peers.version
    // The fortieth agent reports its key: one publish, one new entry.
    await hello(agents[39]!)
    await fleet.run(flush)
    const delta = await wireguardOf(agents[0]!, have)
    expect(delta.version).toBe(settled.version + 1)
    expect(delta.payload.peers).toMatchObject({ full: false, from_version: have, version: have + 1, removed: [] })
    expect(delta.payload.peers.upserts.map((entry) => entry.public_key)).toEqual([agents[39]!.keys.publicKey])
    expect(JSON.stringify(delta.payload).length).toBeLessThan(1_000)
    // Applied to what the agent had, the delta gives the same file as the full set does.
    const afterDelta = applyPeerSetChange(applyPeerSetChange(undefined, settled.payload.peers), delta.payload.peers)
    const full = await wireguardOf(agents[0]!)
    expect(full.payload.peers).toMatchObject({ full: true, version: have + 1 })
    expect(renderWireguardConfig({ interface: delta.payload, peers: afterDelta })).toBe(renderWireguardConfig({ interface: full.payload, peers: full.payload.peers.upserts }))
    // A version the store never reached (a database restored from an older backup) gets the full set.
    expect((await wireguardOf(agents[0]!, have + 50)).payload.peers).toMatchObject({ full: true, version: have + 1 })
    await fleet.close()
  }, 60_000)

  it("pushes made for many sessions at once (one read of the network's peers) are the ones made for each alone", async () => {
    const { fleet, port, network, agents, hello } = await setup(":memory:", 30)
    for (const agent of agents) await hello(agent)
    await fleet.run(flush)
    // Half of them hold no peer set yet, half the first version.
    const requests = agents.map((agent, i) => ({ identity: agent.identity, peerVersions: new Map<string, number>(i % 2 === 0 ? [] : [[network.id, 1]]) }))
    const stored = await fleet.run(Effect.flatMap(Effect.service(Store), (store) => store.transaction((tx) => Effect.forEach(agents, (agent) => tx.listDesiredConfigs(agent.identity.instanceId)))))
    const many = await fleet.run(port.completePushesMany(requests.map((request, i) => ({ ...request, records: stored[i]! }))))
    expect(many.size).toBe(agents.length)
    let pushes = 0
    for (const [i, request] of requests.entries()) {
      const alone = await fleet.run(port.completePushes(request.identity, stored[i]!, request.peerVersions))
      pushes += alone.length
      expect(many.pushesFor(i, request.peerVersions)).toEqual(alone)
      const wireguard = alone.find((push) => push.kind === "wireguard")
      expect(wireguard?.kind === "wireguard" && wireguard.payload.self.label).toBe(agents[i]!.identity.hostname)
    }
    expect(many.pushCount).toBe(pushes)
    // Made when the session's turn comes, from the versions it has then: a version read for
    // another session is served; one nobody asked with cannot be made without the store.
    const holdsFirst = new Map([[network.id, 1]])
    expect(many.pushesFor(0, holdsFirst)).toEqual(await fleet.run(port.completePushes(requests[0]!.identity, stored[0]!, holdsFirst)))
    expect(many.pushesFor(0, new Map([[network.id, 7]]))).toBeUndefined()
    await fleet.close()
  }, 60_000)

  it.each([
    ["SQLite", async () => ":memory:" as const],
    ["PostgreSQL", async () => ({ postgres: await freshDatabase() })]
  ])("a resume for many sessions at once (one read transaction) gives each what it gets alone, on %s", async (_, database) => {
    const { fleet, port, network, agents, hello } = await setup(await database(), 24)
    for (const agent of agents) await hello(agent)
    await fleet.run(flush)
    // A third applied nothing and hold no peer set; a third applied everything; a third hold the first peer set only.
    const everything = await fleet.run(port.pendingPushes(agents[0]!.identity, []))
    const requests = agents.map((agent, i) => ({
      identity: agent.identity,
      applied: i % 3 === 1 ? everything.map((push) => ({ kind: push.kind, key: push.key, version: push.version })) : [],
      peerVersions: new Map<string, number>(i % 3 === 2 ? [[network.id, 1]] : [])
    }))
    const prepared = await fleet.run(port.pendingPushesMany(requests))
    expect(prepared.size).toBe(agents.length)
    const many = requests.map((request, i) => prepared.pushesFor(i, request.peerVersions)!)
    for (const [i, request] of requests.entries()) {
      const alone = await fleet.run(port.pendingPushes(request.identity, request.applied, request.peerVersions))
      expect(many[i]).toEqual(alone)
    }
    expect(many[0]!.some((push) => push.kind === "wireguard")).toBe(true)
    expect(many[2]!.find((push) => push.kind === "wireguard")).toMatchObject({ payload: { peers: { from_version: 1, full: false } } })
    await fleet.close()
  }, 60_000)

  it("a detached peer arrives as a removal, and an unchanged re-publish changes no version", async () => {
    const { fleet, port, network, agents, hello, wireguardOf } = await setup(":memory:", 3)
    for (const agent of agents) await hello(agent)
    await fleet.run(flush)
    const before = await wireguardOf(agents[0]!)
    const ops = fleet.forAccount(agents[0]!.identity.accountId)
    const peer = (await ops.actions.system_sdwan_list_peers({ network_id: network.id })).peers.find((p) => p.instance_id === agents[2]!.identity.instanceId)!
    const detach = { network_id: network.id, node_instance_id: agents[2]!.identity.instanceId }
    await ops.actions.system_sdwan_detach_peer(detach).catch((error: { details: { confirmation_token: string } }) =>
      ops.actions.system_sdwan_detach_peer({ ...detach, confirmation_token: error.details.confirmation_token })
    )
    await fleet.run(flush)
    const after = await wireguardOf(agents[0]!, before.payload.peers.version)
    expect(after.payload.peers).toMatchObject({ full: false, upserts: [], removed: [peer.id] })
    const state = applyPeerSetChange(applyPeerSetChange(undefined, before.payload.peers), after.payload.peers)
    expect(renderWireguardConfig({ interface: after.payload, peers: state })).not.toContain(agents[2]!.keys.publicKey)
    expect((await fleet.run(port.pendingPushes(agents[2]!.identity, []))).some((p) => p.kind === "wireguard")).toBe(false) // no longer a peer
    await fleet.run(flush)
    expect((await wireguardOf(agents[0]!)).version).toBe(after.version)
    await fleet.close()
  }, 60_000)
})

describe("a network's removed peers are not kept forever (#20)", () => {
  it("removals older than the kept history are purged; an agent from before them gets the full set, never a delta missing a removal", async () => {
    const fleet = await createFleet({ database: ":memory:", runSensor: false })
    const networkId = "net_history" as never
    const peer = (id: string, endpoint: string) =>
      ({ id, hostname: id, public_key: `${Buffer.alloc(32, id.length).toString("base64")}`, endpoint, overlay_address: "fd00::1", overlay_ipv4_address: "100.64.0.1", pod_subnet: null }) as never
    const publish = (peers: ReadonlyArray<never>) => fleet.run(Effect.flatMap(Effect.service(Transactor), ({ transact }) => transact((ctx) => Effect.map(publishPeerSet(ctx, networkId, peers), ({ version }) => version))))
    const changeFrom = (from: number | undefined) => fleet.run(Effect.flatMap(Effect.service(Transactor), ({ transact }) => transact((ctx) => peerSetChange(ctx, networkId, from))))
    const entries = () => fleet.run(Effect.flatMap(Effect.service(Store), (store) => store.transaction((tx) => tx.listPeerEntries(networkId))))

    expect(await publish([peer("peer_a", "192.0.2.1:51820"), peer("peer_b", "192.0.2.2:51820")])).toBe(1)
    expect(await publish([peer("peer_a", "192.0.2.1:51820")])).toBe(2) // peer_b removed at version 2
    // The same set again: nothing changed, no new version.
    const again = await fleet.run(Effect.flatMap(Effect.service(Transactor), ({ transact }) => transact((ctx) => publishPeerSet(ctx, networkId, [peer("peer_a", "192.0.2.1:51820")]))))
    expect(again).toEqual({ version: 2, changed: 0 })
    // An agent at version 1 is told of the removal while it is kept.
    expect(await changeFrom(1)).toMatchObject({ full: false, removed: ["peer_b"] })
    // Then peer_a moves once per version, through the kept history.
    let version = 2
    for (let i = 0; i < PEER_SET_HISTORY_VERSIONS; i++) version = await publish([peer("peer_a", `192.0.2.1:${20_000 + i}`)])
    expect(version).toBe(2 + PEER_SET_HISTORY_VERSIONS)
    expect((await entries()).map((row) => row.peer_id)).toEqual(["peer_a"]) // peer_b's row is gone
    // Behind the horizon: the full set (without peer_b), not a delta that would leave peer_b in place.
    const stale = await changeFrom(1)
    expect(stale).toMatchObject({ full: true, version, removed: [] })
    expect(stale.upserts.map((entry) => entry.peer_id)).toEqual(["peer_a"])
    // At or after the horizon: deltas as before.
    expect(await changeFrom(2)).toMatchObject({ full: false, from_version: 2 })
    expect(await changeFrom(version - 1)).toMatchObject({ full: false, from_version: version - 1, removed: [] })
    await fleet.close()
  }, 60_000)
})
