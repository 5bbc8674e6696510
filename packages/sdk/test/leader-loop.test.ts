/**
 * The fleet-wide loops' one shape (domain/leader-loop.ts, #20 "deadlines, not polling"): a step
 * runs when the time it asked for comes or when its alarm rings, never more often than its
 * spacing, and only on the leader. Virtual time (TestClock).
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { makeAlarm, whileLeading, type LeadershipView } from "../src/domain/leader-loop"

/** A leadership the test flips by hand. */
const leadershipStartingAs = (leading: boolean) => {
  const listeners = new Set<() => void>()
  const view: LeadershipView = {
    isLeader: () => leading,
    onChange: (listener) => {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    }
  }
  const set = (now: boolean) => {
    leading = now
    for (const listener of listeners) listener()
  }
  return { view, set, listening: () => listeners.size }
}

/** Starts a loop whose step records when it ran and asks for `next(now)`. */
const startLoop = (leadership: LeadershipView, next: (now: number) => number, spacingMs = 100) =>
  Effect.gen(function* () {
    const ranAt: Array<number> = []
    const alarm = makeAlarm()
    const step = Effect.map(Clock.currentTimeMillis, (now) => {
      ranAt.push(now)
      return next(now)
    })
    const fiber = yield* Effect.forkChild(whileLeading(leadership, spacingMs, alarm, step))
    return { ranAt, alarm, fiber }
  })

describe("a leader loop", () => {
  it.effect("runs its step at the time the step asked for, and not in between", () =>
    Effect.gen(function* () {
      const loop = yield* startLoop(leadershipStartingAs(true).view, (now) => now + 5_000)
      yield* TestClock.adjust(100)
      assert.deepStrictEqual(loop.ranAt, [100])
      yield* TestClock.adjust(4_999)
      assert.deepStrictEqual(loop.ranAt, [100])
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(loop.ranAt, [100, 5_100])
      yield* Fiber.interrupt(loop.fiber)
    })
  )

  it.effect("with nothing due, sleeps until rung; rings within one spacing are handled by one step", () =>
    Effect.gen(function* () {
      const loop = yield* startLoop(leadershipStartingAs(true).view, () => Number.POSITIVE_INFINITY)
      yield* TestClock.adjust(100)
      yield* TestClock.adjust(3_600_000)
      assert.deepStrictEqual(loop.ranAt, [100])
      loop.alarm.ring()
      yield* TestClock.adjust(0)
      assert.deepStrictEqual(loop.ranAt, [100, 3_600_100])
      // Three rings right after a step: one more step, a spacing later.
      loop.alarm.ring()
      loop.alarm.ring()
      yield* TestClock.adjust(50)
      loop.alarm.ring()
      yield* TestClock.adjust(50)
      assert.deepStrictEqual(loop.ranAt, [100, 3_600_100, 3_600_200])
      yield* TestClock.adjust(10_000)
      assert.strictEqual(loop.ranAt.length, 3)
      yield* Fiber.interrupt(loop.fiber)
    })
  )

  it.effect("a ring during the step is not lost: the step runs again a spacing later", () =>
    Effect.gen(function* () {
      const alarmBox: { ring?: () => void } = {}
      const loop = yield* startLoop(leadershipStartingAs(true).view, (now) => {
        if (now === 100) alarmBox.ring?.()
        return Number.POSITIVE_INFINITY
      })
      alarmBox.ring = loop.alarm.ring
      yield* TestClock.adjust(100)
      yield* TestClock.adjust(100)
      assert.deepStrictEqual(loop.ranAt, [100, 200])
      yield* Fiber.interrupt(loop.fiber)
    })
  )

  it.effect("a follower never steps; it steps when it takes the lead, and stops when it loses it", () =>
    Effect.gen(function* () {
      const leadership = leadershipStartingAs(false)
      const loop = yield* startLoop(leadership.view, (now) => now + 1_000)
      loop.alarm.ring()
      yield* TestClock.adjust(10_000)
      assert.deepStrictEqual(loop.ranAt, [])
      leadership.set(true)
      yield* TestClock.adjust(0)
      assert.deepStrictEqual(loop.ranAt, [10_000])
      yield* TestClock.adjust(1_000)
      assert.deepStrictEqual(loop.ranAt, [10_000, 11_000])
      leadership.set(false)
      yield* TestClock.adjust(10_000)
      assert.deepStrictEqual(loop.ranAt, [10_000, 11_000])
      // A stopped loop no longer listens.
      assert.strictEqual(leadership.listening(), 1)
      yield* Fiber.interrupt(loop.fiber)
      assert.strictEqual(leadership.listening(), 0)
    })
  )
})
