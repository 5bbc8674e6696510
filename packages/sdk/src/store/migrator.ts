/**
 * The one migrator for both dialects. Each dialect has its own file of migrations
 * (sqlite/migrations.ts, postgres/migrations.ts) with the same versions and names; this applies
 * the pending ones in order, each in its own transaction together with its row in
 * `schema_migrations`, and refuses a database that a newer Fleetplane has migrated (running
 * older code on a newer schema could write rows the newer code misreads).
 */
import { storeError, type StoreError } from "../model/errors"
export interface Migration {
  readonly version: number
  readonly name: string
  readonly sql: string
}

/** What the migrator needs of one connection to the database (held for the whole run). */
export interface MigrationConnection {
  /** Runs one or more statements that return nothing. */
  readonly exec: (sql: string) => Promise<void>
  readonly appliedVersions: () => Promise<ReadonlyArray<number>>
  readonly record: (migration: Migration, appliedAt: string) => Promise<void>
}

/** The database has versions this build does not know: a newer Fleetplane migrated it. */
export class NewerSchemaError extends Error {
  constructor(readonly unknownVersions: ReadonlyArray<number>) {
    super(
      `the database was migrated by a newer Fleetplane (schema versions ${unknownVersions.join(", ")} are unknown to this build); run that version or newer, or restore the backup taken before the upgrade`
    )
  }
}

/** A migration failed: nothing of it was applied; the ones before it stay. */
export class MigrationFailedError extends Error {
  constructor(
    readonly migration: Migration,
    cause: unknown
  ) {
    super(`schema migration ${migration.version} (${migration.name}) failed and was rolled back: ${cause instanceof Error ? cause.message : String(cause)}`)
  }
}

export const SCHEMA_MIGRATIONS_DDL = "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"

/** Versions strictly ascending: a list that is not is a programming error, caught before any change. */
const checkOrdered = (migrations: ReadonlyArray<Migration>) => {
  migrations.forEach((migration, i) => {
    if (i > 0 && migration.version <= migrations[i - 1]!.version) {
      throw new Error(`migration ${migration.version} (${migration.name}) is out of order: versions must ascend`)
    }
  })
}

/** Applies the pending migrations; returns the versions it applied (none on an up-to-date database). */
export const runMigrations = async (connection: MigrationConnection, migrations: ReadonlyArray<Migration>): Promise<ReadonlyArray<number>> => {
  checkOrdered(migrations)
  await connection.exec(SCHEMA_MIGRATIONS_DDL)
  const applied = new Set(await connection.appliedVersions())
  const known = new Set(migrations.map((m) => m.version))
  const unknown = [...applied].filter((version) => !known.has(version)).sort((a, b) => a - b)
  if (unknown.length > 0) throw new NewerSchemaError(unknown)
  const done: Array<number> = []
  for (const migration of migrations) {
    if (applied.has(migration.version)) continue
    await connection.exec("BEGIN")
    try {
      await connection.exec(migration.sql)
      await connection.record(migration, new Date().toISOString())
      await connection.exec("COMMIT")
    } catch (cause) {
      await connection.exec("ROLLBACK").catch(() => undefined)
      throw new MigrationFailedError(migration, cause)
    }
    done.push(migration.version)
  }
  return done
}

/** A failed migration run as the store's typed error, with a stable code per cause. */
export const migrationError =
  (database: string, describe: (cause: unknown) => string = (cause) => (cause instanceof Error ? cause.message : String(cause))) =>
  (cause: unknown): StoreError =>
    cause instanceof NewerSchemaError
      ? storeError("store_schema_newer", cause.message, { database, unknown_versions: cause.unknownVersions })
      : cause instanceof MigrationFailedError
        ? storeError("store_migration_failed", `${cause.message}; fix the cause and start again: the migrations before it stay applied`, {
            database,
            version: cause.migration.version,
            name: cause.migration.name
          })
        : storeError("store_open_failed", `could not prepare the database ${database}: ${describe(cause)}`, { database })
