import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { expect } from "vitest"
import { AgentPort, scoreFailoverCandidate, VipSensor, type AgentLivenessEntry } from "../src/index"
import {
  accountWithNetwork,
  activeCluster,
  desiredConfig,
  effectiveWireguard,
  events,
  exec,
  execConfirmed,
  failure,
  heartbeat,
  provisionAgent,
  type SimAgent,
  withFleet
} from "./support/fleet-harness"

const check = Effect.flatMap(Effect.service(VipSensor), (sensor) => sensor.check)

/** Advances virtual time in heartbeat steps; `alive` agents heartbeat at each step. */
const passTime = (ms: number, alive: ReadonlyArray<SimAgent>) =>
  Effect.gen(function* () {
    for (let elapsed = 0; elapsed < ms; elapsed += 5_000) {
      yield* TestClock.adjust(Math.min(5_000, ms - elapsed))
      for (const agent of alive) yield* heartbeat(agent)
      yield* check
    }
  })

const silentEvents = (accountId: any) => Effect.map(events(accountId), (list) => list.filter((e) => e.type === "sdwan.vip_holder_silent"))

const entry = (overrides: Partial<AgentLivenessEntry> = {}): AgentLivenessEntry => ({
  lastSeenAt: 0,
  connected: true,
  k3s: { service: "active", node_ready: true },
  wireguard: [{ network_id: "net_1", peers: 1, fresh_handshakes: 1 }],
  load: { cpu_ratio: 0.2, memory_ratio: 0.4 },
  vipProbes: [],
  ...overrides
})

describe("R14 failover scoring", () => {
  it("is 0 for silent, never-seen or not-ready candidates", () => {
    assert.strictEqual(scoreFailoverCandidate(undefined, "net_1", 0, 15_000).score, 0)
    assert.strictEqual(scoreFailoverCandidate(entry({ lastSeenAt: 0 }), "net_1", 15_000, 15_000).score, 0)
    assert.strictEqual(scoreFailoverCandidate(entry({ k3s: { service: "active", node_ready: false } }), "net_1", 0, 15_000).score, 0)
    assert.strictEqual(scoreFailoverCandidate(entry({ k3s: { service: "failed", node_ready: true } }), "net_1", 0, 15_000).score, 0)
  })

  it("follows the documented formula: 0.4 freshness + 0.2 readiness + 0.25 reachability + 0.15 headroom", () => {
    const scored = scoreFailoverCandidate(entry({ lastSeenAt: 0 }), "net_1", 3_000, 15_000)
    // freshness 0.8, readiness 1, reachability 1, headroom 0.6
    assert.strictEqual(scored.score, Math.round((0.4 * 0.8 + 0.2 + 0.25 + 0.15 * 0.6) * 1000) / 1000)
    assert.deepStrictEqual(scored.components, { freshness: 0.8, readiness: 1, reachability: 1, headroom: 0.6 })
  })

  it("reachability is the share of the network's peers with a fresh handshake (0 without tunnels on that network)", () => {
    const reach = (wireguard: AgentLivenessEntry["wireguard"]) => scoreFailoverCandidate(entry({ wireguard }), "net_1", 1_000, 15_000).components.reachability
    assert.strictEqual(reach([{ network_id: "net_1", peers: 4, fresh_handshakes: 3 }]), 0.75)
    assert.strictEqual(reach([{ network_id: "net_2", peers: 4, fresh_handshakes: 4 }]), 0)
    assert.strictEqual(reach([{ network_id: "net_1", peers: 0, fresh_handshakes: 0 }]), 0)
  })

  it("stays in [0, 1], rewards fresher, better connected and less loaded candidates, and is deterministic", () => {
    for (let i = 0; i < 200; i++) {
      const e = entry({
        lastSeenAt: Math.floor(Math.random() * 15_000),
        load: { cpu_ratio: Math.random() * 3, memory_ratio: Math.random() },
        wireguard: [{ network_id: "net_1", peers: 4, fresh_handshakes: Math.floor(Math.random() * 5) }]
      })
      const a = scoreFailoverCandidate(e, "net_1", 15_000, 15_000)
      assert.isTrue(a.score >= 0 && a.score <= 1)
      assert.deepStrictEqual(scoreFailoverCandidate(e, "net_1", 15_000, 15_000), a)
    }
    const base = scoreFailoverCandidate(entry(), "net_1", 1_000, 15_000).score
    assert.isAbove(base, scoreFailoverCandidate(entry(), "net_1", 9_000, 15_000).score)
    assert.isAbove(base, scoreFailoverCandidate(entry({ load: { cpu_ratio: 0.9, memory_ratio: 0.9 } }), "net_1", 1_000, 15_000).score)
    assert.isAbove(base, scoreFailoverCandidate(entry({ wireguard: [{ network_id: "net_1", peers: 1, fresh_handshakes: 0 }] }), "net_1", 1_000, 15_000).score)
  })
})

describe("VIP failover", () => {
  it.effect("R15 a silent holder yields exactly one sdwan.vip_holder_silent per incident, then an approval under require_approval", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { servers, vipId } = yield* activeCluster(setup, { servers: 2 })
        const [holder, standby] = [servers[0]!, servers[1]!]
        yield* passTime(10_000, [holder, standby])
        assert.strictEqual((yield* silentEvents(setup.accountId)).length, 0)
        yield* passTime(40_000, [standby])
        const silent = yield* silentEvents(setup.accountId)
        assert.strictEqual(silent.length, 1)
        assert.strictEqual(silent[0]!.data.virtual_ip_id, vipId)
        assert.strictEqual(silent[0]!.data.instance_id, holder.instanceId)
        const { approvals } = yield* exec(setup.accountId, "system_list_approvals", { status: "pending" })
        assert.strictEqual(approvals.length, 1)
        assert.strictEqual(approvals[0].virtual_ip_id, vipId)
        // Nothing moved yet: require_approval waits for the operator.
        const cluster = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: approvals[0].cluster_id })
        assert.strictEqual(cluster.virtual_ip.epoch, 1)
      })
    )
  )

  it.effect("R15 + R16 approving promotes the best candidate, bumps the epoch and moves the VIP /128 in every peer's AllowedIPs", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { servers, clusterId, vipId } = yield* activeCluster(setup, { servers: 2 })
        const worker = yield* provisionAgent(setup.accountId, { hostname: "w1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const [holder, standby] = [servers[0]!, servers[1]!]
        const before = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        const vip = before.virtual_ip.address as string
        const allowedFor = (config: string, publicKey: string) => {
          const block = config.split("[Peer]").find((b) => b.includes(publicKey)) ?? ""
          return block.match(/AllowedIPs = (.*)/)?.[1] ?? ""
        }
        const peersBefore = (yield* desiredConfig(worker, "wireguard"))!
        const routesBefore = (yield* desiredConfig(worker, "vip_routes"))!
        const workerBefore = yield* effectiveWireguard(worker)
        expect(allowedFor(workerBefore, holder.keys.publicKey)).toContain(`${vip}/128`)
        expect(allowedFor(workerBefore, standby.keys.publicKey)).not.toContain(`${vip}/128`)

        yield* passTime(30_000, [standby, worker])
        const { approvals } = yield* exec(setup.accountId, "system_list_approvals", { status: "pending" })
        const decided = yield* exec(setup.accountId, "system_approve", { approval_id: approvals[0].id })
        assert.strictEqual(decided.status, "approved")

        const after = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        assert.strictEqual(after.virtual_ip.epoch, 2)
        assert.notStrictEqual(after.virtual_ip.holder_peer_id, before.virtual_ip.holder_peer_id)
        assert.include(after.virtual_ip.failover_holder_peer_ids, before.virtual_ip.holder_peer_id)
        // Only the small VIP routes changed: the peer list is not re-sent to anyone.
        assert.isAbove((yield* desiredConfig(worker, "vip_routes"))!.version, routesBefore.version)
        assert.strictEqual((yield* desiredConfig(worker, "wireguard"))!.version, peersBefore.version)
        const workerAfter = yield* effectiveWireguard(worker)
        expect(allowedFor(workerAfter, standby.keys.publicKey)).toContain(`${vip}/128`)
        expect(allowedFor(workerAfter, holder.keys.publicKey)).not.toContain(`${vip}/128`)
        const promoted = (yield* events(setup.accountId)).find((e) => e.type === "sdwan.vip_failover_promoted")
        assert.strictEqual(promoted?.data.virtual_ip_id, vipId)
        assert.strictEqual(promoted?.data.epoch, 2)
      })
    )
  )

  it.effect("R15 an approval decided after the holder came back resolves as moot, without a failover", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { servers, clusterId } = yield* activeCluster(setup, { servers: 2 })
        const [holder, standby] = [servers[0]!, servers[1]!]
        yield* passTime(30_000, [standby])
        yield* passTime(10_000, [holder, standby])
        const recovered = (yield* events(setup.accountId)).filter((e) => e.type === "sdwan.vip_holder_recovered")
        assert.strictEqual(recovered.length, 1)
        const { approvals } = yield* exec(setup.accountId, "system_list_approvals", { status: "pending" })
        const decided = yield* exec(setup.accountId, "system_approve", { approval_id: approvals[0].id })
        assert.strictEqual(decided.status, "moot")
        const cluster = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        assert.strictEqual(cluster.virtual_ip.epoch, 1)
        // A second silence is a new incident: one more event.
        yield* passTime(30_000, [standby])
        assert.strictEqual((yield* silentEvents(setup.accountId)).length, 2)
      })
    )
  )

  it.effect("R15 the automatic policy promotes without an approval", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork({ vipPolicy: "automatic" })
        const { servers, clusterId } = yield* activeCluster(setup, { servers: 3 })
        yield* passTime(30_000, [servers[1]!, servers[2]!])
        const cluster = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        assert.strictEqual(cluster.virtual_ip.epoch, 2)
        const { approvals } = yield* exec(setup.accountId, "system_list_approvals", {})
        assert.strictEqual(approvals.length, 0)
      })
    )
  )

  it.effect("R17 with one server a failover is a clear no-op: no_failover_candidate, and the cluster warns it is not HA", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork({ vipPolicy: "automatic" })
        const { clusterId, vipId } = yield* activeCluster(setup, { servers: 1 })
        const cluster = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        assert.isTrue(cluster.warnings.some((w: string) => w.startsWith("not HA")))
        const error = yield* failure(execConfirmed(setup.accountId, "system_sdwan_failover_virtual_ip", { virtual_ip_id: vipId }))
        assert.strictEqual(error.code, "no_failover_candidate")
        yield* passTime(30_000, [])
        const skipped = (yield* events(setup.accountId)).filter((e) => e.type === "sdwan.vip_failover_skipped")
        assert.strictEqual(skipped.length, 1)
        assert.strictEqual(skipped[0]!.data.code, "no_failover_candidate")
      })
    )
  )

  it.effect("R17 with two servers the cluster says etcd cannot survive losing one and recommends a third; three clear it", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId } = yield* activeCluster(setup, { servers: 2 })
        const two = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        assert.isTrue(two.warnings.some((w: string) => w.includes("quorum of 2") && w.includes("third")))
        const third = yield* provisionAgent(setup.accountId, { hostname: "k3s-prod-server-3", templateId: setup.serverTemplateId, networkIds: [setup.networkId] })
        yield* Effect.flatMap(Effect.service(AgentPort), (port) =>
          port.joinRequest(third.identity, { request_id: "r", module_name: "k3s-server", target_cluster_id: clusterId })
        )
        const three = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        assert.deepStrictEqual(three.warnings, [])
      })
    )
  )

  it.effect("dry run shows the current holder and every candidate's score without changing anything", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { servers, vipId, clusterId } = yield* activeCluster(setup, { servers: 3 })
        yield* passTime(5_000, servers)
        const plan = yield* exec(setup.accountId, "system_sdwan_failover_virtual_ip", { virtual_ip_id: vipId, dry_run: true })
        assert.strictEqual(plan.resolved, false)
        assert.strictEqual(plan.dry_run, true)
        assert.strictEqual(plan.candidates.length, 2)
        for (const candidate of plan.candidates) assert.isTrue(candidate.score > 0 && candidate.score <= 1)
        const cluster = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        assert.strictEqual(plan.current_holder, cluster.virtual_ip.holder_peer_id)
        assert.strictEqual(cluster.virtual_ip.epoch, 1)
      })
    )
  )

  it.effect("R13 a manual failover needs confirmation, bumps the epoch, and the old holder is fenced when it reconnects", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { servers, vipId, clusterId } = yield* activeCluster(setup, { servers: 2 })
        yield* passTime(5_000, servers)
        const confirm = yield* failure(exec(setup.accountId, "system_sdwan_failover_virtual_ip", { virtual_ip_id: vipId }))
        assert.strictEqual(confirm.code, "confirmation_required")
        const unchanged = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        assert.strictEqual(unchanged.virtual_ip.epoch, 1)
        const result = yield* exec(setup.accountId, "system_sdwan_failover_virtual_ip", { virtual_ip_id: vipId, confirmation_token: confirm.details.confirmation_token })
        assert.strictEqual(result.resolved, true)
        assert.strictEqual(result.epoch, 2)
        const reused = yield* failure(exec(setup.accountId, "system_sdwan_failover_virtual_ip", { virtual_ip_id: vipId, confirmation_token: confirm.details.confirmation_token }))
        assert.strictEqual(reused.code, "invalid_confirmation")

        const port = yield* AgentPort
        const old = yield* port.hello(servers[0]!.identity, { wireguard_keys: [], applied: [], held_vips: [{ vip_id: vipId, epoch: 1 }] })
        assert.deepStrictEqual(old.vipDirectives.map((d) => [d.type, d.body.epoch]), [["vip_release", 2]])
        const fresh = yield* port.hello(servers[1]!.identity, { wireguard_keys: [], applied: [], held_vips: [] })
        assert.deepStrictEqual(fresh.vipDirectives.map((d) => [d.type, d.body.epoch]), [["vip_assign", 2]])
      })
    )
  )
})
