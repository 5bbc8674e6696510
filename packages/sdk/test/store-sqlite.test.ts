import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { sqliteStoreLayer, Store } from "../src/index"
import { storeContract } from "./support/store-contract"

storeContract("SQLite in memory", () => sqliteStoreLayer({ filename: ":memory:" }))
storeContract("SQLite file (WAL)", () => sqliteStoreLayer({ filename: join(mkdtempSync(join(tmpdir(), "fleetplane-store-")), "fleet.db") }))

describe("SQLite store", () => {
  it.effect("reopening a file keeps its data and does not re-run migrations", () =>
    Effect.gen(function* () {
      const filename = join(mkdtempSync(join(tmpdir(), "fleetplane-store-")), "fleet.db")
      const write = Effect.flatMap(Effect.service(Store), (store) =>
        store.transaction((tx) => tx.appendEvent("acc_x" as never, "kept", "2026-01-01T00:00:00.000Z", {}))
      )
      yield* Effect.provide(write, sqliteStoreLayer({ filename }))
      const read = Effect.flatMap(Effect.service(Store), (store) => store.transaction((tx) => tx.listEvents("acc_x" as never, 0, 10)))
      const events = yield* Effect.provide(read, sqliteStoreLayer({ filename }))
      assert.deepStrictEqual(events.map((e) => e.type), ["kept"])
    })
  )
})
