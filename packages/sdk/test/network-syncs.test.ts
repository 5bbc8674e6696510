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
import { createFleet, NetworkSyncer, type AgentIdentity } from "../src/index"
import { wireguardKeyPair } from "./support/wireguard-keys"

const flush = Effect.flatMap(Effect.service(NetworkSyncer), (syncer) => syncer.flush)

const setup = async (database: string, peers: number) => {
  const fleet = await createFleet({ database, runSensor: false })
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
  const wireguardOf = async (agent: (typeof agents)[number]) =>
    (await fleet.run(port.pendingPushes(agent.identity.instanceId, []))).find((p) => p.kind === "wireguard") as { version: number; payload: { content: string } }
  // Attaching rendered nothing in the requests (#20: no render inside an admin call); one flush renders them all.
  const renderedByAttach = agents.length === 0 ? undefined : await wireguardOf(agents[0]!)
  await fleet.run(flush)
  return { fleet, agents, hello, wireguardOf, renderedByAttach }
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
      const listed = agents.filter((other) => other !== agent && config.payload.content.includes(other.keys.publicKey))
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
    const config = (await reopened.run(port.pendingPushes(first.agents[0]!.identity.instanceId, []))).find((p) => p.kind === "wireguard") as { payload: { content: string } }
    for (const other of first.agents.slice(1)) expect(config.payload.content).toContain(other.keys.publicKey)
    await reopened.close()
  }, 60_000)
})
