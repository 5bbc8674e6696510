/**
 * Cluster bootstrap (R7): the first server of a cluster creates it — the cluster row with its
 * own CA and join token, the VIP on the server's network (held by the server at epoch 1), the
 * server's membership — and gets its configs, inside the join's transaction (join-request.ts).
 */
import { Effect } from "effect"
import type { TxContext } from "../domain/transactor"
import type { AgentIdentity } from "../model/entities"
import { newId } from "../model/ids"
import type { ClusterRecord, KubernetesNodeRecord, PeerRecord, VipRecord } from "../store/records"
import { apiEndpointFor } from "../config/kubeconfig"
import { addressInFamily, syncClusterMember, syncNetworkVipRoutes } from "../config/desired-configs"
import type { KeyPairPem } from "../config/certificates"
import { leaseOverlayAddresses } from "../network/overlay"
import { newTokenSecret } from "../token/join-token"
import { clusterAddressingFor } from "./address-family"
import { haWarnings } from "./ha-warnings"
import { allocateServiceCidr } from "./service-cidr"

/** Fresh CA material, made before the transaction (key generation is async) in case this join bootstraps. */
export interface BootstrapMaterial {
  readonly ca: KeyPairPem
  readonly admin: KeyPairPem
}

export const bootstrapCluster = (
  ctx: TxContext,
  identity: AgentIdentity,
  peer: PeerRecord,
  config: { readonly name: string; readonly vip_policy?: "automatic" | "require_approval"; readonly cni_plugin?: "flannel" | "ovn-kubernetes"; readonly k3s_version?: string },
  material: BootstrapMaterial
) =>
  Effect.gen(function* () {
    const { tx } = ctx
    const accountId = identity.accountId
    const network = (yield* tx.getNetwork(accountId, peer.network_id))!
    const clusterId = newId("cluster")
    const vipId = newId("vip")
    const vipAddresses = yield* leaseOverlayAddresses(tx, network, vipId)
    const cniPlugin = config.cni_plugin ?? "flannel"
    // R21: the pod prefix decides the family; every address k3s gets follows it.
    const addressing = clusterAddressingFor(network, cniPlugin)
    const { serviceCidr, warnings: serviceWarnings } = yield* allocateServiceCidr(tx, accountId, addressing.ipFamily === "ipv4" ? 4 : 6)
    const cluster: ClusterRecord = {
      id: clusterId,
      account_id: accountId,
      name: config.name,
      flavor: "k3s",
      status: "provisioning",
      api_endpoint: apiEndpointFor(addressInFamily(addressing.ipFamily, vipAddresses)),
      version: config.k3s_version ?? null,
      network_id: network.id,
      cni_plugin: cniPlugin,
      ip_family: addressing.ipFamily,
      cluster_cidr: addressing.clusterCidr,
      service_cidr: serviceCidr,
      warnings: [...serviceWarnings, ...haWarnings(1)],
      created_at: ctx.nowIso,
      activated_at: null,
      bootstrap_instance_id: identity.instanceId,
      ca_cert_pem: material.ca.certPem,
      ca_key_pem: material.ca.keyPem,
      token_secret: newTokenSecret(),
      token_version: 1,
      admin_cert_pem: material.admin.certPem,
      admin_key_pem: material.admin.keyPem
    }
    yield* tx.insertCluster(cluster)
    const vip: VipRecord = {
      id: vipId,
      account_id: accountId,
      network_id: network.id,
      cluster_id: clusterId,
      address: vipAddresses.ipv6,
      address_ipv4: vipAddresses.ipv4,
      holder_peer_id: peer.id,
      holder_since: ctx.nowIso,
      failover_holder_peer_ids: [],
      epoch: 1,
      policy: config.vip_policy ?? "require_approval",
      silent_epoch: null,
      incident: null,
      probe_reporters: []
    }
    yield* tx.insertVip(vip)
    const member: KubernetesNodeRecord = {
      id: newId("kubernetesNode"),
      account_id: accountId,
      cluster_id: clusterId,
      instance_id: identity.instanceId,
      role: "control-plane",
      status: "joining",
      joined_at: ctx.nowIso
    }
    yield* tx.insertKubernetesNode(member)
    yield* ctx.emit(accountId, "kubernetes.cluster_created", {
      cluster_id: clusterId,
      name: cluster.name,
      status: "provisioning",
      api_endpoint: cluster.api_endpoint,
      network_id: network.id,
      ip_family: addressing.ipFamily,
      cluster_cidr: addressing.clusterCidr,
      service_cidr: serviceCidr,
      bootstrap_instance_id: identity.instanceId,
      vip_id: vipId
    })
    yield* ctx.emit(accountId, "kubernetes.join_accepted", { instance_id: identity.instanceId, cluster_id: clusterId, role: "control-plane", selected_by: "bootstrap" })
    yield* syncClusterMember(ctx, cluster, member)
    yield* syncNetworkVipRoutes(ctx, accountId, network.id)
    ctx.vipHolderChanged(accountId, vipId, [identity.instanceId])
    return cluster
  })
