/**
 * Group commit (domain/group-commit.ts): bodies submitted while a transaction commits share the
 * next one, and still behave as if each had its own — on SQLite and on PostgreSQL.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, PubSub } from "effect"
import {
  newId,
  postgresStoreLayer,
  Signals,
  sqliteStoreLayer,
  Store,
  storeError,
  Transactor,
  type AccountId,
  type Signal,
  type TransactionOptions,
  type TxContext
} from "../src/index"
import { freshDatabase, freshPostgresStoreLayer, runAlone } from "./support/postgres"

/** The store, counting its write transactions. */
const counted = (store: Layer.Layer<Store, unknown>) => {
  const transactions = { count: 0 }
  const layer = Layer.effect(
    Store,
    Effect.map(Effect.service(Store), (inner) =>
      Store.of({
        ...inner,
        transaction: (body) =>
          Effect.suspend(() => {
            transactions.count++
            return inner.transaction(body)
          })
      })
    )
  ).pipe(Layer.provide(store))
  return { transactions, layer }
}

const account = (id: AccountId, name: string | null) => ({ id, name: name as string, created_at: "2026-01-01T00:00:00.000Z", ula_global_id: "fd12:3456:789a" })

const conflict = () => storeError("store_conflict", "a concurrent change conflicted with this one", { sqlstate: "40001" })

/** A body that records an account named `name` and an event of that type on `owner`, then answers its name. */
const recording =
  (owner: AccountId, name: string, then: Effect.Effect<void, unknown> = Effect.void) =>
  (ctx: TxContext) =>
    Effect.gen(function* () {
      yield* ctx.tx.insertAccount(account(newId("account"), name))
      yield* ctx.emit(owner, name, {})
      yield* then
      return name
    })

type Body = (ctx: TxContext) => Effect.Effect<unknown, unknown>

/**
 * Runs the test against a fleet's Transactor on `store`, with an account `owner`; `submit`
 * submits `bodies` (each alone or with its transaction options) so they all queue behind a
 * first one that holds its transaction open until they wait, and answers how each came out.
 */
const withTransactor = (
  store: Layer.Layer<Store, unknown>,
  test: (fleet: {
    readonly store: Store["Service"]
    readonly owner: AccountId
    readonly published: PubSub.Subscription<Signal>
    readonly submit: (first: Body, bodies: ReadonlyArray<Body | readonly [Body, TransactionOptions]>) => Effect.Effect<ReadonlyArray<Exit.Exit<unknown, unknown>>>
  }) => Effect.Effect<void, unknown>
) =>
  Effect.gen(function* () {
    const { transactTogether } = yield* Transactor
    const stored = yield* Store
    const published = yield* PubSub.subscribe(yield* Signals)
    const owner = newId("account")
    yield* stored.transaction((tx) => tx.insertAccount(account(owner, "owner")))
    const submit = (first: Body, bodies: ReadonlyArray<Body | readonly [Body, TransactionOptions]>) =>
      Effect.gen(function* () {
        const othersWaiting = yield* Deferred.make<void>()
        const holding = yield* Effect.forkChild(transactTogether((ctx) => Effect.andThen(Deferred.await(othersWaiting), first(ctx))))
        const others = yield* Effect.forEach(bodies, (entry) => Effect.forkChild(typeof entry === "function" ? transactTogether(entry) : transactTogether(entry[0], entry[1])))
        yield* Effect.sleep("50 millis")
        yield* Deferred.succeed(othersWaiting, undefined)
        yield* Fiber.await(holding)
        return yield* Effect.forEach(others, (fiber) => Fiber.await(fiber))
      })
    yield* test({ store: stored, owner, published, submit })
  }).pipe(Effect.provide(Transactor.layer.pipe(Layer.provideMerge(Signals.layer), Layer.provideMerge(store))), Effect.scoped) as Effect.Effect<void, unknown>

const namesOf = (store: Store["Service"]) => Effect.map(store.read((tx) => tx.listAccounts()), (accounts) => accounts.map((a) => a.name).sort())
const eventsOf = (store: Store["Service"], owner: AccountId) => Effect.map(store.read((tx) => tx.listEvents(owner, 0, 100)), (events) => events.map((e) => e.type))
const announced = (published: PubSub.Subscription<Signal>) =>
  Effect.map(PubSub.takeAll(published), (signals) => signals.flatMap((signal) => (signal._tag === "EventsAppended" ? signal.events.map((e) => e.type) : [])))

for (const [backend, makeStore] of [
  ["SQLite", () => sqliteStoreLayer({ filename: ":memory:" })],
  ["PostgreSQL", freshPostgresStoreLayer]
] as const) {
  describe(`group commit on ${backend}`, () => {
    it.live("bodies that arrive while one commits share the next transaction; one that fails (by its own error or a statement the database refuses) keeps nothing and publishes nothing, the others commit, and each caller gets its own outcome", () => {
      const { transactions, layer } = counted(makeStore())
      return withTransactor(layer, ({ store, owner, published, submit }) =>
        Effect.gen(function* () {
          const before = transactions.count
          const outcomes = yield* submit((ctx) => ctx.emit(owner, "first", {}), [
            recording(owner, "a"),
            recording(owner, "refused", Effect.fail("refused")),
            recording(owner, "b"),
            (ctx) => ctx.tx.insertAccount(account(newId("account"), null)),
            recording(owner, "c")
          ])
          assert.deepStrictEqual(outcomes[0], Exit.succeed("a"))
          assert.deepStrictEqual(outcomes[1], Exit.fail("refused"))
          assert.deepStrictEqual(outcomes[2], Exit.succeed("b"))
          assert.include(JSON.stringify(outcomes[3]), "store_failed")
          assert.deepStrictEqual(outcomes[4], Exit.succeed("c"))
          // Two transactions: the first body's, then the five that waited for it.
          assert.strictEqual(transactions.count - before, 2)
          assert.deepStrictEqual(yield* namesOf(store), ["a", "b", "c", "owner"])
          assert.deepStrictEqual(yield* eventsOf(store, owner), ["first", "a", "b", "c"])
          assert.deepStrictEqual(yield* announced(published), ["first", "a", "b", "c"])
        })
      )
    })
  })
}

for (const [backend, makeStore] of [
  ["SQLite", () => sqliteStoreLayer({ filename: ":memory:" })],
  ["PostgreSQL", () => Layer.unwrap(Effect.map(Effect.promise(freshDatabase), (url) => postgresStoreLayer({ url, maxAttempts: 3 })))]
] as const) {
  describe(`group commit on ${backend}, a body that always conflicts`, () => {
    it.live("fails alone: after its shared transaction gave up, the bodies are decided one by one and the others commit", () =>
      withTransactor(makeStore(), ({ store, owner, submit }) =>
        Effect.gen(function* () {
          const outcomes = yield* submit(() => Effect.void, [recording(owner, "a"), recording(owner, "always", Effect.fail(conflict())), recording(owner, "c")])
          assert.deepStrictEqual(outcomes[0], Exit.succeed("a"))
          assert.include(JSON.stringify(outcomes[1]), "store_conflict")
          assert.deepStrictEqual(outcomes[2], Exit.succeed("c"))
          assert.deepStrictEqual(yield* namesOf(store), ["a", "c", "owner"])
        })
      )
    )
  })
}

describe("group commit on PostgreSQL, after a conflict", () => {
  it.live("a transaction of several bodies that meets a serialization conflict runs again as a whole: each body commits once, its events once, and what the failed attempt collected is not published", () => {
    const { transactions, layer } = counted(freshPostgresStoreLayer())
    return withTransactor(layer, ({ store, owner, published, submit }) =>
      Effect.gen(function* () {
        const before = transactions.count
        // The second body of the shared transaction meets a conflict on its first run, as PostgreSQL reports one.
        let runs = 0
        const conflictOnce = Effect.suspend(() => (runs++ === 0 ? Effect.fail(conflict()) : Effect.void))
        const outcomes = yield* submit(() => Effect.void, [recording(owner, "a"), recording(owner, "conflicted", conflictOnce), recording(owner, "c")])
        assert.deepStrictEqual(outcomes, [Exit.succeed("a"), Exit.succeed("conflicted"), Exit.succeed("c")])
        assert.strictEqual(runs, 2)
        // The first body's transaction, then the shared one: the store ran its body twice.
        assert.strictEqual(transactions.count - before, 2)
        assert.deepStrictEqual(yield* namesOf(store), ["a", "c", "conflicted", "owner"])
        assert.deepStrictEqual(yield* eventsOf(store, owner), ["a", "conflicted", "c"])
        assert.deepStrictEqual(yield* announced(published), ["a", "conflicted", "c"])
      })
    )
  })
})

describe("group commit on PostgreSQL, with gates", () => {
  it.live("a shared transaction takes the gates of every body in it: while another transaction holds one exclusively, none of the batch commits; after, the batch sees what it wrote", () =>
    withTransactor(freshPostgresStoreLayer(), ({ store, owner, submit }) =>
      Effect.gen(function* () {
        const holding = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const holder = yield* Effect.forkChild(
          store.transaction(
            (tx) =>
              Effect.gen(function* () {
                // A first statement: the gate's lock leaves with it (the store sends nothing before).
                yield* tx.listAccounts()
                yield* Deferred.succeed(holding, undefined)
                yield* Deferred.await(release)
                yield* tx.insertAccount(account(newId("account"), "holder"))
              }),
            { gates: [{ name: "g", mode: "exclusive" }] }
          )
        )
        yield* Deferred.await(holding)
        // Well after the batch formed (50 ms), what is committed; then the holder is let go.
        const during = yield* Effect.forkChild(
          Effect.gen(function* () {
            yield* Effect.sleep("400 millis")
            const names = yield* namesOf(store)
            yield* Deferred.succeed(release, undefined)
            return names
          })
        )
        const seesHolder: Body = (ctx) =>
          Effect.gen(function* () {
            const names = (yield* ctx.tx.listAccounts()).map((a) => a.name)
            yield* recording(owner, "a")(ctx)
            return names.includes("holder")
          })
        const outcomes = yield* submit(() => Effect.void, [[seesHolder, { gates: [{ name: "g", mode: "shared" }] }], recording(owner, "b")])
        yield* Fiber.join(holder)
        assert.deepStrictEqual(yield* Fiber.join(during), ["owner"])
        assert.deepStrictEqual(outcomes, [Exit.succeed(true), Exit.succeed("b")])
        assert.deepStrictEqual(yield* namesOf(store), ["a", "b", "holder", "owner"])
      })
    )
  )
})

describe("group commit on PostgreSQL, after another gateway's migration", () => {
  it.live("bodies sharing a transaction whose prepared statements went stale (a table altered under them) all commit, on a fresh connection", () =>
    Effect.flatMap(Effect.promise(freshDatabase), (url) =>
      withTransactor(postgresStoreLayer({ url, poolSize: 1 }), ({ store, owner, submit }) =>
        Effect.gen(function* () {
          // Read the owner twice on the one connection: its statement is prepared there.
          const readOwner = (ctx: TxContext) => Effect.asVoid(ctx.tx.getAccount(owner))
          yield* submit(readOwner, [])
          yield* submit(readOwner, [])
          yield* Effect.promise(() => runAlone(url, "ALTER TABLE accounts ADD COLUMN added_by_a_newer_build TEXT"))
          const outcomes = yield* submit(() => Effect.void, ["a", "b", "c"].map((name) => (ctx: TxContext) => Effect.andThen(readOwner(ctx), recording(owner, name)(ctx))))
          assert.deepStrictEqual(outcomes, [Exit.succeed("a"), Exit.succeed("b"), Exit.succeed("c")])
          assert.deepStrictEqual(yield* namesOf(store), ["a", "b", "c", "owner"])
        })
      )
    )
  )
})
