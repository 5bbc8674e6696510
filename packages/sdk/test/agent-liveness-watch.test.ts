/**
 * What wakes a watcher of agent liveness (domain/liveness.ts): the silence sensor sleeps until a
 * holder it watches is heard from, connects or disconnects. Two watchers in one process each hear
 * their own instances, and one that stopped hears nothing.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { AgentLiveness, type InstanceId } from "../src/index"

const a = "ins_a" as InstanceId
const b = "ins_b" as InstanceId
const ready = { service: "active", node_ready: true } as const
const idle = { cpu_ratio: 0.1, memory_ratio: 0.2 }

describe("AgentLiveness.watch", () => {
  it.effect("rings each watcher for its own instances only, on heartbeats, connects and disconnects; stopped, it hears nothing", () =>
    Effect.gen(function* () {
      const liveness = yield* AgentLiveness
      const rings = { first: 0, second: 0 }
      const first = () => void rings.first++
      const second = () => void rings.second++
      liveness.watch(new Set([a]), first)
      const stopSecond = liveness.watch(new Set([b]), second)

      liveness.recordConnected(a, 1_000)
      liveness.recordHeartbeat(a, 2_000, ready, [], idle)
      assert.deepStrictEqual(rings, { first: 2, second: 0 })
      liveness.recordDisconnected(b)
      assert.deepStrictEqual(rings, { first: 2, second: 1 })

      // Watching again with the same alarm replaces what it watches.
      liveness.watch(new Set([b]), first)
      liveness.recordStatus(a, 3_000, ready)
      liveness.recordStatus(b, 3_000, ready)
      assert.deepStrictEqual(rings, { first: 3, second: 2 })

      stopSecond()
      liveness.recordHeartbeat(b, 4_000, ready, [], idle)
      assert.deepStrictEqual(rings, { first: 4, second: 2 })
    }).pipe(Effect.provide(AgentLiveness.layer))
  )
})
