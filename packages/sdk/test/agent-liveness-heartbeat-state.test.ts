/**
 * What a heartbeat leaves in memory (domain/liveness.ts, #20): an entry always reads as the
 * newest report, but keeps the objects it has while a heartbeat repeats them, and writes its load
 * into one object of its own — so the decoder's objects die young instead of being promoted to
 * V8's old generation at the heartbeat rate. Objects handed to liveness are never written, and
 * what it keeps of them is its own (copies of the decoder's strings, which slice the whole frame).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { K3sState, Load, WireguardInterfaceState } from "@fleetplane/agent-protocol"
import { AgentLiveness, type InstanceId } from "../src/index"

const a = "ins_a" as InstanceId

/** A fresh copy each time, as every decoded heartbeat is. */
const k3s = (version = "v1.31.4+k3s1"): K3sState => ({ service: "active", node_ready: true, version, pod_cidr: "10.42.3.0/24" })
const tunnels = (fresh = 4): Array<WireguardInterfaceState> => [{ network_id: "net_1", peers: 5, fresh_handshakes: fresh }]
const load = (cpu: number): Load => ({ cpu_ratio: cpu, memory_ratio: 0.5 })

describe("AgentLiveness: a heartbeat's state", () => {
  it.effect("a repeated k3s and WireGuard state keeps the entry's objects; a changed one replaces them", () =>
    Effect.gen(function* () {
      const liveness = yield* AgentLiveness
      liveness.recordHeartbeat(a, 1_000, k3s(), tunnels(), load(0.1))
      const first = liveness.get(a)!
      const [keptK3s, keptTunnels] = [first.k3s, first.wireguard]

      liveness.recordHeartbeat(a, 6_000, k3s(), tunnels(), load(0.2))
      assert.strictEqual(liveness.get(a)!.k3s, keptK3s)
      assert.strictEqual(liveness.get(a)!.wireguard, keptTunnels)
      assert.strictEqual(liveness.get(a)!.lastSeenAt, 6_000)

      // An upgrade and a tunnel coming up: the entry reads as the new report.
      liveness.recordHeartbeat(a, 11_000, k3s("v1.32.0+k3s1"), tunnels(5), load(0.3))
      assert.deepStrictEqual(liveness.get(a)!.k3s, k3s("v1.32.0+k3s1"))
      assert.deepStrictEqual(liveness.get(a)!.wireguard, tunnels(5))
      // A status report repeating the state keeps it too.
      const upgraded = liveness.get(a)!.k3s
      liveness.recordStatus(a, 12_000, k3s("v1.32.0+k3s1"))
      assert.strictEqual(liveness.get(a)!.k3s, upgraded)
    }).pipe(Effect.provide(AgentLiveness.layer))
  )

  it.effect("keeps what a heartbeat reports in objects of its own (the decoder's strings slice the whole frame), keys absent stay absent", () =>
    Effect.gen(function* () {
      const liveness = yield* AgentLiveness
      const [reported, reportedTunnels] = [k3s(), tunnels()]
      liveness.recordHeartbeat(a, 1_000, reported, reportedTunnels, load(0.1))
      const entry = liveness.get(a)!
      assert.notStrictEqual(entry.k3s, reported)
      assert.notStrictEqual(entry.wireguard[0], reportedTunnels[0])
      assert.deepStrictEqual(entry.k3s, k3s())
      assert.deepStrictEqual(entry.wireguard, tunnels())

      // A node that is not up yet reports neither a version nor a pod CIDR.
      const starting: K3sState = { service: "activating", node_ready: false }
      liveness.recordStatus(a, 2_000, starting)
      assert.deepStrictEqual(liveness.get(a)!.k3s, starting)
      assert.deepStrictEqual(Object.keys(liveness.get(a)!.k3s!), ["service", "node_ready"])
      liveness.recordHeartbeat(a, 3_000, starting, [], load(0.1))
      assert.deepStrictEqual(liveness.get(a)!.wireguard, [])
    }).pipe(Effect.provide(AgentLiveness.layer))
  )

  it.effect("the load reads as the newest, written into the entry's own object; the caller's objects are never changed", () =>
    Effect.gen(function* () {
      const liveness = yield* AgentLiveness
      const given = load(0.1)
      liveness.recordHeartbeat(a, 1_000, k3s(), [], given)
      const own = liveness.get(a)!.load
      assert.notStrictEqual(own, given)
      assert.deepStrictEqual(own, load(0.1))

      liveness.recordHeartbeat(a, 6_000, k3s(), [], load(0.9))
      assert.strictEqual(liveness.get(a)!.load, own)
      assert.deepStrictEqual(liveness.get(a)!.load, load(0.9))
      assert.deepStrictEqual(given, load(0.1))

      // What another gateway saw arrives as its own objects: a later heartbeat here does not write into them.
      const shared = load(0.4)
      liveness.merge(a, { lastSeenAt: 7_000, connected: true, k3s: k3s(), wireguard: [], load: shared, vipProbes: [] })
      assert.deepStrictEqual(liveness.get(a)!.load, load(0.4))
      liveness.recordHeartbeat(a, 8_000, k3s(), [], load(0.7))
      assert.deepStrictEqual(liveness.get(a)!.load, load(0.7))
      assert.deepStrictEqual(shared, load(0.4))
    }).pipe(Effect.provide(AgentLiveness.layer))
  )
})
