/**
 * The store contract in SQL, once, for every backend: each operation is statements run
 * through a `SqlDriver` (SQLite or PostgreSQL) and rows mapped to records. The SQL is the
 * common subset of both dialects (`ON CONFLICT ... DO UPDATE`, `RETURNING`, partial indexes);
 * insertion order is the `rowid` column, which SQLite has built in and the PostgreSQL schema
 * declares. One file per group of tables: inventory, network, cluster, log.
 */
import { Effect, Exit } from "effect"
import type { StoreTx } from "../store"
import type { StoreError } from "../../model/errors"
import type { SqlDriver } from "./sql-driver"
import { clusterTx } from "./sql-cluster-tx"
import { inventoryTx } from "./sql-inventory-tx"
import { logTx } from "./sql-log-tx"
import { networkTx } from "./sql-network-tx"

/**
 * A savepoint around `body`: released if it succeeds, rolled back to (and released) if it fails.
 * `end` releases it after a success; a backend whose writes fail late (PostgreSQL's pipelined
 * ones) makes it wait for them, and a failure there is the body's too.
 */
export const inSavepoint =
  (
    db: SqlDriver,
    { rollBack = db.run("ROLLBACK TO SAVEPOINT fp_body"), end = db.write("RELEASE SAVEPOINT fp_body") }: { readonly rollBack?: Effect.Effect<unknown, StoreError>; readonly end?: Effect.Effect<unknown, StoreError> } = {}
  ) =>
  <A, E, R>(body: Effect.Effect<A, E, R>): Effect.Effect<A, E | StoreError, R> =>
    Effect.gen(function* () {
      yield* db.write("SAVEPOINT fp_body")
      const exit = yield* Effect.exit(Effect.tap(body, () => end))
      if (Exit.isSuccess(exit)) return exit.value
      yield* rollBack
      yield* db.write("RELEASE SAVEPOINT fp_body")
      return yield* exit
    })

export const makeSqlStoreTx = (db: SqlDriver): StoreTx => ({ ...inventoryTx(db), ...networkTx(db), ...clusterTx(db), ...logTx(db), inSavepoint: inSavepoint(db) })
