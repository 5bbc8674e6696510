/**
 * Group commit for config acks (#20): the acks of one event-loop turn are recorded in as few
 * transactions as the batch size allows, each caller waits for its own commit, and a failed
 * commit fails only the acks it carried.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import type { AgentIdentity, AgentPortService, Fleet } from "@fleetplane/sdk"
import { createAckBatcher } from "../src/agent/ack-batcher"

const identity = (i: number) => ({ instanceId: `ins_${i}`, accountId: "acc_1", hostname: `h${i}` }) as unknown as AgentIdentity
const ack = (i: number) => ({ kind: "vip_routes" as const, key: "net_1", version: i + 1, status: "applied" as const })

const fakes = (failBatch?: number) => {
  const batches: Array<number> = []
  const port = {
    configAcks: (acks: ReadonlyArray<unknown>) =>
      Effect.suspend(() => {
        batches.push(acks.length)
        return batches.length === failBatch ? Effect.fail(new Error("database is locked")) : Effect.void
      })
  } as unknown as AgentPortService
  const fleet = { run: <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect) } as unknown as Fleet
  return { batches, deps: { fleet, port } }
}

describe("config ack group commit", () => {
  it("records 1,200 acks of one turn in three transactions (500 each at most), and every caller's promise settles after its commit", async () => {
    const { batches, deps } = fakes()
    const batcher = createAckBatcher(deps, 500)
    const settled = Array.from({ length: 1_200 }, (_, i) => batcher.record(identity(i), ack(i)))
    expect(batches).toEqual([]) // nothing committed within the turn
    await Promise.all(settled)
    expect(batches).toEqual([500, 500, 200])
    // A later ack starts a new group.
    await batcher.record(identity(0), ack(2_000))
    expect(batches).toEqual([500, 500, 200, 1])
  })

  it("a failed commit fails the acks it carried, and only those", async () => {
    const { deps } = fakes(1)
    const batcher = createAckBatcher(deps, 2)
    const outcomes = await Promise.allSettled([0, 1, 2].map((i) => batcher.record(identity(i), ack(i))))
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected", "fulfilled"])
  })
})
