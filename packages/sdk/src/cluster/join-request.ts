/**
 * Join validation (R8-R11) and, for a first server, the bootstrap (R7, bootstrap.ts), decided inside one store
 * transaction so two concurrent joins, or a join racing a decommission, can never leave a
 * node attached to a cluster that is not active. A rejection is an outcome, not a failure:
 * its audit event must commit even though nothing else changes.
 */
import { Effect } from "effect"
import type { TxContext } from "../domain/transactor"
import type { AgentIdentity, KubernetesNodeRole, ModuleName } from "../model/entities"
import { newId, type ClusterId } from "../model/ids"
import type { ClusterRecord, KubernetesNodeRecord, NetworkRecord, VipRecord } from "../store/records"
import { addressFamilyMismatchMessage, joinChangesProbeSample, joinTokenOf, planK3sConfig, syncClusterMember, syncNetworkVipRoutes } from "../config/desired-configs"
import { readJoinAgainstAssignments } from "./assignments"
import { tokenFingerprint } from "../token/join-token"
import { bootstrapCluster, type BootstrapMaterial } from "./bootstrap"
import { refreshHaWarnings } from "./ha-warnings"

export type { BootstrapMaterial } from "./bootstrap"

export interface JoinRequest {
  readonly module_name: ModuleName
  readonly target_cluster_id: string | null
  readonly token_fingerprint?: string | undefined
}

export type JoinOutcome =
  | {
      readonly accepted: true
      readonly cluster_id: ClusterId
      readonly role: KubernetesNodeRole
      readonly api_endpoint: string
      readonly created_cluster: boolean
      /** The agent holds a stale token: resend the current one even if its version looks applied (R12). */
      readonly resend_token: boolean
    }
  | { readonly accepted: false; readonly code: string; readonly message: string; readonly retry_after_ms: number }

/** How long an agent waits before asking again, per rejection reason. */
export const RETRY_AFTER_MS: Record<string, number> = {
  cluster_not_found: 60_000,
  cluster_not_active: 15_000,
  no_active_cluster: 30_000,
  network_mismatch: 60_000,
  sdwan_peer_required: 30_000,
  module_not_assigned: 60_000,
  assignment_mismatch: 60_000,
  cluster_name_taken: 60_000,
  already_member: 60_000,
  address_family_mismatch: 300_000,
  instance_terminated: 300_000
}

/**
 * Every code a join can be refused with: the rejections above, and the failures that leave a
 * join undecided (no free range left, the store down), which hosts send as rejections too.
 * PROTOCOL.md lists each (a test checks it).
 */
export const JOIN_REJECTION_CODES: ReadonlyArray<string> = [
  ...Object.keys(RETRY_AFTER_MS),
  "no_free_service_cidr",
  "overlay_ipv4_exhausted",
  "store_unavailable",
  "store_failed",
  "internal_error"
]

const roleOf = (module: ModuleName): KubernetesNodeRole => (module === "k3s-server" ? "control-plane" : "worker")

export const validateJoinRequest = (ctx: TxContext, identity: AgentIdentity, request: JoinRequest, material: BootstrapMaterial | undefined) =>
  Effect.gen(function* () {
    const { tx } = ctx
    const accountId = identity.accountId
    const reject = (code: string, message: string, auditReason: string = code, details: Record<string, unknown> = {}) =>
      Effect.as(
        ctx.emit(accountId, "kubernetes.join_rejected", {
          instance_id: identity.instanceId,
          module_name: request.module_name,
          target_cluster_id: request.target_cluster_id,
          reason: auditReason,
          ...details
        }),
        { accepted: false as const, code, message, retry_after_ms: RETRY_AFTER_MS[code] ?? 30_000 }
      )
    const accept = (cluster: ClusterRecord, role: KubernetesNodeRole, created: boolean) =>
      Effect.succeed({
        accepted: true as const,
        cluster_id: cluster.id,
        role,
        api_endpoint: cluster.api_endpoint,
        created_cluster: created,
        resend_token: request.token_fingerprint !== undefined && request.token_fingerprint !== tokenFingerprint(joinTokenOf(cluster))
      })

    // Independent reads by the instance's id, together: on PostgreSQL they share one round trip.
    const [instance, membership, peers, node, template] = yield* Effect.all(
      [
        tx.getInstance(accountId, identity.instanceId),
        tx.findKubernetesNodeOfInstance(accountId, identity.instanceId),
        tx.listPeersOfInstance(accountId, identity.instanceId),
        tx.getNodeOfInstance(accountId, identity.instanceId),
        tx.getTemplateOfInstance(accountId, identity.instanceId)
      ],
      { concurrency: "unbounded" }
    )
    if (instance === undefined || instance.status !== "running") {
      return yield* reject("instance_terminated", "this instance is terminated; provision a new one")
    }
    // R24: the template's assignment decides what this agent joins.
    const assigned = readJoinAgainstAssignments(template, request)
    if (!assigned.ok) return yield* reject(assigned.code, assigned.message, assigned.code, assigned.details)
    const { assignment } = assigned
    const targetClusterId = assigned.targetClusterId
    const role = roleOf(request.module_name)

    // Reconnects and retries of a node that already joined are answered with the same membership.
    if (membership !== undefined) {
      const cluster = yield* tx.getCluster(accountId, membership.cluster_id)
      if (cluster !== undefined && (targetClusterId === null || targetClusterId === cluster.id)) {
        return yield* accept(cluster, membership.role, false)
      }
      return yield* reject(
        "already_member",
        `this node already belongs to cluster ${membership.cluster_id}; terminate and reprovision it to move it to another cluster`,
        "already_member",
        { current_cluster_id: membership.cluster_id }
      )
    }

    // R7: a k3s-server without a target creates a cluster, once per instance.
    if (request.module_name === "k3s-server" && targetClusterId === null) {
      const existing = yield* tx.findClusterBootstrappedBy(accountId, instance.id)
      if (existing !== undefined) return yield* accept(existing, "control-plane", false)
      // R8: the bootstrap server must be an SD-WAN peer; its (first) network becomes the cluster's.
      const peer = peers[0]
      if (peer === undefined) {
        return yield* reject(
          "sdwan_peer_required",
          "a k3s server needs an SD-WAN peer for the cluster's VIP; attach this instance with system_sdwan_attach_peer"
        )
      }
      if (material === undefined) return yield* Effect.die(new Error("bootstrap material missing for a bootstrap join"))
      const clusterName = assignment.config.cluster_name ?? identity.hostname
      const sameName = yield* tx.findClusterByName(accountId, clusterName)
      if (sameName !== undefined) {
        return yield* reject(
          "cluster_name_taken",
          `a cluster named "${clusterName}" already exists in this account (${sameName.id}); set another config.cluster_name on this template's k3s-server assignment`,
          "cluster_name_taken",
          { cluster_name: clusterName, existing_cluster_id: sameName.id }
        )
      }
      const cluster = yield* bootstrapCluster(ctx, identity, peer, { ...assignment.config, name: clusterName }, material)
      return yield* accept(cluster, "control-plane", true)
    }

    // R10: a worker without a target joins the most recently activated active cluster.
    let cluster: ClusterRecord | undefined
    // Read with a target cluster together with it (one round trip on PostgreSQL), used once the cluster passes.
    let targetVip: VipRecord | undefined
    let targetNetwork: NetworkRecord | undefined
    if (targetClusterId === null) {
      cluster = yield* tx.latestActiveCluster(accountId)
      if (cluster === undefined) {
        return yield* reject("no_active_cluster", "there is no active cluster in this account to join; bootstrap one with a k3s-server first")
      }
    } else {
      // R9: exists, same account, active. Another account's cluster looks exactly like a missing one.
      const [target, vipOfTarget, networkOfTarget] = yield* Effect.all(
        [
          tx.getCluster(accountId, targetClusterId as ClusterId),
          tx.findVipOfCluster(accountId, targetClusterId as ClusterId),
          tx.getNetworkOfCluster(accountId, targetClusterId as ClusterId)
        ],
        { concurrency: "unbounded" }
      )
      cluster = target
      targetVip = vipOfTarget
      targetNetwork = networkOfTarget
      if (cluster === undefined) {
        const elsewhere = yield* tx.clusterExistsInAnotherAccount(accountId, targetClusterId)
        return yield* reject(
          "cluster_not_found",
          `cluster ${targetClusterId} does not exist; check target_cluster_id in the template's module assignment (the clusters list shows the ids)`,
          elsewhere ? "cluster_wrong_account" : "cluster_not_found"
        )
      }
    }
    if (cluster.status !== "active") {
      return yield* reject(
        "cluster_not_active",
        `cluster ${cluster.id} is ${cluster.status}, not active; wait for it to become active or target another cluster`,
        "cluster_not_active",
        { cluster_status: cluster.status }
      )
    }
    // R8 + R11: the node must be on the cluster's network to reach the VIP.
    const peer = peers.find((p) => p.network_id === cluster.network_id)
    if (peer === undefined) {
      const clusterNetwork = yield* tx.getNetwork(accountId, cluster.network_id)
      const where = `cluster "${cluster.name}" (${cluster.id}) is on network "${clusterNetwork?.name ?? cluster.network_id}" (${cluster.network_id})`
      const how =
        assigned.selectedBy === "none"
          ? `; this node's template pins no cluster, so it was given the most recently activated one — if it belongs to another cluster, set target_cluster_id on its template "${template!.name}"`
          : ` (the cluster its template "${template!.name}" assigns)`
      return peers.length === 0 && role === "control-plane"
        ? yield* reject(
            "sdwan_peer_required",
            `a k3s server needs an SD-WAN peer on its cluster's network: ${where}; attach this instance with system_sdwan_attach_peer`
          )
        : yield* reject(
            "network_mismatch",
            `this node is not on its cluster's SD-WAN network, so it could not reach the API VIP: ${where}${how}. If this is the right cluster, attach the instance to that network`,
            "network_mismatch",
            { cluster_network_id: cluster.network_id, cluster_id: cluster.id, node_network_ids: peers.map((p) => p.network_id) }
          )
    }

    // R21: a config that would mix IP families is never rendered; k3s would refuse it anyway.
    const vip = targetClusterId === null ? yield* tx.findVipOfCluster(accountId, cluster.id) : targetVip
    const plan = yield* planK3sConfig(ctx, cluster, instance.id, role, {
      peer,
      vip,
      ...(node === undefined ? {} : { node }),
      ...(targetClusterId === null ? {} : { network: targetNetwork })
    })
    if (plan !== undefined && !plan.ok) {
      return yield* reject("address_family_mismatch", addressFamilyMismatchMessage(cluster, plan.mismatches), "address_family_mismatch", {
        cluster_id: cluster.id,
        mismatches: plan.mismatches
      })
    }

    const member: KubernetesNodeRecord = {
      id: newId("kubernetesNode"),
      account_id: accountId,
      cluster_id: cluster.id,
      instance_id: instance.id,
      role,
      status: "joining",
      joined_at: ctx.nowIso
    }
    yield* tx.insertKubernetesNode(member)
    if (role === "control-plane") {
      // R10: a joining server becomes a VIP failover candidate.
      if (vip !== undefined && !vip.failover_holder_peer_ids.includes(peer.id)) {
        yield* tx.updateVipIfEpoch(accountId, vip.id, vip.epoch, { failover_holder_peer_ids: [...vip.failover_holder_peer_ids, peer.id] })
      }
      yield* refreshHaWarnings(ctx, cluster)
    }
    // R26: a node that enters the VIP's reporter sample is told so with the network's routes.
    if (vip !== undefined && (yield* joinChangesProbeSample(ctx, vip, instance.id))) {
      yield* syncNetworkVipRoutes(ctx, accountId, cluster.network_id)
    }
    yield* ctx.emit(accountId, "kubernetes.join_accepted", {
      instance_id: instance.id,
      cluster_id: cluster.id,
      role,
      selected_by: assigned.selectedBy === "none" ? "most_recent_active_cluster" : assigned.selectedBy === "assignment" ? "assignment" : "target_cluster_id"
    })
    yield* syncClusterMember(ctx, cluster, member, plan)
    return yield* accept(cluster, role, false)
  })
