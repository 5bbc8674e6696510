/**
 * The domain model of SPEC §3. Field names are snake_case, as in the runbook's results,
 * so an entity is also what actions return. Secrets (credential hashes, CA keys, token
 * secrets) live only in the store's rows, never on these types.
 */
import { Schema } from "effect"
import { ClusterRole } from "@fleetplane/agent-protocol"
import {
  AccountId,
  ApprovalId,
  ClusterId,
  InstanceId,
  KubernetesNodeId,
  NetworkId,
  NodeId,
  PeerId,
  TemplateId,
  VipId
} from "./ids"

const Timestamp = Schema.String // ISO-8601, UTC

export const Account = Schema.Struct({ id: AccountId, name: Schema.String, created_at: Timestamp })
export type Account = typeof Account.Type

export const ModuleName = Schema.Literals(["k3s-server", "k3s-agent"])
export type ModuleName = typeof ModuleName.Type

/** A cluster name: what kubeconfig contexts are called (`kubectl config use-context k3s-prod`). */
export const ClusterName = Schema.String.check(Schema.isPattern(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/))

export const ModuleConfig = Schema.Struct({
  target_cluster_id: Schema.optionalKey(Schema.NullOr(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(128)))),
  /** k3s-server without a target: the name of the cluster it creates (default: the node's hostname). */
  cluster_name: Schema.optionalKey(ClusterName),
  /** `automatic` or `require_approval` (default) for the VIP of a cluster this server bootstraps. */
  vip_policy: Schema.optionalKey(Schema.Literals(["automatic", "require_approval"])),
  cni_plugin: Schema.optionalKey(Schema.Literals(["flannel", "ovn-kubernetes"])),
  k3s_version: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64)))
})
export type ModuleConfig = typeof ModuleConfig.Type

export const ModuleAssignment = Schema.Struct({
  module_name: ModuleName,
  module_version_id: Schema.NullOr(Schema.String),
  config: ModuleConfig
})
export type ModuleAssignment = typeof ModuleAssignment.Type

export const Template = Schema.Struct({
  id: TemplateId,
  name: Schema.String,
  modules: Schema.Array(ModuleAssignment),
  created_at: Timestamp
})
export type Template = typeof Template.Type

export const Node = Schema.Struct({ id: NodeId, hostname: Schema.String, node_template_id: TemplateId, created_at: Timestamp })
export type Node = typeof Node.Type

export const InstanceStatus = Schema.Literals(["running", "terminated"])
export const NodeInstance = Schema.Struct({
  id: InstanceId,
  node_id: NodeId,
  status: InstanceStatus,
  created_at: Timestamp
})
export type NodeInstance = typeof NodeInstance.Type

export const Network = Schema.Struct({
  id: NetworkId,
  name: Schema.String,
  handle: Schema.String,
  interface_name: Schema.String,
  overlay_prefix: Schema.String,
  /** The IPv4 range peers and VIPs get their /32s from (a free block of 100.64.0.0/10 by default). */
  overlay_ipv4_prefix: Schema.String,
  pod_subnet_prefix: Schema.NullOr(Schema.String),
  listen_port: Schema.Int,
  created_at: Timestamp
})
export type Network = typeof Network.Type

export const Peer = Schema.Struct({
  id: PeerId,
  network_id: NetworkId,
  instance_id: InstanceId,
  public_key: Schema.NullOr(Schema.String),
  /** The peer's IPv6 overlay address (a /128 in the network's /64). */
  overlay_address: Schema.String,
  /** The peer's IPv4 overlay address (a /32 in the network's IPv4 range). */
  overlay_ipv4_address: Schema.String,
  /** The UDP endpoint (`host:port`) the agent advertised; never the address its WebSocket came from. */
  endpoint: Schema.NullOr(Schema.String),
  /** The node's pod subnet as k3s reported it and R22 accepted; routed over WireGuard (flannel host-gw). */
  pod_subnet: Schema.NullOr(Schema.String),
  created_at: Timestamp
})
export type Peer = typeof Peer.Type

export const VipPolicy = Schema.Literals(["require_approval", "automatic"])
export type VipPolicy = typeof VipPolicy.Type

export const VirtualIp = Schema.Struct({
  id: VipId,
  network_id: NetworkId,
  cluster_id: ClusterId,
  /** The VIP's IPv6 address (a /128 in the network). */
  address: Schema.String,
  /** The VIP's IPv4 address (a /32 in the network's IPv4 range). */
  address_ipv4: Schema.String,
  holder_peer_id: Schema.NullOr(PeerId),
  failover_holder_peer_ids: Schema.Array(PeerId),
  epoch: Schema.Int,
  policy: VipPolicy
})
export type VirtualIp = typeof VirtualIp.Type

export const ClusterStatus = Schema.Literals(["provisioning", "active", "error", "decommissioning", "decommissioned"])
export type ClusterStatus = typeof ClusterStatus.Type
export const CniPlugin = Schema.Literals(["flannel", "ovn-kubernetes"])
export type CniPlugin = typeof CniPlugin.Type
/** R21: the one IP family of every address k3s is given for a cluster. */
export const ClusterIpFamily = Schema.Literals(["ipv4", "ipv6"])
export type ClusterIpFamily = typeof ClusterIpFamily.Type

export const KubernetesCluster = Schema.Struct({
  id: ClusterId,
  name: Schema.String,
  flavor: Schema.Literal("k3s"),
  status: ClusterStatus,
  api_endpoint: Schema.String,
  version: Schema.NullOr(Schema.String),
  network_id: NetworkId,
  cni_plugin: CniPlugin,
  /** R21: the family of the cluster's pod prefix (IPv4 when its network has none). */
  ip_family: ClusterIpFamily,
  cluster_cidr: Schema.NullOr(Schema.String),
  service_cidr: Schema.String,
  warnings: Schema.Array(Schema.String),
  created_at: Timestamp,
  activated_at: Schema.NullOr(Timestamp)
})
export type KubernetesCluster = typeof KubernetesCluster.Type

/** The role of a cluster member: the agent protocol's own type (one definition for both sides). */
export const KubernetesNodeRole = ClusterRole
export type KubernetesNodeRole = typeof KubernetesNodeRole.Type
export const KubernetesNodeStatus = Schema.Literals(["joining", "ready", "not_ready"])
export type KubernetesNodeStatus = typeof KubernetesNodeStatus.Type

export const KubernetesNode = Schema.Struct({
  id: KubernetesNodeId,
  cluster_id: ClusterId,
  instance_id: InstanceId,
  role: KubernetesNodeRole,
  status: KubernetesNodeStatus,
  joined_at: Timestamp
})
export type KubernetesNode = typeof KubernetesNode.Type

export const ApprovalStatus = Schema.Literals(["pending", "approved", "rejected", "moot"])
export type ApprovalStatus = typeof ApprovalStatus.Type

export const Approval = Schema.Struct({
  id: ApprovalId,
  kind: Schema.Literal("vip_failover"),
  status: ApprovalStatus,
  virtual_ip_id: VipId,
  cluster_id: ClusterId,
  /** The VIP epoch the approval was filed at; a later epoch makes it moot. */
  epoch: Schema.Int,
  summary: Schema.String,
  created_at: Timestamp,
  decided_at: Schema.NullOr(Timestamp),
  reason: Schema.NullOr(Schema.String),
  /** What deciding it did: `{ promoted: peer_id }`, `{ moot: why }`, ... */
  resolution: Schema.NullOr(Schema.Record(Schema.String, Schema.Unknown))
})
export type Approval = typeof Approval.Type

/** A skill run's status (rolling upgrades). */
export const SkillRunStatus = Schema.Literals(["running", "halted", "completed", "aborted"])
export type SkillRunStatus = typeof SkillRunStatus.Type

export const FleetEvent = Schema.Struct({
  seq: Schema.Int,
  type: Schema.String,
  at: Timestamp,
  data: Schema.Record(Schema.String, Schema.Unknown)
})
export type FleetEvent = typeof FleetEvent.Type

/** An instance's credential check result: who the agent is. */
export interface AgentIdentity {
  readonly accountId: AccountId
  readonly instanceId: InstanceId
  readonly nodeId: NodeId
  readonly hostname: string
}
