/**
 * Store records -> action results: the runbook's snake_case shapes, without the owning
 * account or any secret (R20). Every action result goes through one of these.
 */
import type { ApprovalView, ClusterView, KubernetesNodeView, NetworkView, PeerView, VipView } from "./action-outputs"
import type { ApprovalRecord, ClusterSummary, KubernetesNodeRecord, NetworkRecord, PeerRecord, VipRecord } from "../store/records"

export const presentCluster = (c: ClusterSummary): ClusterView => ({
  id: c.id,
  name: c.name,
  flavor: c.flavor,
  status: c.status,
  api_endpoint: c.api_endpoint,
  version: c.version,
  network_id: c.network_id,
  cni_plugin: c.cni_plugin,
  ip_family: c.ip_family,
  cluster_cidr: c.cluster_cidr,
  service_cidr: c.service_cidr,
  warnings: c.warnings,
  created_at: c.created_at,
  activated_at: c.activated_at
})

export const presentVip = (v: VipRecord, holderHostname: string | null): VipView => ({
  id: v.id,
  address: v.address,
  address_ipv4: v.address_ipv4,
  network_id: v.network_id,
  cluster_id: v.cluster_id,
  holder_peer_id: v.holder_peer_id,
  holder_hostname: holderHostname,
  failover_holder_peer_ids: v.failover_holder_peer_ids,
  epoch: v.epoch,
  policy: v.policy
})

export const presentNetwork = (n: NetworkRecord): NetworkView => ({
  id: n.id,
  name: n.name,
  handle: n.handle,
  interface_name: n.interface_name,
  overlay_prefix: n.overlay_prefix,
  overlay_ipv4_prefix: n.overlay_ipv4_prefix,
  pod_subnet_prefix: n.pod_subnet_prefix,
  listen_port: n.listen_port
})

export const presentPeer = (p: PeerRecord): PeerView => ({
  id: p.id,
  network_id: p.network_id,
  instance_id: p.instance_id,
  overlay_address: p.overlay_address,
  overlay_ipv4_address: p.overlay_ipv4_address,
  public_key: p.public_key,
  endpoint: p.endpoint,
  pod_subnet: p.pod_subnet
})

export const presentKubernetesNode = (n: KubernetesNodeRecord, hostname: string | null): KubernetesNodeView => ({
  instance_id: n.instance_id,
  role: n.role,
  status: n.status,
  hostname,
  joined_at: n.joined_at
})

export const presentApproval = (a: ApprovalRecord): ApprovalView => ({
  id: a.id,
  kind: a.kind,
  status: a.status,
  virtual_ip_id: a.virtual_ip_id,
  cluster_id: a.cluster_id,
  epoch: a.epoch,
  summary: a.summary,
  created_at: a.created_at,
  decided_at: a.decided_at,
  reason: a.reason,
  resolution: a.resolution
})
