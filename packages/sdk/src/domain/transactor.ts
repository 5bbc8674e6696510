/**
 * One mechanism for every state change: `transact` opens a store transaction, hands the
 * domain a `TxContext` (the transaction, the Clock's time, and collectors for events and
 * changed instances), and publishes the collected signals only after the commit — so no
 * subscriber ever sees an event that was rolled back.
 */
import { Clock, Context, Effect, Layer } from "effect"
import type { FleetEvent } from "../model/entities"
import type { StoreError } from "../model/errors"
import type { AccountId, InstanceId, VipId } from "../model/ids"
import type { DesiredConfigRecord } from "../store/records"
import { Store, type StoreTx, type TransactionOptions } from "../store/store"
import { makeGroupCommit } from "./group-commit"
import { encodeSignals } from "./shared-state"
import { publishSignals, Signals, type Signal } from "./signals"

export interface TxContext {
  readonly tx: StoreTx
  readonly now: Date
  readonly nowIso: string
  /** Appends an event to the account's durable log (R20: callers never put secrets in `data`). */
  readonly emit: (accountId: AccountId, type: string, data: Record<string, unknown>) => Effect.Effect<FleetEvent, StoreError>
  /** Marks an instance whose desired configs changed (with the new record), so connected agents get them. */
  readonly touch: (instanceId: InstanceId, record?: DesiredConfigRecord) => void
  readonly vipHolderChanged: (accountId: AccountId, vipId: VipId, instanceIds: ReadonlyArray<InstanceId>) => void
  /** A network re-render was requested in this transaction: the syncer is woken after the commit. */
  readonly networkSyncRequested: () => void
}

/** What a read-only body gets: the snapshot's transaction and the Clock's time; nothing to emit or publish. */
export type ReadContext = Pick<TxContext, "tx" | "now" | "nowIso">

/**
 * Bodies decided together in one group commit, at most: enough to share a transaction's fixed
 * costs, few enough that one transaction (synchronous work, on SQLite) stays ~10 ms.
 */
const GROUP_COMMIT_MAX = 16

export class Transactor extends Context.Service<
  Transactor,
  {
    /** `options.gate`: see `TransactionGate` (transactions that would keep aborting each other take turns). */
    readonly transact: <A, E, R>(body: (ctx: TxContext) => Effect.Effect<A, E, R>, options?: TransactionOptions) => Effect.Effect<A, E | StoreError, R>
    /**
     * The same, for changes that often arrive together (agents joining at once): bodies submitted
     * while another transaction of these commits share the next one, each in a savepoint of its own
     * (domain/group-commit.ts). The outcome, and what is published, is each body's own. The shared
     * transaction takes the gates of every body in it.
     */
    readonly transactTogether: <A, E>(body: (ctx: TxContext) => Effect.Effect<A, E>, options?: TransactionOptions) => Effect.Effect<A, E | StoreError>
    /** A body that only reads (listings, lookups): `Store.read`, no signals to publish. */
    readonly read: <A, E, R>(body: (ctx: ReadContext) => Effect.Effect<A, E, R>) => Effect.Effect<A, E | StoreError, R>
  }
>()("@fleetplane/sdk/domain/Transactor") {
  static readonly layer = Layer.effect(
    Transactor,
    Effect.gen(function* () {
      const store = yield* Store
      const signals = yield* Signals

      /** What one body collects in a transaction (events, touched instances, VIP changes), published only after the commit. */
      const collector = (now: Date) => {
        const events = new Map<AccountId, Array<FleetEvent>>()
        // Per touched instance, its new records while they are all small enough to carry in the signal.
        const touched = new Map<InstanceId, Array<DesiredConfigRecord> | undefined>()
        const vipChanges: Array<Signal> = []
        let syncRequested = false
        const collected = () => {
          const published: Array<Signal> = [...vipChanges]
          if (syncRequested) published.push({ _tag: "NetworkSyncRequested" })
          for (const [accountId, list] of events) published.push({ _tag: "EventsAppended", accountId, events: list })
          if (touched.size > 0) {
            const changes = [...touched.values()].flatMap((records) => records ?? [])
            published.push({ _tag: "DesiredConfigsChanged", instanceIds: [...touched.keys()], ...(changes.length === 0 ? {} : { changes }) })
          }
          return published
        }
        /**
         * The context for one run of the body in `tx`. A backend may run it again after a
         * serialization conflict (PostgreSQL): what a rolled-back attempt collected is forgotten.
         */
        const contextIn = (tx: StoreTx): TxContext => {
          events.clear()
          touched.clear()
          vipChanges.length = 0
          syncRequested = false
          // On a shared store the other gateways hear of it too, if (and only if) this commits.
          const shared = store.shared
          if (tx.notifyOnCommit !== undefined && shared !== undefined) tx.notifyOnCommit(() => encodeSignals(shared.origin, collected()))
          return {
            tx,
            now,
            nowIso: now.toISOString(),
            emit: (accountId, type, data) =>
              tx.appendEvent(accountId, type, now.toISOString(), data).pipe(
                Effect.tap((event) =>
                  Effect.sync(() => {
                    const list = events.get(accountId) ?? []
                    list.push(event)
                    events.set(accountId, list)
                  })
                )
              ),
            touch: (instanceId, record) => {
              const carried = touched.has(instanceId) ? touched.get(instanceId) : []
              touched.set(instanceId, carried === undefined || record === undefined ? undefined : [...carried, record])
            },
            vipHolderChanged: (accountId, vipId, instanceIds) => {
              vipChanges.push({ _tag: "VipHolderChanged", accountId, vipId, instanceIds })
            },
            networkSyncRequested: () => {
              syncRequested = true
            }
          }
        }
        return { contextIn, publish: () => publishSignals(collected()).pipe(Effect.provideService(Signals, signals)) }
      }

      const transact = <A, E, R>(body: (ctx: TxContext) => Effect.Effect<A, E, R>, options?: TransactionOptions) =>
        Effect.gen(function* () {
          const bodyCollector = collector(new Date(yield* Clock.currentTimeMillis))
          const result = yield* store.transaction((tx) => body(bodyCollector.contextIn(tx)), options)
          yield* bodyCollector.publish()
          return result
        })

      const transactTogether = yield* makeGroupCommit(store, collector, GROUP_COMMIT_MAX)

      const read = <A, E, R>(body: (ctx: ReadContext) => Effect.Effect<A, E, R>) =>
        Effect.flatMap(Clock.currentTimeMillis, (millis) => {
          const now = new Date(millis)
          return store.read((tx) => body({ tx, now, nowIso: now.toISOString() }))
        })

      return Transactor.of({ transact, transactTogether, read })
    })
  )
}
