/**
 * The fleet-wide loops' one shape (silence sensor, network syncer, skill runner, kubeconfig
 * renewer): a step on the leader only, run again when something it waits for happens or when
 * the time it asked for comes, never every few milliseconds for nothing (#20: "deadlines, not
 * polling"). An idle gateway's loops sleep until their next deadline — for the sensor with
 * nothing silent, its 30 s safety re-read.
 */
import { Clock, Effect, Latch, PubSub } from "effect"
import type { Signal } from "./signals"

/**
 * Wakes a sleeping loop. `ring` is synchronous and cheap, so signal handlers and the heartbeat
 * path can call it as often as they like: rings while the loop sleeps or runs its step count once.
 */
export interface Alarm {
  readonly ring: () => void
  readonly latch: Latch.Latch
}

export const makeAlarm = (): Alarm => {
  const latch = Latch.makeUnsafe(false)
  return { latch, ring: () => void latch.openUnsafe() }
}

/** A step's answer: run again at this Clock time (`Number.POSITIVE_INFINITY`: only when the alarm rings). */
export type NextRunAt = number

/** What the loops need of `Leadership` (domain/shared-state.ts). */
export interface LeadershipView {
  readonly isLeader: () => boolean
  /** Calls `listener` whenever this process takes or loses the lead; answers a function that stops that. */
  readonly onChange: (listener: () => void) => () => void
}

/**
 * Forever (fork it): on the leader, `step`, then sleep until the time it answered or until
 * `alarm` rings, whichever comes first — but at least `spacingMs` after the step, so whatever
 * rings meanwhile is handled in one step. A process that does not lead sleeps until its
 * leadership changes, and steps at once when it takes the lead.
 */
export const whileLeading = (leadership: LeadershipView, spacingMs: number, alarm: Alarm, step: Effect.Effect<NextRunAt>): Effect.Effect<never> =>
  Effect.gen(function* () {
    yield* onLeadershipChange(leadership, alarm.ring)
    let runAt = 0
    /** Returns when this process leads and its step is due or was rung for. */
    const turn = Effect.gen(function* () {
      while (true) {
        if (!leadership.isLeader()) {
          runAt = 0
          // Rings meant for the step are moot while following; taking the lead rings again.
          alarm.latch.closeUnsafe()
          if (!leadership.isLeader()) yield* alarm.latch.await
          continue
        }
        const now = yield* Clock.currentTimeMillis
        if (alarm.latch.isOpen() || now >= runAt) return
        const rung = alarm.latch.await
        yield* runAt === Number.POSITIVE_INFINITY ? rung : Effect.raceFirst(rung, Effect.sleep(runAt - now))
      }
    })
    while (true) {
      yield* Effect.sleep(spacingMs)
      yield* turn
      // Closed before the step: a ring during the step opens it again, so nothing rung is missed.
      alarm.latch.closeUnsafe()
      runAt = yield* step
    }
  }).pipe(Effect.scoped)

/** Scoped: `listener` is called on every change of leadership until the scope closes. */
export const onLeadershipChange = (leadership: LeadershipView, listener: () => void) =>
  Effect.acquireRelease(
    Effect.sync(() => leadership.onChange(listener)),
    (stop) => Effect.sync(stop)
  )

/** Scoped: rings `alarm` after every signal for which `wakes` answers true (it may note what it saw). */
export const ringOnSignals = (signals: PubSub.PubSub<Signal>, alarm: Alarm, wakes: (signal: Signal) => boolean) =>
  Effect.gen(function* () {
    const subscription = yield* PubSub.subscribe(signals)
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.map(PubSub.take(subscription), (signal) => {
          if (wakes(signal)) alarm.ring()
        })
      )
    )
  })
