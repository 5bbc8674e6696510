/**
 * R21: a cluster has one IP family, its pod prefix's — IPv4 when its network has none (k3s's
 * default cluster CIDR 10.42.0.0/16). k3s refuses to start when node-ip, the CIDRs or the
 * advertise address mix families ("cluster-cidr … and node-ip … must share the same IP
 * version", k3s pkg/agent/run.go), so the family is decided once, at bootstrap, and every
 * address the cluster's configs carry is taken in it.
 */
import type { ClusterIpFamily, CniPlugin } from "../model/entities"
import { parseCidr } from "../network/cidr"
import { K3S_DEFAULT_CLUSTER_CIDR } from "../network/network-rules"
import type { NetworkRecord } from "../store/records"

export interface ClusterAddressing {
  readonly ipFamily: ClusterIpFamily
  /** `cluster-cidr` for k3s; `null` for ovn-kubernetes, which owns its pod network. */
  readonly clusterCidr: string | null
}

export const clusterAddressingFor = (network: Pick<NetworkRecord, "pod_subnet_prefix">, cniPlugin: CniPlugin): ClusterAddressing => {
  // ovn-kubernetes ignores the network's pod prefix (its own layer), and runs IPv4 by default.
  if (cniPlugin !== "flannel") return { ipFamily: "ipv4", clusterCidr: null }
  if (network.pod_subnet_prefix === null) return { ipFamily: "ipv4", clusterCidr: K3S_DEFAULT_CLUSTER_CIDR }
  const parsed = parseCidr(network.pod_subnet_prefix)
  return { ipFamily: parsed.ok && parsed.cidr.family === 6 ? "ipv6" : "ipv4", clusterCidr: network.pod_subnet_prefix }
}
