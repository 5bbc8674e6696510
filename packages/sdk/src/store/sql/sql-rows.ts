/** Rows to records, shared by the SQL store's parts: JSON columns parsed, nulls made explicit. */
import type { FleetEvent } from "../../model/entities"
import { interfaceNameFor } from "../../network/network-rules"
import type { ApprovalRecord, ClusterRecord, DesiredConfigRecord, NetworkRecord, SkillRunRecord, TemplateRecord, VipRecord } from "../records"
import type { PeerEntryRow } from "../store"
import type { Row } from "./sql-driver"

export const json = (value: unknown) => JSON.stringify(value)
export const parse = <A>(text: unknown): A => JSON.parse(String(text)) as A

export const templateFrom = (row: Row, modules: ReadonlyArray<Row>): TemplateRecord =>
  ({
    id: row.id,
    account_id: row.account_id,
    name: row.name,
    created_at: row.created_at,
    modules: modules.map((m) => ({
      module_name: m.module_name,
      module_version_id: m.module_version_id ?? null,
      config: parse(m.config)
    }))
  }) as TemplateRecord

export const networkFrom = (row: Row): NetworkRecord =>
  ({
    id: row.id,
    account_id: row.account_id,
    name: row.name,
    handle: row.handle,
    interface_name: interfaceNameFor(String(row.handle)),
    overlay_prefix: row.overlay_prefix,
    overlay_ipv4_prefix: row.overlay_ipv4_prefix ?? null,
    pod_subnet_prefix: row.pod_subnet_prefix ?? null,
    listen_port: row.listen_port,
    created_at: row.created_at,
    ula_global_id: row.ula_global_id ?? null,
    subnet_index: row.subnet_index ?? null
  }) as NetworkRecord

export const clusterFrom = ({ activation_seq: _, ...row }: Row): ClusterRecord =>
  ({
    ...row,
    flavor: "k3s",
    version: row.version ?? null,
    cluster_cidr: row.cluster_cidr ?? null,
    activated_at: row.activated_at ?? null,
    warnings: parse(row.warnings)
  }) as ClusterRecord

export const vipFrom = (row: Row): VipRecord =>
  ({
    ...row,
    holder_peer_id: row.holder_peer_id ?? null,
    silent_epoch: row.silent_epoch ?? null,
    holder_since: row.holder_since ?? null,
    incident: row.incident ?? null,
    probe_reporters: row.probe_reporters === null || row.probe_reporters === undefined ? [] : parse(row.probe_reporters),
    failover_holder_peer_ids: parse(row.failover_holder_peer_ids)
  }) as VipRecord

export const approvalFrom = (row: Row): ApprovalRecord =>
  ({
    ...row,
    decided_at: row.decided_at ?? null,
    reason: row.reason ?? null,
    resolution: row.resolution == null ? null : parse(row.resolution)
  }) as ApprovalRecord

export const eventFrom = (row: Row): FleetEvent => ({ seq: Number(row.seq), type: String(row.type), at: String(row.at), data: parse(row.data) })

export const desiredFrom = (row: Row): DesiredConfigRecord =>
  ({
    instance_id: row.instance_id,
    kind: row.kind,
    key: row.config_key,
    version: row.version,
    payload: parse(row.payload),
    updated_at: row.updated_at,
    acked_version: row.acked_version ?? null,
    ack_error: row.ack_error ?? null
  }) as DesiredConfigRecord

export const peerEntryFrom = (row: Row): PeerEntryRow => ({
  peer_id: String(row.peer_id),
  version: Number(row.version),
  entry: row.entry === null || row.entry === undefined ? null : String(row.entry)
})

export const skillRunFrom = (row: Row) => ({ ...row, inputs: parse(row.inputs), state: parse(row.state) }) as SkillRunRecord

export const optional =
  <A>(f: (row: Row) => A) =>
  (row: Row | undefined): A | undefined =>
    row === undefined ? undefined : f(row)
/** Rows whose columns are the record's fields as they are. */
export const asIs = (rows: unknown) => rows as never

/** `column = @column, ...` for the defined entries of `changes`; JSON columns serialised. */
export const setClause = (changes: Record<string, unknown>, jsonColumns: ReadonlyArray<string> = []) => {
  const entries = Object.entries(changes).filter(([, value]) => value !== undefined)
  return {
    sql: entries.map(([column]) => `${column} = @${column}`).join(", "),
    values: Object.fromEntries(entries.map(([column, value]) => [column, jsonColumns.includes(column) ? json(value) : value])),
    empty: entries.length === 0
  }
}
