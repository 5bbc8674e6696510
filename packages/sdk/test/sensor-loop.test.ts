/**
 * The running silence sensor (#20): it keeps the held VIPs in memory and looks at a VIP again
 * only at its holder's deadline, when the holder's liveness changes, or after a VIP event, so an
 * idle gateway reads nothing per tick. These tests drive the real loop (not `check`) on the
 * TestClock: a silent holder is still caught at its threshold, never early; a heartbeat in time
 * moves the deadline; a cluster bootstrapped after the loop started is watched too.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { VipSensor } from "../src/index"
import { accountWithNetwork, activeCluster, events, exec, heartbeat, type SimAgent, withFleet } from "./support/fleet-harness"

const silentEvents = (accountId: any) => Effect.map(events(accountId), (list) => list.filter((e) => e.type === "sdwan.vip_holder_silent"))

/** Advances virtual time one second at a time; `alive` agents heartbeat each second. */
const passTime = (seconds: number, alive: ReadonlyArray<SimAgent>) =>
  Effect.gen(function* () {
    for (let i = 0; i < seconds; i++) {
      yield* TestClock.adjust(1_000)
      for (const agent of alive) yield* heartbeat(agent)
    }
  })

describe("the running sensor", () => {
  it.effect("catches a silent holder at its threshold and not before, fails over, and watches a cluster created after it started", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork({ vipPolicy: "automatic" })
        const { clusterId, servers } = yield* activeCluster(setup, { servers: 2 })
        const [holder, standby] = servers as [SimAgent, SimAgent]
        const loop = yield* Effect.forkChild((yield* VipSensor).run)

        // Both heartbeat: nothing happens, however long.
        yield* passTime(30, [holder, standby])
        assert.strictEqual((yield* silentEvents(setup.accountId)).length, 0)

        // The holder stops. 14 s later it is not silent yet (threshold 15 s); by 16 s it is, and the VIP moved.
        yield* passTime(14, [standby])
        assert.strictEqual((yield* silentEvents(setup.accountId)).length, 0)
        yield* passTime(2, [standby])
        const silent = yield* silentEvents(setup.accountId)
        assert.strictEqual(silent.length, 1)
        assert.strictEqual(silent[0]!.data.holder_hostname, holder.hostname)
        const cluster = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        assert.strictEqual(cluster.virtual_ip.holder_hostname, standby.hostname)

        // A second cluster, bootstrapped while the loop runs, on its own network: its holder's silence is caught too.
        const lab = yield* exec(setup.accountId, "system_sdwan_create_network", { name: "lab", handle: "lab", pod_subnet_prefix: "10.60.0.0/16" })
        const labCluster = yield* activeCluster({ ...setup, networkId: lab.id }, { servers: 1, prefix: "lab-server" })
        yield* passTime(5, [standby, ...labCluster.servers])
        yield* passTime(16, [standby])
        const labSilent = (yield* silentEvents(setup.accountId)).filter((e) => e.data.cluster_id === labCluster.clusterId)
        assert.strictEqual(labSilent.length, 1)
        // The first cluster's new holder kept heartbeating: no second incident there.
        assert.strictEqual((yield* silentEvents(setup.accountId)).filter((e) => e.data.cluster_id === clusterId).length, 1)
        yield* Fiber.interrupt(loop)
      })
    )
  )

  it.effect("sleeps while a silent holder stays silent, and sees it back as soon as it is heard from", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork({ vipPolicy: "automatic" })
        // One server: nowhere to fail over to, so the incident stays open until the holder is back.
        const { servers } = yield* activeCluster(setup, { servers: 1 })
        const holder = servers[0]!
        const loop = yield* Effect.forkChild((yield* VipSensor).run)
        yield* passTime(16, [])
        assert.strictEqual((yield* silentEvents(setup.accountId)).length, 1)

        // Silent for 10 more minutes: nothing more (its incident stays open; no deadline to wake for).
        yield* passTime(600, [])
        const recovered = () => Effect.map(events(setup.accountId), (list) => list.filter((e) => e.type === "sdwan.vip_holder_recovered"))
        assert.strictEqual((yield* recovered()).length, 0)

        // Heard from again, between safety reads: recovered within one sensor interval (100 ms), not 30 s later.
        yield* TestClock.adjust(7_000)
        yield* heartbeat(holder)
        yield* TestClock.adjust(100)
        assert.strictEqual((yield* recovered()).length, 1)
        assert.strictEqual((yield* silentEvents(setup.accountId)).length, 1)
        yield* Fiber.interrupt(loop)
      })
    )
  )
})
