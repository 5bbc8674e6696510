/**
 * The store contract in SQL, once, for every backend: each operation is statements run
 * through a `SqlDriver` (SQLite or PostgreSQL) and rows mapped to records. The SQL is the
 * common subset of both dialects (`ON CONFLICT ... DO UPDATE`, `RETURNING`, partial indexes);
 * insertion order is the `rowid` column, which SQLite has built in and the PostgreSQL schema
 * declares. One file per group of tables: inventory, network, cluster, log.
 */
import type { StoreTx } from "../store"
import type { SqlDriver } from "./sql-driver"
import { clusterTx } from "./sql-cluster-tx"
import { inventoryTx } from "./sql-inventory-tx"
import { logTx } from "./sql-log-tx"
import { networkTx } from "./sql-network-tx"

export const makeSqlStoreTx = (db: SqlDriver): StoreTx => ({ ...inventoryTx(db), ...networkTx(db), ...clusterTx(db), ...logTx(db) })
