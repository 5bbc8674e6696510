/**
 * Group commit for state changes that arrive together (agents joining at once): the bodies
 * submitted while one transaction is committing run together in the next one, at most
 * `maxBatch` of them, in the order they came. One body alone runs at once, so nothing waits
 * that did not have to.
 *
 * Each body runs in a savepoint of its own: if it fails, its writes and events are undone and
 * the others still commit, as they would have one transaction each. Each caller gets its own
 * body's outcome, and its signals are published only after the commit. A conflict, a store that
 * went away, or stale prepared statements are the whole transaction's (`failsTheTransaction`):
 * the store runs every body again or fails them all. Bodies whose transaction still met conflicts on its
 * last attempt are decided again one by one, so a body that always conflicts fails alone.
 *
 * A caller interrupted while it waits does not take its body back: it is decided with the others
 * (a join is idempotent, and an agent that went away asks again when it comes back).
 *
 * Why: on PostgreSQL, joins into one cluster (and hellos into one account) at the same time
 * conflict with each other (they read and write the same small index pages), and each transaction
 * costs its own round trips for `BEGIN`, the events and `COMMIT`. Decided in one transaction, they
 * cannot conflict with each other and share those costs.
 *
 * A batch's transaction takes the gates of all its bodies (`TransactionOptions.gates`), so it waits
 * while a network's publish holds any of their accounts' gates exclusively.
 */
import { Clock, Effect, Exit, FiberSet } from "effect"
import { StoreError } from "../model/errors"
import { failsTheTransaction, type Store, type StoreTx, type TransactionGate, type TransactionOptions } from "../store/store"
import type { TxContext } from "./transactor"

/** What one body collects in its transaction, published once that commits. */
export interface BodyCollector {
  /** The context for one run of the body in `tx` (forgetting what an earlier, rolled-back run collected). */
  readonly contextIn: (tx: StoreTx) => TxContext
  readonly publish: () => Effect.Effect<void>
}

interface Waiting {
  readonly body: (ctx: TxContext) => Effect.Effect<unknown, unknown>
  readonly options: TransactionOptions | undefined
  readonly collector: BodyCollector
  readonly resume: (exit: Exit.Exit<unknown, unknown>) => void
}

const failedWith = (exit: Exit.Exit<unknown, unknown>, test: (error: unknown) => boolean) =>
  Exit.isFailure(exit) && exit.cause.reasons.some((reason) => reason._tag === "Fail" && test(reason.error))

/** A batch's transaction takes every gate its bodies asked for (the store takes each once, exclusive over shared). */
const optionsOf = (batch: ReadonlyArray<Waiting>): TransactionOptions | undefined => {
  const gates: Array<TransactionGate> = batch.flatMap((item) => item.options?.gates ?? [])
  return gates.length === 0 ? undefined : { gates }
}

const isConflict = (error: unknown) => error instanceof StoreError && error.code === "store_conflict"

/** Scoped: a transaction in progress when the scope closes is interrupted with it, and so are its callers. */
export const makeGroupCommit = (store: Store["Service"], collector: (now: Date) => BodyCollector, maxBatch: number) =>
  Effect.gen(function* () {
    const runCommits = yield* FiberSet.makeRuntime<never>()
    let waiting: Array<Waiting> = []
    let committing = false

    const runOne = (tx: StoreTx, item: Waiting) =>
      Effect.exit(tx.inSavepoint(Effect.suspend(() => item.body(item.collector.contextIn(tx))))).pipe(
        Effect.flatMap((exit): Effect.Effect<Exit.Exit<unknown, unknown>, unknown> =>
          Exit.isFailure(exit) && failedWith(exit, failsTheTransaction) ? Effect.failCause(exit.cause) : Effect.succeed(exit)
        )
      )

    // Alone, a body needs no savepoint: its transaction is its own, as with `transact`.
    const runAlone = (item: Waiting) =>
      Effect.gen(function* () {
        const exit = yield* Effect.exit(store.transaction((tx) => item.body(item.collector.contextIn(tx)), item.options))
        if (Exit.isSuccess(exit)) yield* item.collector.publish()
        item.resume(exit)
      })

    const commitWaiting = Effect.gen(function* () {
      while (waiting.length > 0) {
        const batch = waiting.slice(0, maxBatch)
        waiting = waiting.slice(batch.length)
        if (batch.length === 1) {
          yield* runAlone(batch[0]!)
          continue
        }
        const committed = yield* Effect.exit(store.transaction((tx) => Effect.forEach(batch, (item) => runOne(tx, item)), optionsOf(batch)))
        if (Exit.isFailure(committed) && failedWith(committed, isConflict)) {
          // Conflicts to the last attempt: one body may be the cause (it meets the same conflict on
          // every run); decided one by one, it alone fails.
          for (const item of batch) yield* runAlone(item)
          continue
        }
        if (Exit.isFailure(committed)) {
          for (const item of batch) item.resume(committed)
          continue
        }
        for (const [i, item] of batch.entries()) {
          const exit = committed.value[i]!
          if (Exit.isSuccess(exit)) yield* item.collector.publish()
          item.resume(exit)
        }
      }
    }).pipe(
      // A body submitted while the last batch was being resolved is not left waiting.
      Effect.ensuring(
        Effect.sync(() => {
          committing = false
          if (waiting.length > 0) start()
        })
      )
    )
    const start = () => {
      committing = true
      runCommits(commitWaiting)
    }

    return <A, E>(body: (ctx: TxContext) => Effect.Effect<A, E>, options?: TransactionOptions): Effect.Effect<A, E | StoreError> =>
      Effect.flatMap(Clock.currentTimeMillis, (millis) =>
        Effect.callback<A, E | StoreError>((resume) => {
          waiting.push({ body, options, collector: collector(new Date(millis)), resume: resume as Waiting["resume"] })
          if (!committing) start()
        })
      )
  })
