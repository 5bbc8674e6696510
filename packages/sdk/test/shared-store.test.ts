/**
 * Two fleets (as two gateways would have) on one PostgreSQL database: what one commits, the
 * other hears; exactly one of them leads (runs the sensor and the skill runner) and the
 * other takes over when it goes; each sees the agents the other heard from; racing joins,
 * decommissions and failovers on both stay serializable.
 */
import { Effect } from "effect"
import pg from "pg"
import { afterEach, describe, expect, it } from "vitest"
import { createFleet, FleetplaneError, Leadership, type Fleet, type JoinOutcome, type Signal } from "../src/index"
import { freshDatabase, terminateOtherConnections } from "./support/postgres"

const fast = { livenessSyncMs: 100, leaseRetryMs: 100, heartbeatIntervalMs: 200, silenceThresholdMs: 600 }
let fleets: Array<Fleet> = []
afterEach(async () => {
  for (const fleet of fleets.splice(0)) await fleet.close().catch(() => undefined)
})

const open = async (postgres: string) => {
  const fleet = await createFleet({ postgres, config: fast })
  fleets.push(fleet)
  return fleet
}
const until = async <T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 5_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
const isLeader = (fleet: Fleet) => fleet.run(Effect.map(Effect.service(Leadership), (l) => l.isLeader()))

describe("several fleets on one PostgreSQL", () => {
  it("a change committed on one is heard on the other: events (the same stream) and changed desired configs", async () => {
    const url = await freshDatabase()
    const a = await open(url)
    const b = await open(url)
    const heardOnA: Array<Signal> = []
    await a.subscribeSignals((signal) => heardOnA.push(signal))
    const account = await b.createAccount({ name: "acme" })
    const ops = b.forAccount(account.id)
    const network = await ops.actions.system_sdwan_create_network({ name: "prod", handle: "prod" })
    const template = await ops.actions.system_create_template({ name: "workers" })
    const node = await ops.actions.system_create_node({ hostname: "w1", node_template_id: template.id })
    const instance = await ops.actions.system_provision_instance({ node_id: node.id })
    await ops.actions.system_sdwan_attach_peer({ network_id: network.id, node_instance_id: instance.id })

    const changed = await until(
      () => heardOnA.find((s) => s._tag === "DesiredConfigsChanged" && s.instanceIds.includes(instance.id as never)),
      "the desired-config change on the other fleet"
    )
    expect(changed).toBeDefined()
    const eventsOnA = await until(() => {
      const types = heardOnA.flatMap((s) => (s._tag === "EventsAppended" ? s.events.map((e) => e.type) : []))
      return types.includes("sdwan.peer_attached") ? types : undefined
    }, "the events")
    // The same stream: A's listing equals B's.
    const listedOnA = (await a.forAccount(account.id).events.list()).map((e) => e.seq)
    const listedOnB = (await ops.events.list()).map((e) => e.seq)
    expect(listedOnA).toEqual(listedOnB)
    expect(eventsOnA).toContain("sdwan.network_created")
  }, 20_000)

  /** Two gateways on one database; a key made on `a` and checked (so cached) on `b`. */
  const keyCheckedOnB = async () => {
    const postgres = await freshDatabase()
    const a = await open(postgres)
    const b = await open(postgres)
    const account = await a.createAccount({ name: "acme" })
    const key = await a.createApiKey({ account_id: account.id, name: "ci", role: "admin" })
    expect((await b.identifyApiKey(key.api_key)).api_key_id).toBe(key.id)
    const refusedByB = async () => (await b.identifyApiKey(key.api_key).catch((e: FleetplaneError) => e.code)) === "invalid_api_key"
    return { postgres, a, b, account, key, refusedByB }
  }

  it("an API key revoked on one is refused by the other well before its cached identity would expire", async () => {
    const { a, account, key, refusedByB } = await keyCheckedOnB()
    const revokedAt = Date.now()
    await a.revokeApiKey({ account_id: account.id, api_key_id: key.id })
    await until(refusedByB, "the other gateway to refuse the key", 3_000)
    // The cache keeps identities 10 s by default; the revocation travelled as a signal instead.
    expect(Date.now() - revokedAt).toBeLessThan(3_000)
  })

  it("a revocation whose notice was missed is dropped when the gateway hears the others again; until then the cache bounds it", async () => {
    const { postgres, b, key, refusedByB } = await keyCheckedOnB()
    const admin = new pg.Client({ connectionString: postgres })
    await admin.connect()
    try {
      // Revoked behind every gateway's back (no event, no NOTIFY): b still trusts what it checked.
      await admin.query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2", [new Date().toISOString(), key.id])
    } finally {
      await admin.end()
    }
    expect((await b.identifyApiKey(key.api_key)).api_key_id).toBe(key.id)
    // Every gateway's connections drop (a database restart would do the same): b listens again and starts over.
    await terminateOtherConnections(postgres)
    await until(refusedByB, "b to read the key again after listening again", 5_000)
  })

  it("exactly one leads; when it closes, the other takes over", async () => {
    const url = await freshDatabase()
    const a = await open(url)
    const b = await open(url)
    await until(async () => (await isLeader(a)) !== (await isLeader(b)), "one leader")
    const [leader, follower] = (await isLeader(a)) ? [a, b] : [b, a]
    // Stays that way.
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect([await isLeader(leader), await isLeader(follower)]).toEqual([true, false])
    await leader.close()
    fleets = fleets.filter((f) => f !== leader)
    await until(() => isLeader(follower), "the follower to take the lease")
  }, 20_000)

  it("each sees the heartbeats the other received", async () => {
    const url = await freshDatabase()
    const a = await open(url)
    const b = await open(url)
    const account = await a.createAccount({ name: "acme" })
    const ops = a.forAccount(account.id)
    const template = await ops.actions.system_create_template({ name: "workers" })
    const node = await ops.actions.system_create_node({ hostname: "w1", node_template_id: template.id })
    const instance = await ops.actions.system_provision_instance({ node_id: node.id })
    const port = await a.agentPort()
    const identity = await a.run(port.authenticate(instance.id, instance.agent_credential))
    await a.run(port.heartbeat(identity, { seq: 1, k3s: { service: "active", node_ready: true }, wireguard: [], load: { cpu_ratio: 0.5, memory_ratio: 0.25 } }))
    const onB = await b.liveness()
    const seen = await until(() => onB.get(instance.id as never), "the heartbeat on the other fleet")
    expect(seen.k3s).toEqual({ service: "active", node_ready: true })
    expect(seen.load).toEqual({ cpu_ratio: 0.5, memory_ratio: 0.25 })
  }, 20_000)

  /** Runs a destructive action through its confirmation, the confirmed call on `runOn`. */
  const confirmedOn = async (ask: Fleet, runOn: Fleet, accountId: string, name: string, input: Record<string, unknown>) => {
    try {
      return await ask.forAccount(accountId).execute(name, input)
    } catch (error) {
      if (!(error instanceof FleetplaneError) || error.code !== "confirmation_required") throw error
      return runOn.forAccount(accountId).execute(name, { ...input, confirmation_token: error.details.confirmation_token })
    }
  }
  const beat = (fleet: Fleet, port: Awaited<ReturnType<Fleet["agentPort"]>>, identity: any) =>
    fleet.run(port.heartbeat(identity, { seq: 1, k3s: { service: "active", node_ready: true }, wireguard: [], load: { cpu_ratio: 0.1, memory_ratio: 0.1 } }))

  /** Two fleets on one fresh database; an account with a network, server and worker templates; agents provisioned through A. */
  const twoFleetsWithNetwork = async () => {
    const url = await freshDatabase()
    const a = await open(url)
    const b = await open(url)
    const account = await a.createAccount({ name: "acme" })
    const ops = a.forAccount(account.id)
    const network = await ops.actions.system_sdwan_create_network({ name: "prod", handle: "prod" })
    const servers = await ops.actions.system_create_template({ name: "servers" })
    await ops.actions.system_assign_module_to_template({ template_id: servers.id, module_name: "k3s-server" })
    const workers = await ops.actions.system_create_template({ name: "workers" })
    await ops.actions.system_assign_module_to_template({ template_id: workers.id, module_name: "k3s-agent" })
    const portA = await a.agentPort()
    const provision = async (hostname: string, templateId: string) => {
      const node = await ops.actions.system_create_node({ hostname, node_template_id: templateId })
      const instance = await ops.actions.system_provision_instance({ node_id: node.id })
      await ops.actions.system_sdwan_attach_peer({ network_id: network.id, node_instance_id: instance.id })
      return a.run(portA.authenticate(instance.id, instance.agent_credential))
    }
    return { a, b, account, ops, servers, workers, portA, provision }
  }

  /**
   * Each round: a fresh active cluster on A, then `joiners` agents joining it on A (at once: decided
   * together) while B decommissions it (confirmation asked first, then the confirmed call raced).
   * Whichever comes first, no node may be left in the decommissioned cluster.
   */
  const raceJoinsWithDecommission = async (rounds: number, joiners: number) => {
    const { a, b, account, ops, servers, workers, portA, provision } = await twoFleetsWithNetwork()
    const outcomes: Array<JoinOutcome> = []
    for (let round = 0; round < rounds; round++) {
      const server = await provision(`s${round}`, servers.id)
      const created = await a.run(portA.joinRequest(server, { request_id: `b${round}`, module_name: "k3s-server", target_cluster_id: null }))
      if (!created.accepted) throw new Error("bootstrap rejected")
      await a.run(portA.statusReport(server, { k3s: { service: "active", node_ready: true }, modules: [] }))
      const workersOfRound = await Promise.all(Array.from({ length: joiners }, (_, i) => provision(`w${round}-${i}`, workers.id)))
      let token = ""
      await b
        .forAccount(account.id)
        .execute("kubernetes_decommission_cluster", { cluster_id: created.cluster_id })
        .catch((error: FleetplaneError) => (token = String(error.details.confirmation_token)))
      const [joined] = await Promise.all([
        Promise.all(workersOfRound.map((worker, i) => a.run(portA.joinRequest(worker, { request_id: `j${round}-${i}`, module_name: "k3s-agent", target_cluster_id: created.cluster_id })))),
        b.forAccount(account.id).execute("kubernetes_decommission_cluster", { cluster_id: created.cluster_id, confirmation_token: token })
      ])
      const { nodes } = (await ops.execute("kubernetes_list_nodes", { cluster_id: created.cluster_id })) as { nodes: Array<unknown> }
      expect(nodes).toEqual([])
      outcomes.push(...joined)
    }
    for (const outcome of outcomes) if (!outcome.accepted) expect(outcome.code).toMatch(/cluster_not_active|cluster_decommissioned|cluster_not_found/)
    expect(outcomes.length).toBe(rounds * joiners)
  }

  it("a join on one and a decommission on the other, concurrently, never leave a node in a decommissioned cluster", () => raceJoinsWithDecommission(6, 1), 60_000)

  it("agents joining together on one (decided in one transaction) and a decommission on the other never leave a node in a decommissioned cluster", () => raceJoinsWithDecommission(4, 5), 90_000)

  it("manual failovers racing on both never give an epoch two holders", async () => {
    const { a, b, account, ops, servers, portA, provision } = await twoFleetsWithNetwork()
    const portB = await b.agentPort()
    const identities = []
    let clusterId: string | null = null
    for (const hostname of ["s1", "s2", "s3"]) {
      const identity = await provision(hostname, servers.id)
      const outcome: JoinOutcome = await a.run(portA.joinRequest(identity, { request_id: hostname, module_name: "k3s-server", target_cluster_id: clusterId }))
      if (!outcome.accepted) throw new Error("join rejected")
      clusterId = outcome.cluster_id
      await a.run(portA.statusReport(identity, { k3s: { service: "active", node_ready: true }, modules: [] }))
      identities.push(identity)
    }
    const vipId = ((await ops.execute("kubernetes_get_cluster", { id: clusterId })) as { virtual_ip: { id: string } }).virtual_ip.id
    for (let round = 0; round < 8; round++) {
      for (const identity of identities) {
        await beat(a, portA, identity)
        await beat(b, portB, identity)
      }
      await Promise.allSettled([
        confirmedOn(a, a, account.id, "system_sdwan_failover_virtual_ip", { virtual_ip_id: vipId }),
        confirmedOn(b, b, account.id, "system_sdwan_failover_virtual_ip", { virtual_ip_id: vipId })
      ])
    }
    const events = await ops.events.list({ limit: 1000 })
    const epochs = events.filter((e) => e.type === "sdwan.vip_failover_promoted").map((e) => Number(e.data.epoch))
    // Every promotion has its own epoch, one after the other, and the stored holder is the last one's.
    expect(epochs).toEqual(Array.from({ length: epochs.length }, (_, i) => i + 2))
    expect(epochs.length).toBeGreaterThanOrEqual(8)
    const vip = ((await ops.execute("kubernetes_get_cluster", { id: clusterId })) as { virtual_ip: { epoch: number; holder_peer_id: string } }).virtual_ip
    expect(vip.epoch).toBe(epochs.at(-1))
    const last = events.filter((e) => e.type === "sdwan.vip_failover_promoted").at(-1)!
    expect(vip.holder_peer_id).toBe(last.data.to_peer_id)
  }, 60_000)
})
