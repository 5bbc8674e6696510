/**
 * A session's work (#16): tasks run one at a time in arrival order, on a fiber that exists
 * only while there is work (none parked per idle session); a failed task is reported and the
 * next one runs; a queue past its bound closes the session as a slow consumer (4010), and a
 * closed session runs nothing more.
 */
import { Deferred, Effect, Fiber } from "effect"
import { describe, expect, it } from "vitest"
import type { WebSocket } from "ws"
import { CloseCode } from "@fleetplane/agent-protocol"
import type { AgentIdentity } from "@fleetplane/sdk"
import { AgentSession, MAX_QUEUED_TASKS, sessionWork, type SessionTask } from "../src/agent/agent-session"

const fakeSocket = () => {
  const closes: Array<number> = []
  const socket = { bufferedAmount: 0, close: (code: number) => closes.push(code), terminate: () => undefined, send: () => undefined }
  return { socket: socket as unknown as WebSocket, closes }
}

/** A session whose work fibers are started with `Effect.runFork` and counted. */
const sessionUnderTest = () => {
  const { socket, closes } = fakeSocket()
  const fibers: Array<Fiber.Fiber<void>> = []
  const failures: Array<string> = []
  const slow: Array<unknown> = []
  const session: AgentSession = new AgentSession({ instanceId: "ins_1", accountId: "acc_1", hostname: "h1" } as unknown as AgentIdentity, socket, [], {
    maxBufferedBytes: 1_000_000,
    startWork: (s) => fibers.push(Effect.runFork(sessionWork(s) as Effect.Effect<void>)),
    onTaskFailure: (_s, cause) => failures.push(String(cause)),
    onSlowConsumer: (_s, backlog) => slow.push(backlog)
  })
  // The tasks need no services: these are run without a fleet.
  const enqueue = (task: Effect.Effect<void, unknown>) => session.enqueue(task as SessionTask)
  return { session, enqueue, fibers, failures, slow, closes }
}

describe("a session's work", () => {
  it("runs tasks one at a time in order, on one fiber that ends when the queue is empty", async () => {
    const { enqueue, fibers } = sessionUnderTest()
    const ran: Array<string> = []
    const gate = Deferred.makeUnsafe<void>()
    enqueue(Effect.andThen(Deferred.await(gate), Effect.sync(() => ran.push("first"))))
    enqueue(Effect.sync(() => ran.push("second")))
    enqueue(Effect.sync(() => ran.push("third")))
    expect(fibers).toHaveLength(1)
    await new Promise((resolve) => setTimeout(resolve, 10))
    expect(ran).toEqual([]) // the second waits for the first
    Deferred.doneUnsafe(gate, Effect.void)
    await Effect.runPromise(Fiber.await(fibers[0]!))
    expect(ran).toEqual(["first", "second", "third"])

    // Idle now: no fiber parked. New work starts a new one.
    enqueue(Effect.sync(() => ran.push("later")))
    expect(fibers).toHaveLength(2)
    await Effect.runPromise(Fiber.await(fibers[1]!))
    expect(ran).toEqual(["first", "second", "third", "later"])
  })

  it("reports a failed task and goes on with the next", async () => {
    const { enqueue, fibers, failures } = sessionUnderTest()
    const ran: Array<string> = []
    enqueue(Effect.fail(new Error("store unavailable")))
    enqueue(Effect.die(new Error("bug")))
    enqueue(Effect.sync(() => ran.push("after")))
    await Effect.runPromise(Fiber.await(fibers[0]!))
    expect(failures).toHaveLength(2)
    expect(failures[0]).toContain("store unavailable")
    expect(ran).toEqual(["after"])
  })

  it(`closes the session as a slow consumer (4010) past ${MAX_QUEUED_TASKS} waiting tasks, and runs nothing after the close`, async () => {
    const { session, enqueue, fibers, slow, closes } = sessionUnderTest()
    const ran: Array<number> = []
    const gate = Deferred.makeUnsafe<void>()
    enqueue(Deferred.await(gate)) // taken by the fiber: the queue is empty behind it
    for (let i = 0; i < MAX_QUEUED_TASKS; i++) enqueue(Effect.sync(() => ran.push(i)))
    expect(closes).toEqual([])
    enqueue(Effect.sync(() => ran.push(-1)))
    expect(closes).toEqual([CloseCode.SlowConsumer])
    expect(slow).toEqual([{ queued_tasks: MAX_QUEUED_TASKS }])
    expect(session.closed).toBe(true)
    Deferred.doneUnsafe(gate, Effect.void)
    await Effect.runPromise(Fiber.await(fibers[0]!))
    expect(ran).toEqual([]) // what was queued for a closed session is dropped: it resumes from the store
    enqueue(Effect.sync(() => ran.push(-2)))
    expect(fibers).toHaveLength(1)
  })

  it("does work at once on an idle session (no fiber), and in turn behind queued work", async () => {
    const { session, enqueue, fibers } = sessionUnderTest()
    const ran: Array<string> = []
    const later = (name: string) => Effect.sync(() => ran.push(`${name} (queued)`)) as SessionTask
    session.runNowOrEnqueue(() => ran.push("idle") > 0, later("idle"))
    expect(ran).toEqual(["idle"])
    expect(fibers).toHaveLength(0)

    const gate = Deferred.makeUnsafe<void>()
    enqueue(Effect.andThen(Deferred.await(gate), Effect.sync(() => ran.push("busy"))))
    session.runNowOrEnqueue(() => ran.push("jumped the queue") > 0, later("behind busy"))
    expect(ran).toEqual(["idle"])
    Deferred.doneUnsafe(gate, Effect.void)
    await Effect.runPromise(Fiber.await(fibers[0]!))
    expect(ran).toEqual(["idle", "busy", "behind busy (queued)"])
  })

  it("queues the task when the work cannot be done as it stands, and reports work that throws", async () => {
    const { session, fibers, failures } = sessionUnderTest()
    const ran: Array<string> = []
    session.runNowOrEnqueue(() => false, Effect.sync(() => ran.push("made again")) as SessionTask)
    expect(fibers).toHaveLength(1)
    await Effect.runPromise(Fiber.await(fibers[0]!))
    expect(ran).toEqual(["made again"])

    session.runNowOrEnqueue(() => {
      throw new Error("encoder bug")
    }, Effect.void as SessionTask)
    expect(failures).toHaveLength(1)
    expect(failures[0]).toContain("encoder bug")
    session.runNowOrEnqueue(() => ran.push("goes on") > 0, Effect.void as SessionTask)
    expect(ran).toEqual(["made again", "goes on"])
  })
})
