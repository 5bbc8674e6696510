/**
 * The PostgreSQL schema: SQLite's migrations (src/store/sqlite/migrations.ts), translated —
 * one schema, written once. The translation is mechanical: a `rowid BIGSERIAL` column where
 * SQLite's built-in rowid orders rows, `BIGSERIAL` for the event sequence, `BIGINT` where values
 * pass 2^31 (host indexes, expiry times in ms), byte-order collation for the pod-range keys.
 * Then what only several gateways sharing one database need (agent liveness).
 */
import { migrations, type Migration } from "../sqlite/migrations"

/** Tables whose rows are listed in insertion order (`ORDER BY ..., rowid`). */
const INSERTION_ORDERED = ["nodes", "instances", "networks", "peers", "clusters", "kubernetes_nodes", "approvals", "skill_runs"]

const RULES: ReadonlyArray<readonly [string, string]> = [
  ["seq INTEGER PRIMARY KEY AUTOINCREMENT", "seq BIGSERIAL PRIMARY KEY"],
  ["host_index INTEGER NOT NULL", "host_index BIGINT NOT NULL"],
  ["expires_at INTEGER NOT NULL", "expires_at BIGINT NOT NULL"],
  ["pod_start_key TEXT,", 'pod_start_key TEXT COLLATE "C",'],
  ["pod_end_key TEXT,", 'pod_end_key TEXT COLLATE "C",'],
  ...INSERTION_ORDERED.map((table) => [`CREATE TABLE ${table} (\n`, `CREATE TABLE ${table} (\n  rowid BIGSERIAL NOT NULL,\n`] as const)
]

export const toPostgresDialect = (sql: string) => RULES.reduce((text, [from, to]) => text.replaceAll(from, to), sql)

export const postgresMigrations: ReadonlyArray<Migration> = [
  ...migrations.map((migration) => ({ ...migration, sql: toPostgresDialect(migration.sql) })),
  {
    version: 1_000,
    name: "shared agent liveness",
    sql: `
-- What each gateway last saw of the agents connected to it, shared so that whichever gateway
-- runs the silence sensor or scores failover candidates sees every agent (see shared-state.ts).
CREATE TABLE agent_liveness (
  instance_id TEXT PRIMARY KEY,
  gateway TEXT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  connected BOOLEAN NOT NULL,
  k3s TEXT,
  wireguard TEXT NOT NULL,
  load TEXT
);
CREATE INDEX agent_liveness_seen ON agent_liveness (last_seen_at);
`
  },
  {
    version: 1_001,
    name: "shared VIP probe reports",
    sql: `
-- R26: a reporter's VIP probe observations travel with its liveness, so the leader's sensor
-- judges with every reporter's view whichever gateway holds its session.
ALTER TABLE agent_liveness ADD COLUMN vip_probes TEXT;
`
  }
]
