/**
 * Group commit for config acks (#20): the acks of one event-loop turn are recorded in as few
 * transactions as the batch size allows, each caller waits for its own commit, and a failed
 * commit fails only the acks it carried.
 */
import { Effect, Exit, Fiber, FiberSet, type Scope } from "effect"
import { describe, expect, it } from "vitest"
import { AgentPort, type AgentIdentity, type AgentPortService } from "@fleetplane/sdk"
import { makeAckBatcher } from "../src/agent/ack-batcher"

const identity = (i: number) => ({ instanceId: `ins_${i}`, accountId: "acc_1", hostname: `h${i}` }) as unknown as AgentIdentity
const ack = (i: number) => ({ kind: "vip_routes" as const, key: "net_1", version: i + 1, status: "applied" as const })

/** Runs `body` with a batcher whose store records batch sizes (and fails the `failBatch`-th commit). */
const withBatcher = <A>(maxBatch: number, body: (batcher: Effect.Success<ReturnType<typeof makeAckBatcher>>, batches: Array<number>) => Effect.Effect<A, unknown, Scope.Scope>, failBatch?: number) => {
  const batches: Array<number> = []
  const port = {
    configAcks: (acks: ReadonlyArray<unknown>) =>
      Effect.suspend(() => {
        batches.push(acks.length)
        return batches.length === failBatch ? Effect.fail(new Error("database is locked")) : Effect.void
      })
  } as unknown as AgentPortService
  return Effect.runPromise(
    Effect.scoped(Effect.flatMap(makeAckBatcher(maxBatch), (batcher) => body(batcher, batches))).pipe(Effect.provideService(AgentPort, port))
  )
}

describe("config ack group commit", () => {
  it("records 1,200 acks of one turn in three transactions (500 each at most), and every caller waits for its commit", async () => {
    await withBatcher(500, (batcher, batches) =>
      Effect.gen(function* () {
        const committed: Array<number> = []
        // Each caller's ack is recorded in its own fiber, started from one turn as sessions' tasks are.
        const run = yield* FiberSet.makeRuntime<never>()
        const fibers = yield* Effect.sync(() =>
          Array.from({ length: 1_200 }, (_, i) => run(Effect.tap(batcher.record(identity(i), ack(i)), () => Effect.sync(() => committed.push(i)))))
        )
        expect(batches).toEqual([]) // nothing committed within the turn
        yield* Fiber.joinAll(fibers)
        expect(batches).toEqual([500, 500, 200])
        expect(committed).toHaveLength(1_200)
        // A later ack starts a new group.
        yield* batcher.record(identity(0), ack(2_000))
        expect(batches).toEqual([500, 500, 200, 1])
      })
    )
  })

  it("acks that arrive while a batch is committing wait for it and go together in the next: one commit at a time", async () => {
    let inFlight = 0
    let mostInFlight = 0
    const batches: Array<number> = []
    let release: () => void = () => undefined
    const port = {
      configAcks: (acks: ReadonlyArray<unknown>) =>
        Effect.callback<void>((resume) => {
          batches.push(acks.length)
          mostInFlight = Math.max(mostInFlight, ++inFlight)
          // The first commit is slow (held until released); the later ones answer at once.
          const done = () => {
            inFlight--
            resume(Effect.void)
          }
          if (batches.length === 1) release = done
          else setImmediate(done)
        })
    } as unknown as AgentPortService
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const batcher = yield* makeAckBatcher(500)
          const run = yield* FiberSet.makeRuntime<never>()
          const first = run(batcher.record(identity(0), ack(0)))
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20))) // its commit is in flight
          // Five more, one per turn of the event loop, while it commits.
          const later = []
          for (let i = 1; i <= 5; i++) {
            later.push(run(batcher.record(identity(i), ack(i))))
            yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
          }
          expect(batches).toEqual([1])
          release()
          yield* Fiber.joinAll([first, ...later])
        })
      ).pipe(Effect.provideService(AgentPort, port))
    )
    expect(batches).toEqual([1, 5])
    expect(mostInFlight).toBe(1)
  })

  it("a failed commit fails the acks it carried, and only those", async () => {
    const outcomes = await withBatcher(
      2,
      (batcher) => Effect.forEach([0, 1, 2], (i) => Effect.exit(batcher.record(identity(i), ack(i))), { concurrency: "unbounded" }),
      1
    )
    expect(outcomes.map((exit) => (Exit.isSuccess(exit) ? "committed" : "failed"))).toEqual(["failed", "failed", "committed"])
  })

  it("acks submitted without waiting go in the same group commit, and a failed commit of them is reported once for its batch", async () => {
    const batches: Array<ReadonlyArray<number>> = []
    let fail = true
    const port = {
      configAcks: (acks: ReadonlyArray<{ readonly ack: { readonly version: number } }>) =>
        Effect.suspend(() => {
          batches.push(acks.map(({ ack }) => ack.version))
          return fail ? Effect.fail(new Error("database is locked")) : Effect.void
        })
    } as unknown as AgentPortService
    const reported: Array<{ acks: number; error: string }> = []
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const batcher = yield* makeAckBatcher(500, (acks, cause) => reported.push({ acks, error: String(cause) }))
          // One turn: one waited for, two submitted.
          const waited = yield* Effect.forkChild(Effect.exit(batcher.record(identity(2), ack(1))))
          yield* Effect.yieldNow
          batcher.submit(identity(1), ack(0))
          batcher.submit(identity(3), ack(2))
          const exit = yield* Fiber.join(waited)
          expect(Exit.isFailure(exit)).toBe(true)
          expect(batches).toEqual([[2, 1, 3]])
          expect(reported).toHaveLength(1)
          expect(reported[0]!.acks).toBe(2)
          expect(reported[0]!.error).toContain("database is locked")

          // Committed: nothing reported.
          fail = false
          batcher.submit(identity(1), ack(9))
          yield* batcher.record(identity(2), ack(10))
          expect(batches).toEqual([[2, 1, 3], [10, 11]])
          expect(reported).toHaveLength(1)
        })
      ).pipe(Effect.provideService(AgentPort, port))
    )
  })
})
