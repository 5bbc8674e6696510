/**
 * R26: failover decided with the peers' view of the VIP. Reporters (a bounded sample of the
 * cluster's nodes, never the holder) probe the VIP over the overlay and report in heartbeats;
 * the sensor judges the holder with both views. Virtual time (TestClock), simulated agents.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { expect } from "vitest"
import type { VipProbeReport } from "@fleetplane/agent-protocol"
import { VipSensor } from "../src/index"
import { accountWithNetwork, activeCluster, desiredConfig, events, exec, heartbeat, join, provisionAgent, reportReady, type SimAgent, withFleet } from "./support/fleet-harness"

const check = Effect.flatMap(Effect.service(VipSensor), (sensor) => sensor.check)

/** What a reporter says about the VIP: answered (`ok`), or failing for `failingForMs` (null: it never answered this reporter). */
type Seen = { readonly ok: true } | { readonly ok: false; readonly failingForMs: number | null }

/** Advances virtual time one second at a time; `alive` agents heartbeat, reporters with what `seen` says at that moment. */
const passTime = (ms: number, alive: ReadonlyArray<SimAgent>, vip: { id: string; epoch: number }, seen: (agent: SimAgent, elapsed: number) => Seen | undefined) =>
  Effect.gen(function* () {
    for (let elapsed = 1_000; elapsed <= ms; elapsed += 1_000) {
      yield* TestClock.adjust(1_000)
      for (const agent of alive) {
        const s = seen(agent, elapsed)
        const report: VipProbeReport | undefined =
          s === undefined
            ? undefined
            : s.ok
              ? { vip_id: vip.id, epoch: vip.epoch, ok: true, rtt_ms: 3, age_ms: 100, failing_for_ms: 0, holder_ok: true }
              : { vip_id: vip.id, epoch: vip.epoch, ok: false, rtt_ms: null, age_ms: 100, failing_for_ms: s.failingForMs, holder_ok: false }
        yield* heartbeat(agent, report === undefined ? {} : { vipProbes: [report] })
      }
      yield* check
    }
  })

/** A cluster of 3 servers and 2 workers: the holder, 2 candidates, and 4 reporters. */
const clusterWithReporters = (policy: "automatic" | "require_approval", servers = 3, workers = 2) =>
  Effect.gen(function* () {
    const setup = yield* accountWithNetwork({ vipPolicy: policy })
    const cluster = yield* activeCluster(setup, { servers })
    const workerAgents: Array<SimAgent> = []
    for (let i = 1; i <= workers; i++) {
      const worker = yield* provisionAgent(setup.accountId, { hostname: `k3s-prod-worker-${i}`, templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
      const joined = yield* join(worker, "k3s-agent", cluster.clusterId)
      assert.isTrue(joined.accepted)
      yield* reportReady(worker)
      workerAgents.push(worker)
    }
    const [holder, ...others] = [...cluster.servers, ...workerAgents]
    return { ...setup, ...cluster, holder: holder!, others, vip: { id: cluster.vipId, epoch: 1 } }
  })

const vipEvents = (accountId: any) => Effect.map(events(accountId), (list) => list.filter((e) => e.type.startsWith("sdwan.vip_")))
const epochOf = (accountId: any, clusterId: string) => Effect.map(exec(accountId, "kubernetes_get_cluster", { id: clusterId }), (c: any) => c.virtual_ip.epoch as number)

describe("R26 the peers' view of the VIP", () => {
  it.effect("every other node of the cluster is told to probe the VIP, never the holder, at most vipProbeReporters of them", () =>
    withFleet({ vipProbeReporters: 3 })(
      Effect.gen(function* () {
        const c = yield* clusterWithReporters("automatic")
        const cluster = yield* exec(c.accountId, "kubernetes_get_cluster", { id: c.clusterId })
        const routes = (yield* desiredConfig(c.others[3]!, "vip_routes"))!.payload.routes
        const probe = routes.find((r: any) => r.vip_id === c.vipId).probe
        expect(probe.address).toBe(cluster.virtual_ip.address_ipv4)
        expect(probe.port).toBe(6443)
        expect(probe.reporters).toHaveLength(3)
        expect(probe.reporters).not.toContain(c.holder.instanceId)
        expect(c.others.map((a) => a.instanceId)).toEqual(expect.arrayContaining(probe.reporters))
        expect([...probe.reporters].sort()).toEqual(probe.reporters)
      })
    )
  )

  it.effect("holder silent while most reporters still reach the VIP: sdwan.vip_holder_gateway_unreachable and no failover; once they lose it too, it fails over", () =>
    withFleet()(
      Effect.gen(function* () {
        const c = yield* clusterWithReporters("automatic")
        yield* passTime(5_000, [c.holder, ...c.others], c.vip, () => ({ ok: true }))
        // The holder's link to the gateway breaks; the VIP keeps answering its peers.
        yield* passTime(45_000, c.others, c.vip, () => ({ ok: true }))
        const during = yield* vipEvents(c.accountId)
        expect(during.map((e) => e.type)).toEqual(["sdwan.vip_holder_gateway_unreachable"])
        expect(during[0]!.data).toMatchObject({ virtual_ip_id: c.vipId, instance_id: c.holder.instanceId, failover: "none", peer_view: { verdict: "reachable", reporters: 4, reachable: 4 } })
        assert.strictEqual(yield* epochOf(c.accountId, c.clusterId), 1)

        // Now the holder dies: the reporters' probes fail too.
        yield* passTime(3_000, c.others, c.vip, (_, t) => ({ ok: false, failingForMs: t }))
        const after = yield* vipEvents(c.accountId)
        const silent = after.find((e) => e.type === "sdwan.vip_holder_silent")
        expect(silent?.data.peer_view).toMatchObject({ verdict: "unreachable", reporters: 4, unreachable: 4 })
        expect(after.filter((e) => e.type === "sdwan.vip_failover_promoted")).toHaveLength(1)
        assert.strictEqual(yield* epochOf(c.accountId, c.clusterId), 2)
      })
    )
  )

  it.effect("a holder that dies just after a probe answered is not taken for one that only lost the gateway", () =>
    withFleet()(
      Effect.gen(function* () {
        const c = yield* clusterWithReporters("automatic")
        yield* passTime(5_000, [c.holder, ...c.others], c.vip, () => ({ ok: true }))
        // Probes answered for 4 s after its last heartbeat (before it missed one), then failed.
        yield* passTime(20_000, c.others, c.vip, (_, t) => (t <= 4_000 ? { ok: true } : { ok: false, failingForMs: t - 4_000 }))
        const list = yield* vipEvents(c.accountId)
        expect(list.filter((e) => e.type === "sdwan.vip_holder_gateway_unreachable")).toEqual([])
        expect(list.find((e) => e.type === "sdwan.vip_holder_silent")?.data.peer_view).toMatchObject({ verdict: "unreachable" })
        assert.strictEqual(yield* epochOf(c.accountId, c.clusterId), 2)
      })
    )
  )

  it.effect("holder heartbeating while most reporters cannot reach the VIP: nothing for a shorter outage, sdwan.vip_unreachable and a failover past the threshold", () =>
    withFleet()(
      Effect.gen(function* () {
        const c = yield* clusterWithReporters("automatic")
        const all = [c.holder, ...c.others]
        // A 10 s blip (threshold 15 s) on 3 of 4 reporters: no incident.
        yield* passTime(10_000, all, c.vip, (agent, t) => (agent === c.holder ? undefined : agent === c.others[0] ? { ok: true } : { ok: false, failingForMs: t }))
        yield* passTime(5_000, all, c.vip, (agent) => (agent === c.holder ? undefined : { ok: true }))
        assert.deepStrictEqual(yield* vipEvents(c.accountId), [])

        // The API server on the holder hangs: its agent heartbeats, nobody reaches the VIP.
        yield* passTime(20_000, all, c.vip, (agent, t) => (agent === c.holder ? undefined : { ok: false, failingForMs: t }))
        const list = yield* vipEvents(c.accountId)
        const unreachable = list.filter((e) => e.type === "sdwan.vip_unreachable")
        expect(unreachable).toHaveLength(1)
        expect(unreachable[0]!.data).toMatchObject({ instance_id: c.holder.instanceId, peer_view: { verdict: "unreachable", reporters: 4, unreachable: 4, holder_address_reachable: 0 } })
        expect(list.filter((e) => e.type === "sdwan.vip_holder_silent")).toHaveLength(0)
        expect(list.filter((e) => e.type === "sdwan.vip_failover_promoted")).toHaveLength(1)
        assert.strictEqual(yield* epochOf(c.accountId, c.clusterId), 2)
      })
    )
  )

  it.effect("a node coming up whose probes never reached the VIP yet (its tunnel not up) opens no incident while the holder heartbeats", () =>
    withFleet()(
      Effect.gen(function* () {
        const c = yield* clusterWithReporters("automatic")
        const all = [c.holder, ...c.others]
        // Every reporter fails for 30 s (twice the threshold) without the VIP ever having answered it.
        yield* passTime(30_000, all, c.vip, (agent) => (agent === c.holder ? undefined : { ok: false, failingForMs: null }))
        assert.deepStrictEqual(yield* vipEvents(c.accountId), [])
        assert.strictEqual(yield* epochOf(c.accountId, c.clusterId), 1)
        // Once the VIP has answered and is then lost, it counts.
        yield* passTime(2_000, all, c.vip, (agent) => (agent === c.holder ? undefined : { ok: true }))
        yield* passTime(17_000, all, c.vip, (agent, t) => (agent === c.holder ? undefined : { ok: false, failingForMs: t }))
        expect((yield* vipEvents(c.accountId)).map((e) => e.type)).toContain("sdwan.vip_unreachable")
      })
    )
  )

  it.effect("too few reporters to judge: the holder's silence alone decides, as before, and the event says so", () =>
    withFleet()(
      Effect.gen(function* () {
        // Two servers, no workers: one reporter, below vipProbeMinReporters (2).
        const c = yield* clusterWithReporters("automatic", 2, 0)
        yield* passTime(20_000, c.others, c.vip, () => ({ ok: true }))
        const list = yield* vipEvents(c.accountId)
        expect(list.find((e) => e.type === "sdwan.vip_holder_silent")?.data.peer_view).toMatchObject({ verdict: "too_few_reporters", reporters: 1 })
        assert.strictEqual(yield* epochOf(c.accountId, c.clusterId), 2)
      })
    )
  )

  it.effect("reporters split half and half get one evidence window, then the silence decides ('inconclusive')", () =>
    withFleet()(
      Effect.gen(function* () {
        const c = yield* clusterWithReporters("automatic")
        yield* passTime(5_000, [c.holder, ...c.others], c.vip, () => ({ ok: true }))
        const split = (agent: SimAgent, t: number): Seen => (c.others.indexOf(agent) % 2 === 0 ? { ok: true } : { ok: false, failingForMs: t })
        yield* passTime(15_000, c.others, c.vip, split)
        // Silent now, but 2 of 4 is no majority: the reporters get 2 probe intervals (2 s) + 1 heartbeat interval (5 s).
        yield* passTime(8_000, c.others, c.vip, (agent, t) => split(agent, t + 15_000))
        assert.deepStrictEqual(yield* vipEvents(c.accountId), [])
        yield* passTime(2_000, c.others, c.vip, (agent, t) => split(agent, t + 23_000))
        const silent = (yield* vipEvents(c.accountId)).find((e) => e.type === "sdwan.vip_holder_silent")
        expect(silent?.data.peer_view).toMatchObject({ verdict: "inconclusive", reporters: 4, reachable: 2, unreachable: 2 })
        assert.strictEqual(yield* epochOf(c.accountId, c.clusterId), 2)
      })
    )
  )

  it.effect("under require_approval the approval says why failing over is not advised, and goes moot when the holder is back", () =>
    withFleet()(
      Effect.gen(function* () {
        const c = yield* clusterWithReporters("require_approval")
        yield* passTime(20_000, c.others, c.vip, () => ({ ok: true }))
        const event = (yield* vipEvents(c.accountId)).find((e) => e.type === "sdwan.vip_holder_gateway_unreachable")
        expect(event?.data.failover).toBe("approval_requested")
        const { approvals } = yield* exec(c.accountId, "system_list_approvals", { status: "pending" })
        expect(approvals).toHaveLength(1)
        expect(approvals[0].summary).toContain("4 of 4 reporting peers still reach the VIP")
        expect(approvals[0].summary).toContain("approve only if you know")
        yield* passTime(2_000, [c.holder, ...c.others], c.vip, () => ({ ok: true }))
        const decided = yield* exec(c.accountId, "system_approve", { approval_id: approvals[0].id })
        expect(decided).toMatchObject({ status: "moot", resolution: { moot: "holder_returned" } })
        const recovered = (yield* vipEvents(c.accountId)).find((e) => e.type === "sdwan.vip_holder_recovered")
        expect(recovered?.data.incident).toBe("gateway_unreachable")
      })
    )
  )

  it.effect("a vip_unreachable approval goes moot once the VIP answers again", () =>
    withFleet()(
      Effect.gen(function* () {
        const c = yield* clusterWithReporters("require_approval")
        const all = [c.holder, ...c.others]
        yield* passTime(17_000, all, c.vip, (agent, t) => (agent === c.holder ? undefined : { ok: false, failingForMs: t }))
        const { approvals } = yield* exec(c.accountId, "system_list_approvals", { status: "pending" })
        expect(approvals).toHaveLength(1)
        expect(approvals[0].summary).toContain("have not reached")
        yield* passTime(2_000, all, c.vip, (agent) => (agent === c.holder ? undefined : { ok: true }))
        const decided = yield* exec(c.accountId, "system_approve", { approval_id: approvals[0].id })
        expect(decided).toMatchObject({ status: "moot", resolution: { moot: "vip_answers_again" } })
        assert.strictEqual(yield* epochOf(c.accountId, c.clusterId), 1)
      })
    )
  )
})
