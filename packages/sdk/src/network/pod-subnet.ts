/**
 * R22: a node's pod subnet, as its agent reports it from k3s, is routed to the node over
 * WireGuard (it lands in every other peer's AllowedIPs for flannel host-gw). A node could
 * therefore draw any traffic it names, so a report is accepted only if it is the per-node
 * subnet of its own cluster and collides with nothing another peer or the VIP owns.
 */
import { Effect } from "effect"
import type { TxContext } from "../domain/transactor"
import type { AgentIdentity } from "../model/entities"
import type { ClusterRecord, PeerRecord } from "../store/records"
import { contains, overlaps, parseCidr, type Cidr } from "./cidr"

/** flannel's per-node subnet: k3s's default node-cidr-mask-size is /24 (IPv4) and /64 (IPv6). */
export const PER_NODE_PREFIX_LENGTH = { 4: 24, 6: 64 } as const

export type PodSubnetDecision =
  | { readonly accepted: true; readonly podSubnet: string; readonly peer: PeerRecord; readonly changed: boolean }
  | { readonly accepted: false; readonly reason: string; readonly message: string }

const hostPrefix = (address: string | null | undefined): Cidr | undefined => {
  if (address == null) return undefined
  const parsed = parseCidr(`${address}/${address.includes(":") ? 128 : 32}`)
  return parsed.ok ? parsed.cidr : undefined
}

/** R22: decides whether `reported` may become the pod subnet of the node's peer on its cluster's network. */
export const decidePodSubnet = (ctx: TxContext, identity: AgentIdentity, cluster: ClusterRecord, reported: string) =>
  Effect.gen(function* () {
    const refuse = (reason: string, message: string): PodSubnetDecision => ({ accepted: false, reason, message: `pod subnet ${reported.slice(0, 64)} refused: ${message}` })
    const parsed = parseCidr(reported)
    if (!parsed.ok) return refuse("not_a_cidr", parsed.reason)
    const subnet = parsed.cidr
    if (!parsed.wasCanonical) return refuse("not_canonical", `host bits are set; report the subnet as ${subnet.canonical}`)
    if (cluster.cluster_cidr === null) {
      return refuse("no_cluster_cidr", `cluster ${cluster.id} uses ${cluster.cni_plugin}, whose pod network does not travel over Fleetplane's WireGuard routes`)
    }
    const clusterCidr = parseCidr(cluster.cluster_cidr)
    if (!clusterCidr.ok || !contains(clusterCidr.cidr, subnet)) {
      return refuse("outside_cluster_cidr", `it is not inside the cluster CIDR ${cluster.cluster_cidr} of cluster ${cluster.id}`)
    }
    const size = PER_NODE_PREFIX_LENGTH[subnet.family]
    if (subnet.prefixLength !== size) return refuse("wrong_size", `a node's pod subnet is a /${size} (flannel's per-node size), not a /${subnet.prefixLength}`)

    const peers = yield* ctx.tx.listPeersOfNetwork(identity.accountId, cluster.network_id)
    const own = peers.find((p) => p.instance_id === identity.instanceId)
    if (own === undefined) return refuse("no_peer", `this node has no peer on the cluster's network ${cluster.network_id}`)
    for (const other of peers) {
      if (other.id === own.id) continue
      const otherSubnet = other.pod_subnet === null ? undefined : parseCidr(other.pod_subnet)
      if (otherSubnet?.ok && overlaps(otherSubnet.cidr, subnet)) {
        return refuse("overlaps_peer_subnet", `it overlaps the pod subnet ${other.pod_subnet} of ${other.hostname} (${other.id})`)
      }
      for (const address of [other.overlay_address, other.overlay_ipv4_address]) {
        const host = hostPrefix(address)
        if (host !== undefined && overlaps(host, subnet)) return refuse("overlaps_peer_address", `it contains the overlay address ${address} of ${other.hostname} (${other.id})`)
      }
    }
    for (const vip of yield* ctx.tx.listVipsOfNetwork(identity.accountId, cluster.network_id)) {
      for (const address of [vip.address, vip.address_ipv4]) {
        const host = hostPrefix(address)
        if (host !== undefined && overlaps(host, subnet)) return refuse("overlaps_vip", `it contains the VIP ${address} of cluster ${vip.cluster_id}`)
      }
    }
    return { accepted: true, podSubnet: subnet.canonical, peer: own, changed: own.pod_subnet !== subnet.canonical } satisfies PodSubnetDecision
  })
