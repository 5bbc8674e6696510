/**
 * Group commit (domain/group-commit.ts): bodies submitted while a transaction commits share the
 * next one, and still behave as if each had its own — on SQLite and on PostgreSQL.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, PubSub } from "effect"
import { newId, postgresStoreLayer, Signals, sqliteStoreLayer, Store, storeError, Transactor, type AccountId, type Signal } from "../src/index"
import { freshDatabase, freshPostgresStoreLayer } from "./support/postgres"

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

for (const [backend, makeStore] of [
  ["SQLite", () => sqliteStoreLayer({ filename: ":memory:" })],
  ["PostgreSQL", freshPostgresStoreLayer]
] as const) {
  describe(`group commit on ${backend}`, () => {
    it.live("bodies that arrive while one commits share the next transaction; one that fails (by its own error or a statement the database refuses) keeps nothing and publishes nothing, the others commit, and each caller gets its own outcome", () => {
      const { transactions, layer } = counted(makeStore())
      return Effect.gen(function* () {
        const { transactTogether } = yield* Transactor
        const store = yield* Store
        const published = yield* PubSub.subscribe(yield* Signals)
        const owner = newId("account")
        yield* store.transaction((tx) => tx.insertAccount(account(owner, "owner")))
        const before = transactions.count

        // The first body holds its transaction open until the others are waiting.
        const othersWaiting = yield* Deferred.make<void>()
        const first = yield* Effect.forkChild(
          transactTogether((ctx) =>
            Effect.gen(function* () {
              yield* Deferred.await(othersWaiting)
              yield* ctx.emit(owner, "first", {})
              return "first"
            })
          )
        )
        const names = ["a", "refused", "b", "bad-row", "c"]
        const others = yield* Effect.forEach(names, (name) =>
          Effect.forkChild(
            transactTogether((ctx) =>
              Effect.gen(function* () {
                yield* ctx.tx.insertAccount(account(newId("account"), name === "bad-row" ? null : name))
                yield* ctx.emit(owner, name, {})
                if (name === "refused") return yield* Effect.fail("refused" as const)
                return name
              })
            )
          )
        )
        yield* Effect.sleep("50 millis")
        yield* Deferred.succeed(othersWaiting, undefined)

        assert.strictEqual(yield* Fiber.join(first), "first")
        const outcomes = yield* Effect.forEach(others, (fiber) => Fiber.await(fiber))
        assert.deepStrictEqual(outcomes[0], Exit.succeed("a"))
        assert.deepStrictEqual(outcomes[1], Exit.fail("refused"))
        assert.deepStrictEqual(outcomes[2], Exit.succeed("b"))
        assert.include(JSON.stringify(outcomes[3]), "store_failed")
        assert.deepStrictEqual(outcomes[4], Exit.succeed("c"))
        // Two transactions: the first body's, then the five that waited for it.
        assert.strictEqual(transactions.count - before, 2)

        const stored = (yield* store.read((tx) => tx.listAccounts())).map((a) => a.name).sort()
        assert.deepStrictEqual(stored, ["a", "b", "c", "owner"])
        assert.deepStrictEqual((yield* store.read((tx) => tx.listEvents(owner, 0, 100))).map((e) => e.type), ["first", "a", "b", "c"])
        const signals: ReadonlyArray<Signal> = yield* PubSub.takeAll(published)
        const announced = signals.flatMap((signal) => (signal._tag === "EventsAppended" ? signal.events.map((e) => e.type) : []))
        assert.deepStrictEqual(announced, ["first", "a", "b", "c"])
      }).pipe(Effect.provide(Transactor.layer.pipe(Layer.provideMerge(Signals.layer), Layer.provideMerge(layer))), Effect.scoped) as Effect.Effect<void, unknown>
    })
  })
}

for (const [backend, makeStore] of [
  ["SQLite", () => sqliteStoreLayer({ filename: ":memory:" })],
  ["PostgreSQL", () => Layer.unwrap(Effect.map(Effect.promise(freshDatabase), (url) => postgresStoreLayer({ url, maxAttempts: 3 })))]
] as const) {
  describe(`group commit on ${backend}, a body that always conflicts`, () => {
    it.live("fails alone: after its shared transaction gave up, the bodies are decided one by one and the others commit", () =>
      Effect.gen(function* () {
        const { transactTogether } = yield* Transactor
        const store = yield* Store
        const owner = newId("account")
        yield* store.transaction((tx) => tx.insertAccount(account(owner, "owner")))
        const othersWaiting = yield* Deferred.make<void>()
        const first = yield* Effect.forkChild(transactTogether(() => Deferred.await(othersWaiting)))
        const others = yield* Effect.forEach(["a", "always", "c"], (name) =>
          Effect.forkChild(
            transactTogether((ctx) =>
              Effect.gen(function* () {
                yield* ctx.tx.insertAccount(account(newId("account"), name))
                if (name === "always") return yield* Effect.fail(storeError("store_conflict", "a concurrent change conflicted with this one", { sqlstate: "40001" }))
                return name
              })
            )
          )
        )
        yield* Effect.sleep("50 millis")
        yield* Deferred.succeed(othersWaiting, undefined)
        yield* Fiber.join(first)
        const outcomes = yield* Effect.forEach(others, (fiber) => Fiber.await(fiber))
        assert.deepStrictEqual(outcomes[0], Exit.succeed("a"))
        assert.include(JSON.stringify(outcomes[1]), "store_conflict")
        assert.deepStrictEqual(outcomes[2], Exit.succeed("c"))
        assert.deepStrictEqual((yield* store.read((tx) => tx.listAccounts())).map((a) => a.name).sort(), ["a", "c", "owner"])
      }).pipe(Effect.provide(Transactor.layer.pipe(Layer.provideMerge(Signals.layer), Layer.provideMerge(makeStore()))), Effect.scoped) as Effect.Effect<void, unknown>
    )
  })
}

describe("group commit on PostgreSQL, after a conflict", () => {
  it.live("a transaction of several bodies that meets a serialization conflict runs again as a whole: each body commits once, its events once, and what the failed attempt collected is not published", () => {
    const { transactions, layer } = counted(freshPostgresStoreLayer())
    return Effect.gen(function* () {
      const { transactTogether } = yield* Transactor
      const store = yield* Store
      const published = yield* PubSub.subscribe(yield* Signals)
      const owner = newId("account")
      yield* store.transaction((tx) => tx.insertAccount(account(owner, "owner")))
      const before = transactions.count

      const othersWaiting = yield* Deferred.make<void>()
      const first = yield* Effect.forkChild(transactTogether(() => Deferred.await(othersWaiting)))
      // The second body of the shared transaction meets a conflict on its first run, as PostgreSQL reports one.
      let runs = 0
      const names = ["a", "conflicted", "c"]
      const others = yield* Effect.forEach(names, (name) =>
        Effect.forkChild(
          transactTogether((ctx) =>
            Effect.gen(function* () {
              yield* ctx.tx.insertAccount(account(newId("account"), name))
              yield* ctx.emit(owner, name, {})
              if (name === "conflicted" && runs++ === 0) return yield* Effect.fail(storeError("store_conflict", "a concurrent change conflicted with this one", { sqlstate: "40001" }))
              return name
            })
          )
        )
      )
      yield* Effect.sleep("50 millis")
      yield* Deferred.succeed(othersWaiting, undefined)
      yield* Fiber.join(first)
      assert.deepStrictEqual(yield* Effect.forEach(others, Fiber.join), ["a", "conflicted", "c"])
      assert.strictEqual(runs, 2)
      // The first body's transaction, then the shared one: the store ran its body twice.
      assert.strictEqual(transactions.count - before, 2)
      assert.deepStrictEqual((yield* store.read((tx) => tx.listAccounts())).map((a) => a.name).sort(), ["a", "c", "conflicted", "owner"])
      assert.deepStrictEqual((yield* store.read((tx) => tx.listEvents(owner, 0, 100))).map((e) => e.type), ["a", "conflicted", "c"])
      const signals: ReadonlyArray<Signal> = yield* PubSub.takeAll(published)
      assert.deepStrictEqual(signals.flatMap((signal) => (signal._tag === "EventsAppended" ? signal.events.map((e) => e.type) : [])), ["a", "conflicted", "c"])
    }).pipe(Effect.provide(Transactor.layer.pipe(Layer.provideMerge(Signals.layer), Layer.provideMerge(layer))), Effect.scoped) as Effect.Effect<void, unknown>
  })
})
