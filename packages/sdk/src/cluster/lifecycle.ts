/**
 * Cluster lifecycle after the join: activation when the bootstrap server reports k3s ready
 * (R7), the decommission cascade (R18) and token rotation (R12).
 */
import { Effect } from "effect"
import type { K3sState } from "@fleetplane/agent-protocol"
import type { ReadContext, TxContext } from "../domain/transactor"
import type { AgentIdentity } from "../model/entities"
import { notFound, stateError } from "../model/errors"
import type { AccountId, ClusterId } from "../model/ids"
import { putDesired, syncClusterMembers, syncNetworkVipRoutes } from "../config/desired-configs"
import { requestNetworkWireguardSync } from "../config/network-syncer"
import { decidePodSubnet } from "../network/pod-subnet"
import { newTokenSecret } from "../token/join-token"

/** A cluster by id, or by name (a live cluster of that name): operators think in names (`k3s-prod`). */
export const requireCluster = (ctx: ReadContext, accountId: AccountId, clusterRef: string) =>
  Effect.gen(function* () {
    const cluster = (yield* ctx.tx.getCluster(accountId, clusterRef as ClusterId)) ?? (yield* ctx.tx.findClusterByName(accountId, clusterRef))
    if (cluster === undefined) {
      return yield* notFound("cluster_not_found", `there is no cluster "${clusterRef.slice(0, 128)}" (by id or name) in this account; list the clusters to see them`, {
        cluster_id: clusterRef
      })
    }
    return cluster
  })

const isReady = (k3s: K3sState) => k3s.service === "active" && k3s.node_ready

/** Something an agent reported that was refused; the host tells the agent (an `error` message). */
export interface AgentRefusal {
  readonly code: "pod_subnet_refused" | "wireguard_key_in_use" | "invalid_endpoint"
  readonly message: string
}

/**
 * A status report: marks the node ready or not, activates a provisioning cluster when its
 * bootstrap server is ready (R7), and records the node's pod subnet for WireGuard routing —
 * only as R22 allows. Returns what was refused.
 */
export const recordStatusReport = (ctx: TxContext, identity: AgentIdentity, k3s: K3sState) =>
  Effect.gen(function* () {
    const { tx } = ctx
    const accountId = identity.accountId
    const refusals: Array<AgentRefusal> = []
    const membership = yield* tx.findKubernetesNodeOfInstance(accountId, identity.instanceId)
    if (membership === undefined) return refusals
    const status = isReady(k3s) ? "ready" : membership.status === "joining" ? "joining" : "not_ready"
    if (status !== membership.status) {
      yield* tx.setKubernetesNodeStatus(accountId, identity.instanceId, status)
      yield* ctx.emit(accountId, "kubernetes.node_status_changed", {
        cluster_id: membership.cluster_id,
        instance_id: identity.instanceId,
        from: membership.status,
        to: status
      })
    }
    const cluster = yield* tx.getCluster(accountId, membership.cluster_id)
    if (cluster === undefined) return refusals
    if (cluster.status === "provisioning" && cluster.bootstrap_instance_id === identity.instanceId && isReady(k3s)) {
      yield* tx.updateCluster(accountId, cluster.id, { status: "active", activated_at: ctx.nowIso, ...(k3s.version ? { version: k3s.version } : {}) })
      yield* ctx.emit(accountId, "kubernetes.cluster_status_changed", { cluster_id: cluster.id, from: "provisioning", to: "active" })
    }
    if (k3s.pod_cidr !== undefined) {
      const decision = yield* decidePodSubnet(ctx, identity, cluster, k3s.pod_cidr)
      if (!decision.accepted) {
        // R22: one compromised node must never draw another node's traffic. Nothing changes.
        yield* ctx.emit(accountId, "sdwan.pod_subnet_refused", {
          instance_id: identity.instanceId,
          cluster_id: cluster.id,
          pod_subnet: k3s.pod_cidr.slice(0, 64),
          reason: decision.reason
        })
        refusals.push({ code: "pod_subnet_refused", message: decision.message })
      } else if (decision.changed) {
        yield* tx.updatePeer(accountId, decision.peer.id, { pod_subnet: decision.podSubnet })
        yield* ctx.emit(accountId, "sdwan.pod_subnet_recorded", {
          instance_id: identity.instanceId,
          peer_id: decision.peer.id,
          network_id: cluster.network_id,
          pod_subnet: decision.podSubnet
        })
        yield* requestNetworkWireguardSync(ctx, accountId, cluster.network_id)
      }
    }
    return refusals
  })

/** What decommissioning a cluster would change, for the confirmation summary. */
export const describeDecommission = (ctx: TxContext, accountId: AccountId, clusterId: string) =>
  Effect.gen(function* () {
    const cluster = yield* requireCluster(ctx, accountId, clusterId)
    const nodes = yield* ctx.tx.listKubernetesNodes(accountId, cluster.id)
    const vip = yield* ctx.tx.findVipOfCluster(accountId, cluster.id)
    return {
      summary: `decommission cluster "${cluster.name}" (${cluster.id}): remove its ${nodes.length} Kubernetes node record(s), release VIP ${vip?.address ?? "(none)"}, revoke its join token and tell its agents to leave; the ${nodes.length} instance(s) keep running`,
      changes: { cluster_id: cluster.id, kubernetes_nodes_removed: nodes.length, vip_released: vip?.address ?? null, instances_terminated: 0 }
    }
  })

/** R18: the decommission cascade. Instances are not terminated. */
export const decommissionCluster = (ctx: TxContext, accountId: AccountId, clusterId: string) =>
  Effect.gen(function* () {
    const { tx } = ctx
    const cluster = yield* requireCluster(ctx, accountId, clusterId)
    if (cluster.status === "decommissioned") {
      return yield* stateError("cluster_decommissioned", `cluster ${cluster.id} is already decommissioned`, { cluster_id: cluster.id })
    }
    const members = yield* tx.listKubernetesNodes(accountId, cluster.id)
    for (const member of members) {
      yield* putDesired(ctx, member.instance_id, "leave", cluster.id, {
        cluster_id: cluster.id,
        reason: `cluster ${cluster.name} was decommissioned`,
        network_id: cluster.network_id
      })
    }
    const removed = yield* tx.deleteKubernetesNodesOfCluster(accountId, cluster.id)
    const vip = yield* tx.findVipOfCluster(accountId, cluster.id)
    let holderInstance = null
    if (vip !== undefined) {
      if (vip.holder_peer_id !== null) holderInstance = (yield* tx.getPeer(accountId, vip.holder_peer_id))?.instance_id ?? null
      yield* tx.deleteVip(accountId, vip.id)
      yield* tx.releaseLease(vip.network_id, vip.id)
      // Pending failover approvals for this VIP can no longer be carried out.
      const pending = yield* tx.findPendingApproval(accountId, vip.id)
      if (pending !== undefined) {
        yield* tx.decideApproval(accountId, pending.id, {
          status: "moot",
          decided_at: ctx.nowIso,
          reason: "cluster decommissioned",
          resolution: { moot: "cluster_decommissioned" }
        })
      }
    }
    // Revoke the token: the stored secret is replaced by one never handed out.
    yield* tx.updateCluster(accountId, cluster.id, { status: "decommissioned", token_secret: newTokenSecret(), token_version: cluster.token_version + 1 })
    yield* ctx.emit(accountId, "kubernetes.cluster_status_changed", { cluster_id: cluster.id, from: cluster.status, to: "decommissioned" })
    yield* ctx.emit(accountId, "kubernetes.cluster_decommissioned", {
      cluster_id: cluster.id,
      kubernetes_nodes_removed: removed,
      vip_released: vip?.address ?? null,
      instances_kept: members.map((m) => m.instance_id)
    })
    yield* syncNetworkVipRoutes(ctx, accountId, cluster.network_id)
    if (vip !== undefined && holderInstance !== null) ctx.vipHolderChanged(accountId, vip.id, [holderInstance])
    return { cluster_id: cluster.id, status: "decommissioned" as const, kubernetes_nodes_removed: removed, instances_terminated: 0 }
  })

/** R12: a new token secret; every member agent gets the new token and k3s config pushed. */
export const rotateJoinToken = (ctx: TxContext, accountId: AccountId, clusterId: string) =>
  Effect.gen(function* () {
    const cluster = yield* requireCluster(ctx, accountId, clusterId)
    if (cluster.status === "decommissioned") {
      return yield* stateError("cluster_decommissioned", `cluster ${cluster.id} is decommissioned; its token cannot be rotated`, { cluster_id: cluster.id })
    }
    const rotated = { ...cluster, token_secret: newTokenSecret(), token_version: cluster.token_version + 1 }
    yield* ctx.tx.updateCluster(accountId, cluster.id, { token_secret: rotated.token_secret, token_version: rotated.token_version })
    yield* syncClusterMembers(ctx, rotated)
    yield* ctx.emit(accountId, "kubernetes.token_rotated", { cluster_id: cluster.id, token_version: rotated.token_version })
    return { cluster_id: cluster.id, token_version: rotated.token_version }
  })
