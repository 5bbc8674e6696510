/**
 * What the store keeps beyond the public entities: the owning account on every row and
 * the secrets that must never reach a result, a log or an event. Each record is a Schema: the
 * store decodes every row it reads with it (sql/sql-rows.ts), so a row that does not match is
 * a typed StoreError, not a value that only claims its type.
 */
import { Schema } from "effect"
import { ConfigKind } from "@fleetplane/agent-protocol"
import { ApiKeyRole } from "../accounts/roles"
import {
  Account,
  Approval,
  KubernetesCluster,
  KubernetesNode,
  Network,
  Node,
  NodeInstance,
  Peer,
  SkillRunStatus,
  Template,
  VirtualIp
} from "../model/entities"
import { AccountId, InstanceId } from "../model/ids"

const owned = { account_id: AccountId }
const Timestamp = Schema.String

export const AccountRecord = Schema.Struct({ ...Account.fields, ula_global_id: Schema.String })
export type AccountRecord = typeof AccountRecord.Type

export const TemplateRecord = Schema.Struct({ ...Template.fields, ...owned })
export type TemplateRecord = typeof TemplateRecord.Type
export const NodeRecord = Schema.Struct({ ...Node.fields, ...owned })
export type NodeRecord = typeof NodeRecord.Type
export const InstanceRecord = Schema.Struct({
  ...NodeInstance.fields,
  ...owned,
  credential_hash: Schema.String,
  /** After a rotation, the credential the agent had: accepted until the agent confirms the new one or the grace ends. */
  previous_credential_hash: Schema.optionalKey(Schema.NullOr(Schema.String)),
  previous_credential_valid_until: Schema.optionalKey(Schema.NullOr(Timestamp))
})
export type InstanceRecord = typeof InstanceRecord.Type
export const NetworkRecord = Schema.Struct({
  ...Network.fields,
  ...owned,
  /** Set when the overlay /64 was allocated from the account's ULA /48 (not chosen by the operator). */
  ula_global_id: Schema.NullOr(Schema.String),
  subnet_index: Schema.NullOr(Schema.Int)
})
export type NetworkRecord = typeof NetworkRecord.Type
/** A network from before R21 (migration 3) that has no IPv4 overlay range yet: only the backfill reads these. */
export const NetworkWithoutIpv4Record = Schema.Struct({ ...NetworkRecord.fields, overlay_ipv4_prefix: Schema.Null })
export type NetworkWithoutIpv4Record = typeof NetworkWithoutIpv4Record.Type
export const PeerRecord = Schema.Struct({ ...Peer.fields, ...owned })
export type PeerRecord = typeof PeerRecord.Type

/**
 * R26: `holder_silent` — the holder stopped heartbeating and the peers do not say the VIP answers
 * (the failover skill ran); `gateway_unreachable` — silent, but most reporting peers still reach
 * the VIP (no failover); `vip_unreachable` — heartbeating, but most reporting peers have not
 * reached the VIP for the threshold (the failover skill ran).
 */
export const VipIncident = Schema.Literals(["holder_silent", "gateway_unreachable", "vip_unreachable"])
export type VipIncident = typeof VipIncident.Type
export const VipRecord = Schema.Struct({
  ...VirtualIp.fields,
  ...owned,
  /** The epoch at which the holder's silence was last reported (one event per incident, R15). */
  silent_epoch: Schema.NullOr(Schema.Int),
  /** When the current holder got the VIP (ISO 8601); null on rows from before it was recorded. */
  holder_since: Schema.NullOr(Timestamp),
  /**
   * What the incident at `silent_epoch` is, or the last one was (R26); null on rows from before
   * it was recorded, which were all `holder_silent`, and after a promotion.
   */
  incident: Schema.NullOr(VipIncident),
  /** R26: the instances that probe the VIP (the sample last published in `vip_routes`), by instance id. */
  probe_reporters: Schema.Array(InstanceId)
})
export type VipRecord = typeof VipRecord.Type

export const ClusterRecord = Schema.Struct({
  ...KubernetesCluster.fields,
  ...owned,
  bootstrap_instance_id: InstanceId,
  ca_cert_pem: Schema.String,
  ca_key_pem: Schema.String,
  token_secret: Schema.String,
  token_version: Schema.Int,
  /** The admin client certificate pushed to control-plane nodes in their kubeconfig. */
  admin_cert_pem: Schema.String,
  admin_key_pem: Schema.String
})
export type ClusterRecord = typeof ClusterRecord.Type
/** A cluster as lists read it: everything but its key material and certificates, which never leave the store on a list. */
export const ClusterSummary = ClusterRecord.mapFields(({ ca_cert_pem: _a, ca_key_pem: _b, token_secret: _c, admin_cert_pem: _d, admin_key_pem: _e, ...rest }) => rest)
export type ClusterSummary = typeof ClusterSummary.Type
/** A cluster from before R21 (migration 3) without its IP family yet: only the backfill reads these. */
export const ClusterWithoutIpFamilyRecord = Schema.Struct({ ...ClusterRecord.fields, ip_family: Schema.Null })
export type ClusterWithoutIpFamilyRecord = typeof ClusterWithoutIpFamilyRecord.Type
export const KubernetesNodeRecord = Schema.Struct({ ...KubernetesNode.fields, ...owned })
export type KubernetesNodeRecord = typeof KubernetesNodeRecord.Type
export const ApprovalRecord = Schema.Struct({ ...Approval.fields, ...owned })
export type ApprovalRecord = typeof ApprovalRecord.Type

/** The desired version of one config for one instance, and what the agent acknowledged. */
export const DesiredConfigRecord = Schema.Struct({
  instance_id: InstanceId,
  kind: ConfigKind,
  key: Schema.String,
  version: Schema.Int,
  payload: Schema.Unknown,
  updated_at: Timestamp,
  acked_version: Schema.NullOr(Schema.Int),
  ack_error: Schema.NullOr(Schema.String)
})
export type DesiredConfigRecord = typeof DesiredConfigRecord.Type

export const ConfirmationRecord = Schema.Struct({
  token_hash: Schema.String,
  account_id: AccountId,
  action: Schema.String,
  input_hash: Schema.String,
  expires_at: Schema.Number
})
export type ConfirmationRecord = typeof ConfirmationRecord.Type

export const SkillRunRecord = Schema.Struct({
  ...owned,
  id: Schema.String,
  skill: Schema.String,
  status: SkillRunStatus,
  inputs: Schema.Unknown,
  state: Schema.Unknown,
  created_at: Timestamp,
  updated_at: Timestamp
})
export type SkillRunRecord = typeof SkillRunRecord.Type

export const ApiKeyRecord = Schema.Struct({
  ...owned,
  id: Schema.String,
  name: Schema.String,
  role: ApiKeyRole,
  key_hash: Schema.String,
  created_at: Timestamp,
  revoked_at: Schema.NullOr(Timestamp)
})
export type ApiKeyRecord = typeof ApiKeyRecord.Type
