/**
 * Bringing a database from before address families (R21) up to date, once, when the fleet
 * opens: every network gets an IPv4 overlay range, every peer and VIP the /32 with its existing
 * host number, and every cluster its family — with its API endpoint, CIDRs and members' configs
 * made consistent (clusters from before this rendered k3s configs that k3s refuses: an IPv6
 * node-ip beside an IPv4 cluster-cidr). Nothing is deleted; each change is an event.
 */
import { Effect } from "effect"
import type { TxContext } from "../domain/transactor"
import { clusterAddressingFor } from "../cluster/address-family"
import { allocateServiceCidr } from "../cluster/service-cidr"
import { addressInFamily, syncClusterMembers, syncNetworkVipRoutes } from "../config/desired-configs"
import { apiEndpointFor } from "../config/kubeconfig"
import { requestNetworkWireguardSync } from "../config/network-syncer"
import type { NetworkRecord } from "../store/records"
import { parseCidr } from "./cidr"
import { allocateOverlayIpv4Prefix, ipv4AddressFor } from "./overlay-ipv4"

const hostIndexFor = (ctx: TxContext, network: NetworkRecord, ownerId: string) =>
  Effect.flatMap(ctx.tx.hostIndexOf(network.id, ownerId), (index) => (index === undefined ? ctx.tx.leaseNextHostIndex(network.id, ownerId) : Effect.succeed(index)))

export const backfillAddressFamilies = (ctx: TxContext) =>
  Effect.gen(function* () {
    const { tx } = ctx
    for (const stale of yield* tx.listNetworksWithoutIpv4()) {
      const pod = stale.pod_subnet_prefix === null ? undefined : parseCidr(stale.pod_subnet_prefix)
      const prefix = yield* allocateOverlayIpv4Prefix(tx, stale.account_id, pod?.ok ? pod.cidr : null)
      yield* tx.setNetworkOverlayIpv4Prefix(stale.account_id, stale.id, prefix)
      const network = { ...stale, overlay_ipv4_prefix: prefix }
      for (const peerId of yield* tx.listPeersWithoutIpv4(network.id)) {
        const address = yield* ipv4AddressFor(network.id, prefix, yield* hostIndexFor(ctx, network, peerId))
        yield* tx.updatePeer(network.account_id, peerId, { overlay_ipv4_address: address })
      }
      for (const vipId of yield* tx.listVipsWithoutIpv4(network.id)) {
        yield* tx.setVipAddressIpv4(network.account_id, vipId, yield* ipv4AddressFor(network.id, prefix, yield* hostIndexFor(ctx, network, vipId)))
      }
      yield* ctx.emit(network.account_id, "sdwan.network_migrated", { network_id: network.id, overlay_ipv4_prefix: prefix })
      yield* requestNetworkWireguardSync(ctx, network.account_id, network.id)
      yield* syncNetworkVipRoutes(ctx, network.account_id, network.id)
    }
    for (const cluster of yield* tx.listClustersWithoutIpFamily()) {
      const network = yield* tx.getNetwork(cluster.account_id, cluster.network_id)
      if (network === undefined) continue
      const addressing = clusterAddressingFor(network, cluster.cni_plugin)
      const vip = yield* tx.findVipOfCluster(cluster.account_id, cluster.id)
      const apiEndpoint = vip === undefined ? cluster.api_endpoint : apiEndpointFor(addressInFamily(addressing.ipFamily, { ipv6: vip.address, ipv4: vip.address_ipv4 }))
      const service = parseCidr(cluster.service_cidr)
      const serviceFamily = addressing.ipFamily === "ipv4" ? 4 : 6
      const serviceCidr =
        service.ok && service.cidr.family === serviceFamily ? cluster.service_cidr : (yield* allocateServiceCidr(tx, cluster.account_id, serviceFamily)).serviceCidr
      const changes = { ip_family: addressing.ipFamily, api_endpoint: apiEndpoint, cluster_cidr: addressing.clusterCidr, service_cidr: serviceCidr }
      yield* tx.updateCluster(cluster.account_id, cluster.id, changes)
      yield* ctx.emit(cluster.account_id, "kubernetes.cluster_migrated", {
        cluster_id: cluster.id,
        ip_family: addressing.ipFamily,
        api_endpoint: { from: cluster.api_endpoint, to: apiEndpoint },
        service_cidr: { from: cluster.service_cidr, to: serviceCidr }
      })
      if (cluster.status !== "decommissioned") yield* syncClusterMembers(ctx, { ...cluster, ...changes })
    }
  })
