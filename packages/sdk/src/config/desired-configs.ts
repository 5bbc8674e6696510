/**
 * State in, configs out: recomputes the desired configs of the peers of a network or the
 * members of a cluster from stored state and records them as versioned desired pushes.
 * A version only moves when the content changes, so re-running a sync is harmless and
 * an agent never applies the same config twice.
 */
import { Effect } from "effect"
import type { ConfigKind, VipRoute } from "@fleetplane/agent-protocol"
import type { TxContext } from "../domain/transactor"
import type { AccountId, InstanceId, NetworkId } from "../model/ids"
import type { ClusterRecord, KubernetesNodeRecord, NetworkRecord, NodeRecord, PeerRecord, VipRecord } from "../store/records"
import { FleetConfig } from "../domain/fleet-config"
import { formatJoinToken } from "../token/join-token"
import type { ClusterIpFamily } from "../model/entities"
import { addressFamilyMismatches, k3sCaFiles, renderK3sConfig, type K3sConfigInput } from "./k3s-config"
import { renderKubeconfig } from "./kubeconfig"
import { publishPeerSet, storedWireguardConfig } from "./wireguard"

export const putDesired = (ctx: TxContext, instanceId: InstanceId, kind: ConfigKind, key: string, payload: unknown) =>
  Effect.map(ctx.tx.putDesiredConfig(instanceId, kind, key, payload, ctx.nowIso), ({ changed, record }) => {
    if (changed) ctx.touch(instanceId, record)
    return record
  })

/**
 * The network's WireGuard configs, then its VIP routes: publishes the peer set (the entries
 * that changed, at a new version) and points every peer's `wireguard` config at that version,
 * in one statement — each agent is then sent the change from the version it has (agent-port.ts).
 * Call after anything that changes the peer set, a key, an endpoint or a pod subnet; O(peers).
 * Answers how many peers' configs changed (the pushes it causes) and how many entries of the set
 * changed (what each of those pushes carries, for a peer that had the version before).
 */
export const syncNetworkWireguard = (ctx: TxContext, accountId: AccountId, networkId: NetworkId) =>
  Effect.gen(function* () {
    const network = yield* ctx.tx.getNetwork(accountId, networkId)
    if (network === undefined) return { pushes: 0, entries: 0 }
    const peers = yield* ctx.tx.listPeersOfNetwork(accountId, networkId)
    const { version, changed: entries } = yield* publishPeerSet(ctx, network.id, peers)
    const changed = yield* ctx.tx.putDesiredConfigForNetworkPeers(accountId, network.id, "wireguard", network.id, storedWireguardConfig(network, version), ctx.nowIso)
    for (const record of changed) ctx.touch(record.instance_id, record)
    yield* writeVipRoutes(ctx, network, peers)
    return { pushes: changed.length, entries }
  })

/**
 * R16 after a VIP holder change: every peer's `vip_routes` for the network — which peer (by
 * public key) holds each VIP at which epoch. A few hundred bytes per peer: O(peers).
 */
export const syncNetworkVipRoutes = (ctx: TxContext, accountId: AccountId, networkId: NetworkId) =>
  Effect.gen(function* () {
    const network = yield* ctx.tx.getNetwork(accountId, networkId)
    if (network === undefined) return
    yield* writeVipRoutes(ctx, network, yield* ctx.tx.listPeersOfNetwork(accountId, networkId))
  })

/**
 * R26: who probes a VIP and what. The reporters are the cluster's other nodes on the network,
 * at most `vipProbeReporters` of them, the first by instance id, so the sample stays put as
 * nodes join (`joinChangesProbeSample`); the VIP, the holder's overlay address and the API port,
 * in the cluster's family. The sample is kept on the VIP row.
 */
const probePlanOf = (ctx: TxContext, vip: VipRecord, holder: PeerRecord, peers: ReadonlyArray<PeerRecord>, reporters: number) =>
  Effect.gen(function* () {
    const cluster = yield* ctx.tx.getCluster(vip.account_id, vip.cluster_id)
    const members = new Set<string>(reporters === 0 ? [] : (yield* ctx.tx.listKubernetesNodes(vip.account_id, vip.cluster_id)).map((m) => m.instance_id))
    const sample = peers
      .filter((peer) => peer.id !== holder.id && members.has(peer.instance_id))
      .map((peer) => peer.instance_id)
      .sort()
      .slice(0, reporters)
    if (sample.join() !== vip.probe_reporters.join()) yield* ctx.tx.updateVipIfEpoch(vip.account_id, vip.id, vip.epoch, { probe_reporters: sample })
    if (sample.length === 0 || cluster === undefined) return undefined
    return {
      address: addressInFamily(cluster.ip_family, { ipv6: vip.address, ipv4: vip.address_ipv4 }),
      port: Number(new URL(cluster.api_endpoint).port || 6443),
      holder_address: addressInFamily(cluster.ip_family, { ipv6: holder.overlay_address, ipv4: holder.overlay_ipv4_address }),
      reporters: sample
    }
  })

/**
 * Whether a node joining the VIP's cluster enters its reporter sample (then the routes are written
 * again, O(peers)). Only a VIP with a routable holder has a sample: while the holder has no key
 * the routes leave the VIP out and its sample stays empty, so without that check every join
 * would rewrite the whole network's routes for nothing.
 */
export const joinChangesProbeSample = (ctx: TxContext, vip: VipRecord, instanceId: InstanceId) =>
  Effect.gen(function* () {
    const reporters = (yield* FleetConfig).vipProbeReporters
    const entersSample =
      reporters > 0 && !vip.probe_reporters.includes(instanceId) && (vip.probe_reporters.length < reporters || instanceId < vip.probe_reporters.at(-1)!)
    if (!entersSample || vip.holder_peer_id === null) return false
    const holder = yield* ctx.tx.getPeer(vip.account_id, vip.holder_peer_id)
    return holder !== undefined && holder.public_key !== null
  })

const writeVipRoutes = (ctx: TxContext, network: NetworkRecord, peers: ReadonlyArray<PeerRecord>) =>
  Effect.gen(function* () {
    const { vipProbeReporters } = yield* FleetConfig
    const byId = new Map(peers.map((peer) => [peer.id as string, peer]))
    const routes: Array<VipRoute> = []
    for (const vip of yield* ctx.tx.listVipsOfNetwork(network.account_id, network.id)) {
      const holder = vip.holder_peer_id === null ? undefined : byId.get(vip.holder_peer_id)
      // A holder without a key yet cannot be routed to; its route appears with its key.
      if (holder === undefined || holder.public_key === null) continue
      const probe = yield* probePlanOf(ctx, vip, holder, peers, vipProbeReporters)
      routes.push({ vip_id: vip.id, address: vip.address, address_ipv4: vip.address_ipv4, public_key: holder.public_key, epoch: vip.epoch, ...(probe === undefined ? {} : { probe }) })
    }
    // One statement for every peer: the payload is the same for all of them.
    const changed = yield* ctx.tx.putDesiredConfigForNetworkPeers(network.account_id, network.id, "vip_routes", network.id, {
      network_id: network.id,
      interface_name: network.interface_name,
      routes
    }, ctx.nowIso)
    for (const record of changed) ctx.touch(record.instance_id, record)
  })

/** The current join token of a cluster (R12). */
export const joinTokenOf = (cluster: ClusterRecord) => formatJoinToken(cluster.ca_cert_pem, cluster.token_secret)

/** The address of a peer or VIP in the cluster's family (R21). */
export const addressInFamily = (family: ClusterIpFamily, addresses: { readonly ipv6: string; readonly ipv4: string }) =>
  family === "ipv6" ? addresses.ipv6 : addresses.ipv4

/**
 * What a member's k3s config would say, or why it cannot be rendered: its addresses would mix
 * IP families (R21, `address_family_mismatch`). `undefined` when a piece is missing (the
 * member's peer, the cluster's VIP).
 */
export const planK3sConfig = (
  ctx: TxContext,
  cluster: ClusterRecord,
  instanceId: InstanceId,
  role: KubernetesNodeRecord["role"],
  /** What the caller has already read, so a join does not read it twice. */
  known: { readonly peer?: PeerRecord; readonly node?: NodeRecord; readonly vip?: VipRecord | undefined; readonly network?: NetworkRecord | undefined } = {}
) =>
  Effect.gen(function* () {
    const accountId = cluster.account_id
    const network = "network" in known ? known.network : yield* ctx.tx.getNetwork(accountId, cluster.network_id)
    const peer = known.peer ?? (yield* ctx.tx.findPeer(accountId, cluster.network_id, instanceId))
    const vip = "vip" in known ? known.vip : yield* ctx.tx.findVipOfCluster(accountId, cluster.id)
    let node = known.node
    if (node === undefined) {
      const instance = yield* ctx.tx.getInstance(accountId, instanceId)
      node = instance === undefined ? undefined : yield* ctx.tx.getNode(accountId, instance.node_id)
    }
    if (network === undefined || peer === undefined || vip === undefined || node === undefined) return undefined
    const bootstraps = instanceId === cluster.bootstrap_instance_id
    const input: K3sConfigInput = {
      role: role === "control-plane" ? (bootstraps ? "bootstrap-server" : "server") : "agent",
      nodeName: node.hostname,
      token: joinTokenOf(cluster),
      serverUrl: bootstraps ? null : cluster.api_endpoint,
      nodeIp: addressInFamily(cluster.ip_family, { ipv6: peer.overlay_address, ipv4: peer.overlay_ipv4_address }),
      vipAddress: addressInFamily(cluster.ip_family, { ipv6: vip.address, ipv4: vip.address_ipv4 }),
      interfaceName: network.interface_name,
      cniPlugin: cluster.cni_plugin,
      clusterCidr: cluster.cluster_cidr,
      serviceCidr: cluster.service_cidr
    }
    const mismatches = addressFamilyMismatches(input, cluster.ip_family)
    return mismatches.length === 0 ? { ok: true as const, input } : { ok: false as const, mismatches }
  })

/** The refusal a mixed-family config gets, for join answers and events alike. */
export const addressFamilyMismatchMessage = (cluster: ClusterRecord, mismatches: ReadonlyArray<string>) =>
  `cluster ${cluster.name} (${cluster.id}) is ${cluster.ip_family === "ipv4" ? "IPv4" : "IPv6"}, but ${mismatches.join("; ")}; k3s would refuse to start. ` +
  `Give the cluster's network a pod prefix of one family and make sure every peer has an overlay address of it (system_sdwan_list_networks)`

export type K3sConfigPlan = Effect.Success<ReturnType<typeof planK3sConfig>>

/** k3s config, token and (for servers) kubeconfig for one member of a cluster (`plan`: already made by the caller). */
export const syncClusterMember = (ctx: TxContext, cluster: ClusterRecord, member: KubernetesNodeRecord, planned?: K3sConfigPlan) =>
  Effect.gen(function* () {
    const plan = planned ?? (yield* planK3sConfig(ctx, cluster, member.instance_id, member.role))
    if (plan === undefined) return
    if (!plan.ok) {
      // Never render a config k3s would refuse (R21); the event says what to change.
      yield* ctx.emit(cluster.account_id, "kubernetes.config_not_rendered", {
        cluster_id: cluster.id,
        instance_id: member.instance_id,
        code: "address_family_mismatch",
        message: addressFamilyMismatchMessage(cluster, plan.mismatches)
      })
      return
    }
    const isServer = member.role === "control-plane"
    const { input } = plan
    // Independent rows, written together: on PostgreSQL one round trip for all of them.
    yield* Effect.all(
      [
        putDesired(ctx, member.instance_id, "k3s", cluster.id, {
          cluster_id: cluster.id,
          role: member.role,
          content: renderK3sConfig(input),
          files: isServer ? k3sCaFiles(cluster.ca_cert_pem, cluster.ca_key_pem) : []
        }),
        putDesired(ctx, member.instance_id, "token", cluster.id, { cluster_id: cluster.id, token: input.token }),
        ...(isServer
          ? [
              putDesired(ctx, member.instance_id, "kubeconfig", cluster.id, {
                cluster_id: cluster.id,
                content: renderKubeconfig({
                  clusterName: cluster.name,
                  clusterId: cluster.id,
                  apiEndpoint: cluster.api_endpoint,
                  caCertPem: cluster.ca_cert_pem,
                  clientCertPem: cluster.admin_cert_pem,
                  clientKeyPem: cluster.admin_key_pem
                })
              })
            ]
          : [])
      ],
      { concurrency: "unbounded", discard: true }
    )
  })

export const syncClusterMembers = (ctx: TxContext, cluster: ClusterRecord) =>
  Effect.gen(function* () {
    for (const member of yield* ctx.tx.listKubernetesNodes(cluster.account_id, cluster.id)) {
      yield* syncClusterMember(ctx, cluster, member)
    }
  })
