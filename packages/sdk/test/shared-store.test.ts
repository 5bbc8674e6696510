/**
 * Two fleets (as two gateways would have) on one PostgreSQL database: what one commits, the
 * other hears; exactly one of them leads (runs the sensor and the skill runner) and the
 * other takes over when it goes; each sees the agents the other heard from.
 */
import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { createFleet, Leadership, type Fleet, type Signal } from "../src/index"
import { freshDatabase } from "./support/postgres"

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
})
