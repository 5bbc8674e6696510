/**
 * The embedded store: SQLite through better-sqlite3, one file, zero setup.
 *
 * Settings, chosen for crash safety: WAL journal (readers never block the writer, a crash
 * mid-write leaves the last committed state), `synchronous = NORMAL` by default (a killed
 * process loses nothing it committed; a power cut may lose the last few commits but never
 * corrupts the file; pass `synchronous: "FULL"` to fsync every commit), foreign keys on.
 * better-sqlite3 is synchronous, so a transaction holds the one connection; a semaphore
 * makes sure no other fiber's statements land inside it.
 */
import { chmodSync, closeSync, existsSync, openSync } from "node:fs"
import Database from "better-sqlite3"
import { Effect, Exit, Layer, Semaphore } from "effect"
import { storeError, type StoreError } from "../../model/errors"
import type { Params, Row, SqlDriver } from "../sql/sql-driver"
import { makeSqlStoreTx } from "../sql/sql-store-tx"
import { Store, type StoreTx, type TransactionOptions } from "../store"
import { migrations } from "./migrations"
import { migrationError, runMigrations, type MigrationConnection } from "../migrator"

export interface SqliteStoreOptions {
  /** A file path, or `":memory:"` for tests. */
  readonly filename: string
  readonly synchronous?: "NORMAL" | "FULL"
}

const toStoreError = (cause: unknown): StoreError =>
  storeError(
    "store_failed",
    `the database failed: ${cause instanceof Error ? cause.message : String(cause)}; nothing was changed. Check disk space and file permissions, then retry`,
    {}
  )

/** The migrator's view of a SQLite connection (synchronous underneath). */
const migrationConnection = (db: Database.Database): MigrationConnection => ({
  exec: async (sql) => void db.exec(sql),
  appliedVersions: async () => db.prepare("SELECT version FROM schema_migrations").pluck().all() as Array<number>,
  record: async (migration, appliedAt) =>
    void db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(migration.version, migration.name, appliedAt)
})

const readOnlyViolation = (sql: string) => new Error(`a read-only transaction may not write (${sql.slice(0, 40)}…)`)

/**
 * better-sqlite3 runs `?` and `@name` parameters as they are; statements are compiled once per
 * text. The read-only view (for `Store.read`) refuses any statement SQLite says may write,
 * before it runs, as PostgreSQL's READ ONLY does. (Not `PRAGMA query_only`: flipping a pragma
 * expires every compiled statement, so each read would compile its SQL again.)
 */
const sqliteDrivers = (db: Database.Database): { readonly readWrite: SqlDriver; readonly readOnly: SqlDriver } => {
  const cache = new Map<string, Database.Statement>()
  const stmt = (sql: string) => {
    let prepared = cache.get(sql)
    if (prepared === undefined) {
      prepared = db.prepare(sql)
      cache.set(sql, prepared)
    }
    return prepared
  }
  const readable = (sql: string) => {
    const prepared = stmt(sql)
    if (!prepared.readonly) throw readOnlyViolation(sql)
    return prepared
  }
  const bind = (params: Params | undefined): Array<unknown> => (params === undefined ? [] : Array.isArray(params) ? params : [params])
  const refused = (sql: string) => Effect.fail(toStoreError(readOnlyViolation(sql)))
  return {
    readWrite: {
      one: (sql, params) => Effect.try({ try: () => stmt(sql).get(...bind(params)) as Row | undefined, catch: toStoreError }),
      all: (sql, params) => Effect.try({ try: () => stmt(sql).all(...bind(params)) as Array<Row>, catch: toStoreError }),
      run: (sql, params) => Effect.try({ try: () => stmt(sql).run(...bind(params)).changes, catch: toStoreError }),
      write: (sql, params) => Effect.try({ try: () => void stmt(sql).run(...bind(params)), catch: toStoreError })
    },
    readOnly: {
      one: (sql, params) => Effect.try({ try: () => readable(sql).get(...bind(params)) as Row | undefined, catch: toStoreError }),
      all: (sql, params) => Effect.try({ try: () => readable(sql).all(...bind(params)) as Array<Row>, catch: toStoreError }),
      run: refused,
      write: refused
    }
  }
}

/**
 * The file holds CA keys and join tokens: owner-only (0600), created so before SQLite opens it
 * (SQLite gives its -wal and -shm files the database file's mode), and tightened when an
 * older database was left readable.
 */
const restrictFileModes = (filename: string) => {
  if (filename === ":memory:" || filename === "" || filename.startsWith("file:")) return
  closeSync(openSync(filename, "a", 0o600))
  for (const file of [filename, `${filename}-wal`, `${filename}-shm`]) if (existsSync(file)) chmodSync(file, 0o600)
}

/** Opens (creating if needed) and migrates a SQLite store. */
export const openSqliteStore = (options: SqliteStoreOptions) =>
  Effect.gen(function* () {
    const db = yield* Effect.try({
      try: () => {
        restrictFileModes(options.filename)
        const opened = new Database(options.filename)
        opened.pragma("journal_mode = WAL")
        restrictFileModes(options.filename)
        opened.pragma(`synchronous = ${options.synchronous ?? "NORMAL"}`)
        opened.pragma("foreign_keys = ON")
        opened.pragma("busy_timeout = 5000")
        return opened
      },
      catch: (cause) =>
        storeError(
          "store_open_failed",
          `could not open the database ${options.filename}: ${cause instanceof Error ? cause.message : String(cause)}; check the path and its permissions`,
          { filename: options.filename }
        )
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => db.close()))
    yield* Effect.tryPromise({ try: () => runMigrations(migrationConnection(db), migrations), catch: migrationError(options.filename) })
    const drivers = sqliteDrivers(db)
    const writeTx: StoreTx = makeSqlStoreTx(drivers.readWrite)
    const readTx: StoreTx = makeSqlStoreTx(drivers.readOnly)
    const lock = Semaphore.makeUnsafe(1)
    // Prepared once: `exec` parses its SQL on every call (~8% of an admin list's CPU in a profile).
    const beginWrite = db.prepare("BEGIN IMMEDIATE")
    // A read takes no write lock: deferred, it holds a snapshot from its first read.
    const beginRead = db.prepare("BEGIN")
    const commit = db.prepare("COMMIT")
    const rollback = db.prepare("ROLLBACK")

    const inTransaction =
      (begin: Database.Statement, tx: StoreTx) =>
      // Gates (`TransactionOptions`) need nothing here: transactions already run one at a time.
      <A, E, R>(body: (tx: StoreTx) => Effect.Effect<A, E, R>, _options?: TransactionOptions): Effect.Effect<A, E | StoreError, R> =>
        lock.withPermits(1)(
          Effect.uninterruptibleMask((restore) =>
            Effect.gen(function* () {
              yield* Effect.try({ try: () => begin.run(), catch: toStoreError })
              const exit = yield* Effect.exit(restore(body(tx)))
              if (Exit.isSuccess(exit)) {
                const committed = yield* Effect.exit(Effect.try({ try: () => commit.run(), catch: toStoreError }))
                if (Exit.isFailure(committed)) {
                  if (db.inTransaction) rollback.run()
                  return yield* Effect.failCause(committed.cause)
                }
              } else if (db.inTransaction) {
                rollback.run()
              }
              return yield* exit
            })
          )
        )

    // Moves when another connection (another process) commits; unchanged by this one's own commits.
    const dataVersion = db.prepare("PRAGMA data_version").pluck()
    const externalWrites = () => {
      try {
        return dataVersion.get() as number
      } catch {
        return Number.NaN // never equal to itself: nothing that depends on it is trusted
      }
    }

    const integrityCheck = Effect.try({
      try: () => String(db.pragma("integrity_check", { simple: true })),
      catch: toStoreError
    })

    return Store.of({ transaction: inTransaction(beginWrite, writeTx), read: inTransaction(beginRead, readTx), externalWrites, integrityCheck })
  })

/** The SQLite store as a layer; the database closes when the layer's scope ends. */
export const sqliteStoreLayer = (options: SqliteStoreOptions) => Layer.effect(Store, openSqliteStore(options))

