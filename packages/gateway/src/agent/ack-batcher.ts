/**
 * Group commit for config acks: the acks that arrive within one turn of the event loop (a
 * fan-out to 1,000 peers brings 1,000 of them at once), or while the batch before them is being
 * committed, are recorded in one transaction, at most `maxBatch` each, instead of one
 * transaction per ack. Each caller still waits for its own ack to be committed, so a session's
 * work stays in order.
 *
 * One commit at a time: acks trickling in during a bring-up (agents configured one after
 * another) used to start a transaction each beside the one in flight; on PostgreSQL that was
 * about half of a bring-up's transactions.
 *
 * An ack no later work of its session depends on (an applied one, `submit`) is recorded without
 * its session waiting: a fan-out to 10,000 sessions then brings 10,000 acks and no fiber. A
 * failed commit of such acks is reported once for its batch (`onUnwaitedFailure`).
 */
import { type Cause, Effect, Exit, FiberSet } from "effect"
import { AgentPort, type AgentIdentity } from "@fleetplane/sdk"
import type { ConfigAckBody } from "@fleetplane/agent-protocol"

interface Waiting {
  readonly identity: AgentIdentity
  readonly ack: ConfigAckBody
  /** Absent for an ack recorded with `submit`: nobody waits for it. */
  readonly resume: ((exit: Exit.Exit<void, unknown>) => void) | undefined
}

/** Scoped: commits in progress when the scope closes are interrupted with it. */
export const makeAckBatcher = (maxBatch = 500, onUnwaitedFailure: (acks: number, cause: Cause.Cause<unknown>) => void = () => undefined) =>
  Effect.gen(function* () {
    const port = yield* AgentPort
    const runCommit = yield* FiberSet.makeRuntime<never>()
    let waiting: Array<Waiting> = []
    let scheduled = false
    const commit = Effect.gen(function* () {
      while (waiting.length > 0) {
        const batch = waiting.slice(0, maxBatch)
        waiting = waiting.slice(batch.length)
        const exit = yield* Effect.exit(port.configAcks(batch.map(({ identity, ack }) => ({ identity, ack }))))
        const unwaited = batch.filter((entry) => entry.resume === undefined).length
        if (Exit.isFailure(exit) && unwaited > 0) onUnwaitedFailure(unwaited, exit.cause)
        for (const entry of batch) entry.resume?.(exit)
      }
    }).pipe(
      // Acks that came while the last batch committed were taken by the loop; none is left waiting.
      Effect.ensuring(
        Effect.sync(() => {
          scheduled = false
          if (waiting.length > 0) schedule()
        })
      )
    )
    const schedule = () => {
      scheduled = true
      setImmediate(() => runCommit(commit))
    }
    const add = (entry: Waiting) => {
      waiting.push(entry)
      if (!scheduled) schedule()
    }
    return {
      /** Succeeds once this ack is committed (with the others of its turn); fails with its batch's failure. */
      record: (identity: AgentIdentity, ack: ConfigAckBody): Effect.Effect<void, unknown> =>
        Effect.callback<void, unknown>((resume) => add({ identity, ack, resume })),
      /** Records this ack with the others of its turn; nobody waits (a failed commit goes to `onUnwaitedFailure`). */
      submit: (identity: AgentIdentity, ack: ConfigAckBody): void => add({ identity, ack, resume: undefined })
    }
  })

export type AckBatcher = Effect.Success<ReturnType<typeof makeAckBatcher>>
