import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { newId, openPostgresStore, type AccountId } from "../src/index"
import { freshDatabase, freshPostgresStoreLayer } from "./support/postgres"
import { storeContract } from "./support/store-contract"

storeContract("PostgreSQL", freshPostgresStoreLayer)

describe("PostgreSQL store", () => {
  it.live("reopening keeps the data and does not re-run migrations", () =>
    Effect.gen(function* () {
      const url = yield* Effect.promise(freshDatabase)
      const write = Effect.scoped(Effect.flatMap(openPostgresStore({ url }), (store) => store.transaction((tx) => tx.appendEvent("acc_x" as never, "kept", "2026-01-01T00:00:00.000Z", {}))))
      yield* write
      const events = yield* Effect.scoped(Effect.flatMap(openPostgresStore({ url }), (store) => store.transaction((tx) => tx.listEvents("acc_x" as never, 0, 10))))
      assert.deepStrictEqual(events.map((e) => e.type), ["kept"])
    })
  )

  it.live("concurrent read-then-write transactions all commit, each seeing a distinct state, with events in commit order", () =>
    Effect.gen(function* () {
      const url = yield* Effect.promise(freshDatabase)
      const store = yield* openPostgresStore({ url })
      const accountId = newId("account") as AccountId
      yield* store.transaction((tx) => tx.insertAccount({ id: accountId, name: "acme", created_at: "2026-01-01T00:00:00.000Z", ula_global_id: "fd12:3456:789a" }))
      // Twenty transactions each read the count of events and append one more, concurrently:
      // under SERIALIZABLE with retries, every one commits and no count is seen twice.
      const seen = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) =>
          store.transaction((tx) =>
            Effect.gen(function* () {
              const before = (yield* tx.listEvents(accountId, 0, 1000)).length
              yield* tx.appendEvent(accountId, "counted", "2026-01-01T00:00:00.000Z", { before, i })
              return before
            })
          ),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual([...seen].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i))
      const events = yield* store.transaction((tx) => tx.listEvents(accountId, 0, 1000))
      // Sequence numbers follow commit order: each event saw exactly the ones before it.
      assert.deepStrictEqual(events.map((e) => e.data.before), Array.from({ length: 20 }, (_, i) => i))
    }).pipe(Effect.scoped)
  )

  it.live("an unreachable server is a typed store_unavailable error, not a crash", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(Effect.scoped(openPostgresStore({ url: "postgres://nobody@127.0.0.1:1/none" })))
      assert.isTrue(Exit.isFailure(exit))
      const message = JSON.stringify(exit)
      assert.include(message, "store_open_failed")
    })
  )
})
