import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit } from "effect"
import { newId, openPostgresStore, type AccountId } from "../src/index"
import { advisoryLocksHeld, freshDatabase, freshPostgresStoreLayer, runAlone, terminateOtherConnections } from "./support/postgres"
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

  it.live("a burst of transactions that all conflict commits within four attempts each: retries run one at a time", () =>
    Effect.gen(function* () {
      const store = yield* openPostgresStore({ url: yield* Effect.promise(freshDatabase), maxAttempts: 4 })
      const accountId = newId("account") as AccountId
      yield* store.transaction((tx) => tx.insertAccount({ id: accountId, name: "acme", created_at: "2026-01-01T00:00:00.000Z", ula_global_id: "fd12:3456:789a" }))
      // Each reads every event and appends one: any two running side by side conflict.
      const seen = yield* Effect.forEach(
        Array.from({ length: 40 }, (_, i) => i),
        () =>
          store.transaction((tx) =>
            Effect.gen(function* () {
              const before = (yield* tx.listEvents(accountId, 0, 1000)).length
              yield* tx.appendEvent(accountId, "counted", "2026-01-01T00:00:00.000Z", { before })
              return before
            })
          ),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual([...seen].sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i))
    }).pipe(Effect.scoped)
  )

  // Writes are pipelined: sent without waiting for their answer (PgConnection in postgres-store.ts).
  const account = (name: string) => ({ id: newId("account") as AccountId, name, created_at: "2026-01-01T00:00:00.000Z", ula_global_id: "fd12:3456:789a" })
  // A NOT NULL violation: a failure that is not retried (a conflict would be run again).
  const invalidAccount = () => ({ ...account("x"), name: null as unknown as string })

  it.live("a pipelined write is seen by the reads after it in its transaction", () =>
    Effect.gen(function* () {
      const store = yield* openPostgresStore({ url: yield* Effect.promise(freshDatabase), poolSize: 1 })
      const acme = account("acme")
      const read = yield* store.transaction((tx) => Effect.andThen(tx.insertAccount(acme), tx.getAccount(acme.id)))
      assert.strictEqual(read?.name, "acme")
    }).pipe(Effect.scoped)
  )

  it.live("a pipelined write that fails fails its transaction with its own error, and nothing of the transaction is kept", () =>
    Effect.gen(function* () {
      const store = yield* openPostgresStore({ url: yield* Effect.promise(freshDatabase), poolSize: 1 })
      const first = account("first")
      // Followed by a read: the read's answer reports the write's failure, not "transaction aborted".
      const exit = yield* Effect.exit(
        store.transaction((tx) => Effect.andThen(Effect.andThen(tx.insertAccount(first), tx.insertAccount(invalidAccount())), tx.listAccounts()))
      )
      assert.isTrue(Exit.isFailure(exit))
      const error = JSON.stringify(exit)
      assert.include(error, "store_failed")
      assert.include(error, "23502")
      // The last statement of the body: the commit reports it.
      const atCommit = yield* Effect.exit(store.transaction((tx) => Effect.andThen(tx.insertAccount(account("second")), tx.insertAccount(invalidAccount()))))
      assert.include(JSON.stringify(atCommit), "23502")
      // Nothing was kept, and the one connection is back in the pool, usable.
      const accounts = yield* store.transaction((tx) => tx.listAccounts())
      assert.deepStrictEqual(accounts, [])
    }).pipe(Effect.scoped)
  )

  it.live("a conflict reaching a read sent together with others is retried as a conflict, whichever read reports first (not as 'transaction aborted')", () =>
    Effect.gen(function* () {
      const store = yield* openPostgresStore({ url: yield* Effect.promise(freshDatabase), poolSize: 1, maxAttempts: 3 })
      const twice = account("twice")
      let attempts = 0
      const exit = yield* Effect.exit(
        store.transaction((tx) =>
          Effect.gen(function* () {
            attempts++
            yield* tx.insertAccount(twice)
            yield* tx.insertAccount(twice) // a unique violation: a conflict, run again
            // Two reads in one round trip. The first carries the violation; the second only "current
            // transaction is aborted" (25P02), and here its failure is seen first.
            return yield* Effect.all([Effect.tapError(tx.listAccounts(), () => Effect.sleep(50)), tx.getAccount(twice.id)], { concurrency: "unbounded" })
          })
        )
      )
      assert.include(JSON.stringify(exit), "store_conflict")
      assert.notInclude(JSON.stringify(exit), "aborted")
      assert.strictEqual(attempts, 3)
    }).pipe(Effect.scoped)
  )

  it.live("a body that fails after pipelined writes rolls them back and leaves the connection idle", () =>
    Effect.gen(function* () {
      const store = yield* openPostgresStore({ url: yield* Effect.promise(freshDatabase), poolSize: 1 })
      const exit = yield* Effect.exit(store.transaction((tx) => Effect.andThen(tx.insertAccount(account("gone")), Effect.fail("refused" as const))))
      assert.deepStrictEqual(exit, Exit.fail("refused"))
      const kept = account("kept")
      yield* store.transaction((tx) => tx.insertAccount(kept))
      assert.deepStrictEqual((yield* store.transaction((tx) => tx.listAccounts())).map((a) => a.name), ["kept"])
    }).pipe(Effect.scoped)
  )

  it.live("a connection killed before the commit runs the transaction again on a fresh one; killed again, it fails as store_unavailable and keeps nothing; killed at the commit, it says the outcome is unknown", () =>
    Effect.gen(function* () {
      const url = yield* Effect.promise(freshDatabase)
      const store = yield* openPostgresStore({ url, poolSize: 1 })
      yield* store.transaction((tx) => tx.insertAccount(account("before")))
      const killOthers = Effect.promise(() => terminateOtherConnections(url))
      // Killed once, with a pipelined write in flight: run again on a fresh connection, committed once.
      let attempts = 0
      const once = account("once")
      const names = yield* store.transaction((tx) =>
        Effect.gen(function* () {
          attempts++
          yield* tx.insertAccount(once)
          if (attempts === 1) yield* killOthers
          return (yield* tx.listAccounts()).map((a) => a.name)
        })
      )
      assert.strictEqual(attempts, 2)
      assert.deepStrictEqual(names.sort(), ["before", "once"])

      // Killed on every attempt: a typed error that says nothing changed.
      const exit = yield* Effect.exit(
        store.transaction((tx) => Effect.gen(function* () {
          yield* tx.insertAccount(account("lost"))
          yield* killOthers
          return yield* tx.listAccounts()
        }))
      )
      assert.include(JSON.stringify(exit), "store_unavailable")
      assert.include(JSON.stringify(exit), "nothing was changed")

      // Killed at the commit: whether COMMIT reached the server is not known, so no retry, and the error says so.
      attempts = 0
      const atCommit = yield* Effect.exit(store.transaction((tx) => Effect.andThen(Effect.sync(() => attempts++), Effect.andThen(tx.insertAccount(account("unsure")), killOthers))))
      assert.strictEqual(attempts, 1)
      assert.include(JSON.stringify(atCommit), "may or may not have been committed")
      assert.include(JSON.stringify(atCommit), '"outcome":"unknown"')

      yield* store.transaction((tx) => tx.insertAccount(account("after")))
      assert.deepStrictEqual((yield* store.read((tx) => tx.listAccounts())).map((a) => a.name).sort(), ["after", "before", "once"])
    }).pipe(Effect.scoped)
  )

  it.live("a table altered under the prepared statements (another gateway migrated the database) costs one more run on a fresh connection, not an error", () =>
    Effect.gen(function* () {
      const url = yield* Effect.promise(freshDatabase)
      const store = yield* openPostgresStore({ url, poolSize: 1 })
      const kept = account("kept")
      yield* store.transaction((tx) => tx.insertAccount(kept))
      const read = store.read((tx) => tx.getAccount(kept.id))
      // Run twice: a statement is prepared when it runs a second time.
      yield* read
      yield* read
      // A newer build adds a column: `SELECT *` prepared before it now returns another row type.
      yield* Effect.promise(() => runAlone(url, "ALTER TABLE accounts ADD COLUMN added_by_a_newer_build TEXT"))
      const after = yield* read
      assert.strictEqual(after?.name, "kept")
      yield* store.transaction((tx) => tx.insertAccount(account("later")))
      assert.deepStrictEqual((yield* store.read((tx) => tx.listAccounts())).map((a) => a.name).sort(), ["kept", "later"])
    }).pipe(Effect.scoped)
  )

  // A gate (TransactionGate): a long transaction that reads what short ones write, and writes
  // what they read — a network's publish and the agents' hellos — takes turns with them instead
  // of being aborted by them. Two stores on one database, as two gateways.
  const gatedScenario = (gated: boolean) =>
    Effect.gen(function* () {
      const url = yield* Effect.promise(freshDatabase)
      const leader = yield* openPostgresStore({ url })
      const other = yield* openPostgresStore({ url })
      const read = account("read-by-the-long-one")
      const written = account("written-by-the-long-one")
      yield* leader.transaction((tx) => Effect.andThen(tx.insertAccount(read), tx.insertAccount(written)))
      const options = (mode: "shared" | "exclusive") => (gated ? { gates: [{ name: "peer-set:acme", mode }] } : {})
      const longHasRead = yield* Deferred.make<void>()
      let longAttempts = 0
      let shortAttempts = 0
      const order: Array<string> = []
      const long = leader.transaction(
        (tx) =>
          Effect.gen(function* () {
            longAttempts++
            yield* tx.getAccount(read.id)
            yield* Deferred.succeed(longHasRead, undefined)
            yield* Effect.sleep("300 millis")
            yield* tx.setAccountUlaGlobalId(written.id, "fd00:0000:0001")
          }),
        options("exclusive")
      ).pipe(Effect.tap(() => Effect.sync(() => order.push("long"))))
      const short = Effect.andThen(
        Deferred.await(longHasRead),
        other.transaction(
          (tx) =>
            Effect.gen(function* () {
              shortAttempts++
              yield* tx.setAccountUlaGlobalId(read.id, "fd00:0000:0002")
              return (yield* tx.getAccount(written.id))?.ula_global_id
            }),
          options("shared")
        )
      ).pipe(Effect.tap(() => Effect.sync(() => order.push("short"))))
      const [, shortSaw] = yield* Effect.all([long, short], { concurrency: "unbounded" })
      return { longAttempts, shortAttempts, order, shortSaw }
    }).pipe(Effect.scoped)

  it.live("a gated long transaction is not aborted by the short ones it reads from: they wait for it, on another gateway too, and see what it wrote", () =>
    Effect.gen(function* () {
      // Without the gate, the short transaction commits in the long one's pause: the long one's write then closes a cycle and it runs again.
      const ungated = yield* gatedScenario(false)
      assert.deepStrictEqual({ long: ungated.longAttempts, order: ungated.order }, { long: 2, order: ["short", "long"] })
      const gated = yield* gatedScenario(true)
      assert.deepStrictEqual(
        { long: gated.longAttempts, short: gated.shortAttempts, order: gated.order, shortSaw: gated.shortSaw },
        // The short one's snapshot is taken after the wait: it sees the long one's write.
        { long: 1, short: 1, order: ["long", "short"], shortSaw: "fd00:0000:0001" }
      )
    })
  )

  it.live("a gate is given back after a commit, a failed body and a rollback: no advisory lock stays held", () =>
    Effect.gen(function* () {
      const url = yield* Effect.promise(freshDatabase)
      const store = yield* openPostgresStore({ url, poolSize: 2 })
      const exclusive = { gates: [{ name: "peer-set:acme", mode: "exclusive" as const }] }
      // Two gates, one asked twice: each is given back.
      const shared = { gates: [{ name: "peer-set:other", mode: "shared" as const }, { name: "peer-set:acme", mode: "shared" as const }, { name: "peer-set:acme", mode: "shared" as const }] }
      yield* store.transaction((tx) => tx.insertAccount(account("committed")), exclusive)
      yield* Effect.exit(store.transaction((tx) => Effect.andThen(tx.insertAccount(account("failed")), Effect.fail("refused" as const)), shared))
      yield* Effect.exit(store.transaction((tx) => Effect.andThen(tx.insertAccount(account("committed")), tx.insertAccount(invalidAccount())), exclusive))
      // Another session must be able to take the gate alone at once: nothing of the above holds it.
      const held = yield* Effect.promise(() => advisoryLocksHeld(url))
      assert.strictEqual(held, 0)
      assert.deepStrictEqual((yield* store.read((tx) => tx.listAccounts())).map((a) => a.name), ["committed"])
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
