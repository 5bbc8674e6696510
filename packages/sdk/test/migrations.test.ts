/**
 * The migrator and the two dialects' migration files: they pair up version for version, give
 * the same tables and columns, refuse a database a newer build migrated, and roll a failed
 * migration back alone.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Database from "better-sqlite3"
import { Effect, Exit } from "effect"
import pg from "pg"
import { describe, expect, it } from "vitest"
import { migrations as sqliteMigrations } from "../src/store/sqlite/migrations"
import { postgresMigrations } from "../src/store/postgres/migrations"
import { MigrationFailedError, NewerSchemaError, runMigrations, type Migration, type MigrationConnection } from "../src/store/migrator"
import { openPostgresStore, openSqliteStore } from "../src/index"
import { freshDatabase } from "./support/postgres"

const sqliteConnection = (db: Database.Database): MigrationConnection => ({
  exec: async (sql) => void db.exec(sql),
  appliedVersions: async () => db.prepare("SELECT version FROM schema_migrations").pluck().all() as Array<number>,
  record: async (m, at) => void db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(m.version, m.name, at)
})

const tables = (db: Database.Database) => (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as Array<string>).filter((t) => !t.startsWith("sqlite_"))

/** The StoreError's code from a failed open. */
const failureCode = (exit: Exit.Exit<unknown, unknown>) => {
  const text = JSON.stringify(exit)
  return text.match(/"code":"(store_[a-z_]+)"/)?.[1]
}

describe("schema migrations", () => {
  it("each dialect has its own file, and they pair up: the same versions and names, PostgreSQL's own from 1,000 on", () => {
    const shared = postgresMigrations.filter((m) => m.version < 1_000)
    expect(shared.map((m) => [m.version, m.name])).toEqual(sqliteMigrations.map((m) => [m.version, m.name]))
    expect(sqliteMigrations.every((m) => m.version < 1_000)).toBe(true)
    // Written for each dialect, not translated at run time: PostgreSQL's has its own types.
    expect(postgresMigrations[0]!.sql).toContain("seq BIGSERIAL PRIMARY KEY")
    expect(sqliteMigrations[0]!.sql).toContain("seq INTEGER PRIMARY KEY AUTOINCREMENT")
  })

  it("give the same tables with the same columns on SQLite and PostgreSQL", async () => {
    const db = new Database(":memory:")
    await runMigrations(sqliteConnection(db), sqliteMigrations)
    const sqlite = new Map(tables(db).map((t) => [t, (db.prepare(`SELECT name FROM pragma_table_info('${t}') ORDER BY name`).pluck().all() as Array<string>).join(",")]))
    db.close()
    const url = await freshDatabase()
    await Effect.runPromise(Effect.scoped(openPostgresStore({ url })))
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      const rows = (await client.query("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, column_name")).rows as Array<{ table_name: string; column_name: string }>
      const postgres = new Map<string, Array<string>>()
      // PostgreSQL's explicit rowid stands for SQLite's built-in one.
      for (const row of rows) if (row.column_name !== "rowid") postgres.set(row.table_name, [...(postgres.get(row.table_name) ?? []), row.column_name])
      const pgOnly = new Set(postgresMigrations.filter((m) => m.version >= 1_000).flatMap((m) => [...m.sql.matchAll(/CREATE TABLE (\w+)/g)].map((x) => x[1]!)))
      expect(new Map([...postgres].filter(([t]) => !pgOnly.has(t)).map(([t, columns]) => [t, columns.join(",")]))).toEqual(sqlite)
    } finally {
      await client.end()
    }
  })

  it("apply only what is pending, each migration with its row; a failed one is rolled back alone and applies once fixed", async () => {
    const db = new Database(":memory:")
    const first: Migration = { version: 1, name: "a", sql: "CREATE TABLE a (x TEXT);" }
    const broken: Migration = { version: 2, name: "b", sql: "CREATE TABLE b (x TEXT); INSERT INTO missing VALUES (1);" }
    const error = await runMigrations(sqliteConnection(db), [first, broken]).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(MigrationFailedError)
    expect((error as MigrationFailedError).message).toContain("schema migration 2 (b) failed and was rolled back")
    expect(tables(db)).toEqual(["a", "schema_migrations"])
    const fixed: Migration = { version: 2, name: "b", sql: "CREATE TABLE b (x TEXT);" }
    expect(await runMigrations(sqliteConnection(db), [first, fixed])).toEqual([2])
    expect(await runMigrations(sqliteConnection(db), [first, fixed])).toEqual([])
    expect(db.prepare("SELECT version, name FROM schema_migrations ORDER BY version").all()).toEqual([
      { version: 1, name: "a" },
      { version: 2, name: "b" }
    ])
    // A list out of order is a programming error, refused before anything runs.
    await expect(runMigrations(sqliteConnection(db), [fixed, first])).rejects.toThrow("out of order")
    db.close()
  })

  it("a SQLite file a newer build migrated is refused with store_schema_newer, and left as it was", async () => {
    const filename = join(mkdtempSync(join(tmpdir(), "fleetplane-migrate-")), "fleet.db")
    await Effect.runPromise(Effect.scoped(openSqliteStore({ filename })))
    const db = new Database(filename)
    db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'from the future', 'x')").run()
    db.close()
    const exit = await Effect.runPromiseExit(Effect.scoped(openSqliteStore({ filename })))
    expect(failureCode(exit)).toBe("store_schema_newer")
    expect(JSON.stringify(exit)).toContain("schema versions 99 are unknown to this build")
    const after = new Database(filename)
    expect(after.prepare("SELECT count(*) FROM schema_migrations").pluck().get()).toBe(sqliteMigrations.length + 1)
    after.close()
    expect(new NewerSchemaError([99]).message).toContain("restore the backup")
  })

  it("a PostgreSQL database a newer build migrated is refused the same way; the error names the database, never its password", async () => {
    const url = await freshDatabase()
    await Effect.runPromise(Effect.scoped(openPostgresStore({ url })))
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    await client.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (5000, 'from the future', 'x')")
    await client.end()
    const withPassword = new URL(url)
    withPassword.password = "s3cret-pw"
    const exit = await Effect.runPromiseExit(Effect.scoped(openPostgresStore({ url: url })))
    expect(failureCode(exit)).toBe("store_schema_newer")
    expect(JSON.stringify(exit)).toContain(new URL(url).pathname)
    const refused = await Effect.runPromiseExit(Effect.scoped(openPostgresStore({ url: withPassword.toString() })))
    expect(JSON.stringify(refused)).not.toContain("s3cret-pw")
  })
})
