import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import Database from "better-sqlite3"
import { newId, sqliteStoreLayer, Store, type AccountId, type NodeId, type TemplateId } from "../src/index"
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

describe("SQLite rows decoded with their Schemas", () => {
  it.effect("a row that does not match its record is a typed store_row_invalid error naming the table, the column and the row, never the value", () =>
    Effect.gen(function* () {
      const filename = join(mkdtempSync(join(tmpdir(), "fleetplane-store-")), "fleet.db")
      const accountId = newId("account") as AccountId
      const templateId = newId("template") as TemplateId
      const nodeId = newId("node") as NodeId
      const seed = Effect.flatMap(Effect.service(Store), (store) =>
        store.transaction((tx) =>
          Effect.gen(function* () {
            yield* tx.insertAccount({ id: accountId, name: "acme", created_at: "2026-01-01T00:00:00.000Z", ula_global_id: "fd12:3456:789a" })
            yield* tx.insertTemplate({ id: templateId, account_id: accountId, name: "t", modules: [], created_at: "2026-01-01T00:00:00.000Z" })
            yield* tx.insertNode({ id: nodeId, account_id: accountId, hostname: "edge-1", node_template_id: templateId, created_at: "2026-01-01T00:00:00.000Z" })
          })
        )
      )
      yield* Effect.provide(seed, sqliteStoreLayer({ filename }))
      // Changed behind the store's back: a template id that is no template id.
      const db = new Database(filename)
      db.pragma("foreign_keys = OFF")
      db.prepare("UPDATE nodes SET node_template_id = 'secret-looking-value' WHERE id = ?").run(nodeId)
      db.close()
      const read = Effect.flatMap(Effect.service(Store), (store) => store.transaction((tx) => tx.getNode(accountId, nodeId)))
      const error = yield* Effect.flip(Effect.provide(read, sqliteStoreLayer({ filename })))
      assert.strictEqual(error.code, "store_row_invalid")
      assert.deepStrictEqual(error.details, { table: "nodes", columns: ["node_template_id"], id: nodeId })
      assert.include(error.message, "nodes")
      assert.notInclude(JSON.stringify(error), "secret-looking-value")
    })
  )
})
