/**
 * Rows to records, shared by the SQL store's parts. Every row read is decoded with its record's
 * Schema (store/records.ts): JSON columns parsed first (with JSON.parse: Schema's own JSON
 * decoding costs ten times more per row, and peer sets are read by the thousand), then the
 * whole row checked, so a row that does not match is a typed StoreError, never a value that
 * only claims its type. Columns a record does not name (PostgreSQL's `rowid`) are dropped.
 */
import { Effect, Result, Schema, SchemaIssue } from "effect"

const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()
import { storeError, type StoreError } from "../../model/errors"
import { Account, FleetEvent } from "../../model/entities"
import { InstanceId, NetworkId } from "../../model/ids"
import { interfaceNameFor } from "../../network/network-rules"
import {
  AccountRecord,
  ApiKeyRecord,
  ApprovalRecord,
  ClusterRecord,
  ClusterSummary,
  ClusterWithoutIpFamilyRecord,
  ConfirmationRecord,
  DesiredConfigRecord,
  InstanceRecord,
  KubernetesNodeRecord,
  NetworkRecord,
  NetworkWithoutIpv4Record,
  NodeRecord,
  PeerRecord,
  SkillRunRecord,
  TemplateRecord,
  VipRecord
} from "../records"
import type { Row } from "./sql-driver"

export const json = (value: unknown) => JSON.stringify(value)
export const parse = <A>(text: unknown): A => JSON.parse(String(text)) as A

export interface RowDecoder<A> {
  readonly one: (row: Row | undefined) => Effect.Effect<A | undefined, StoreError>
  readonly all: (rows: ReadonlyArray<Row>) => Effect.Effect<Array<A>, StoreError>
}

/**
 * Decodes rows of `table` with `schema` after `prepare` (JSON columns, derived fields). The
 * error names the table and the row's id, never a value: rows hold secrets.
 */
export const rowDecoder = <S extends Schema.ConstraintDecoder<unknown>>(schema: S, table: string, prepare: (row: Row) => unknown = (row) => row): RowDecoder<S["Type"]> => {
  const decode = Schema.decodeUnknownResult(schema)
  const invalid = (row: Row, columns: ReadonlyArray<string>) =>
    storeError(
      "store_row_invalid",
      `a row of ${table} in the database does not have the shape this build reads (${columns.join(", ") || "a JSON column"}); was the database changed by hand or by another program? Restore it from a backup`,
      { table, columns, ...(typeof row.id === "string" ? { id: row.id } : {}) }
    )
  const decodeOne = (row: Row): Result.Result<S["Type"], StoreError> => {
    let prepared: unknown
    try {
      prepared = prepare(row)
    } catch {
      return Result.fail(invalid(row, [])) // a JSON column that does not parse
    }
    const decoded = decode(prepared)
    if (Result.isSuccess(decoded)) return Result.succeed(decoded.success)
    // Which columns, never their values.
    const columns = [...new Set(formatIssue(decoded.failure.issue).issues.map((issue) => String(issue.path?.[0] ?? "")))].filter((c) => c !== "")
    return Result.fail(invalid(row, columns))
  }
  return {
    one: (row) => {
      if (row === undefined) return Effect.succeed(undefined)
      const decoded = decodeOne(row)
      return Result.isSuccess(decoded) ? Effect.succeed(decoded.success) : Effect.fail(decoded.failure)
    },
    all: (rows) => {
      const out: Array<S["Type"]> = []
      for (const row of rows) {
        const decoded = decodeOne(row)
        if (Result.isFailure(decoded)) return Effect.fail(decoded.failure)
        out.push(decoded.success)
      }
      return Effect.succeed(out)
    }
  }
}

/**
 * Parses JSON columns in place: every row is a fresh object of the driver's, decoded once, and
 * copying it first cost more than the rest of its decode (listings decode rows on every request).
 */
const withJson =
  (...columns: ReadonlyArray<string>) =>
  (row: Row): Row => {
    for (const column of columns) row[column] = row[column] === null || row[column] === undefined ? null : parse(row[column])
    return row
  }

export const accounts = rowDecoder(AccountRecord, "accounts")
export const accountSummaries = rowDecoder(Account, "accounts")
export const nodes = rowDecoder(NodeRecord, "nodes")
export const instances = rowDecoder(InstanceRecord, "instances")
export const apiKeys = rowDecoder(ApiKeyRecord, "api_keys")
export const kubernetesNodes = rowDecoder(KubernetesNodeRecord, "kubernetes_nodes")
export const peers = rowDecoder(PeerRecord, "peers")
export const peersWithHostname = rowDecoder(Schema.Struct({ ...PeerRecord.fields, hostname: Schema.String }), "peers")
export const confirmations = rowDecoder(ConfirmationRecord, "confirmations")

/** A template row with its module assignment rows in `modules` (the store reads them apart or joined). */
export const templates = rowDecoder(TemplateRecord, "templates", (row) => ({
  ...row,
  modules: (row.modules as ReadonlyArray<Row>).map((m) => ({ module_name: m.module_name, module_version_id: m.module_version_id ?? null, config: parse(m.config) }))
}))

const networkFields = (row: Row) => ({ ...row, interface_name: interfaceNameFor(String(row.handle)) })
export const networks = rowDecoder(NetworkRecord, "networks", networkFields)
export const networksWithoutIpv4 = rowDecoder(NetworkWithoutIpv4Record, "networks", networkFields)
export const podPrefixNeighbours = rowDecoder(
  Schema.Struct({ id: NetworkId, name: Schema.String, pod_subnet_prefix: Schema.String, family: Schema.Literals([4, 6]), startKey: Schema.String, endKey: Schema.String }),
  "networks",
  (row) => ({ id: row.id, name: row.name, pod_subnet_prefix: row.pod_subnet_prefix, family: Number(row.pod_family), startKey: row.pod_start_key, endKey: row.pod_end_key })
)

const clusterFields = (row: Row) => {
  const out = withJson("warnings")(row)
  out.flavor = "k3s"
  return out
}
export const clusters = rowDecoder(ClusterRecord, "clusters", clusterFields)
export const clusterSummaries = rowDecoder(ClusterSummary, "clusters", clusterFields)
export const clustersWithoutIpFamily = rowDecoder(ClusterWithoutIpFamilyRecord, "clusters", clusterFields)

const vipFields = (row: Row) => {
  const out = withJson("failover_holder_peer_ids", "probe_reporters")(row)
  // Rows from before R26 (migration 7) have no reporters recorded.
  if (out.probe_reporters === null) out.probe_reporters = []
  return out
}
export const vips = rowDecoder(VipRecord, "vips", vipFields)
export const heldVips = rowDecoder(Schema.Struct({ ...VipRecord.fields, holder_instance_id: InstanceId }), "vips", vipFields)

export const approvals = rowDecoder(ApprovalRecord, "approvals", withJson("resolution"))
export const events = rowDecoder(FleetEvent, "events", withJson("data"))
// Read by the thousand when a peer set changes: one object per row, built directly.
export const desiredConfigs = rowDecoder(DesiredConfigRecord, "desired_configs", (row) => ({
  instance_id: row.instance_id,
  kind: row.kind,
  key: row.config_key,
  version: row.version,
  payload: parse(row.payload),
  updated_at: row.updated_at,
  acked_version: row.acked_version,
  ack_error: row.ack_error
}))
/**
 * What a network-wide write of one payload reads back per changed row (`putDesiredConfigForNetworkPeers`):
 * the rest of the record is the same for every row, so it is not read 10,000 times.
 */
export const changedConfigVersions = rowDecoder(
  Schema.Struct({ instance_id: InstanceId, version: DesiredConfigRecord.fields.version, acked_version: DesiredConfigRecord.fields.acked_version }),
  "desired_configs"
)
export const skillRuns = rowDecoder(SkillRunRecord, "skill_runs", withJson("inputs", "state"))

export const peerEntries = rowDecoder(Schema.Struct({ peer_id: Schema.String, version: Schema.Number, entry: Schema.NullOr(Schema.String) }), "network_peer_entries")

/** `column = @column, ...` for the defined entries of `changes`; JSON columns serialised. */
export const setClause = (changes: Record<string, unknown>, jsonColumns: ReadonlyArray<string> = []) => {
  const entries = Object.entries(changes).filter(([, value]) => value !== undefined)
  return {
    sql: entries.map(([column]) => `${column} = @${column}`).join(", "),
    values: Object.fromEntries(entries.map(([column, value]) => [column, jsonColumns.includes(column) ? json(value) : value])),
    empty: entries.length === 0
  }
}
