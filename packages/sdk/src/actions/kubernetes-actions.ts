/**
 * Kubernetes actions from the runbook's phases 4-6: listing and inspecting clusters,
 * kubeconfigs, decommissioning, token rotation.
 */
import { Clock, Effect, Schema } from "effect"
import { AgentLiveness, isSilentNow } from "../domain/liveness"
import { FleetConfig } from "../domain/fleet-config"
import { stateError } from "../model/errors"
import { ClusterName } from "../model/entities"
import type { InstanceId } from "../model/ids"
import { issueClientCertificate, subjectSafe } from "../config/certificates"

/** A kubeconfig handed to an operator is short-lived unless asked otherwise. */
export const DEFAULT_KUBECONFIG_HOURS = 24
import { renderKubeconfig } from "../config/kubeconfig"
import { decommissionCluster, describeDecommission, requireCluster, rotateJoinToken } from "../cluster/lifecycle"
import { hostnameOf } from "../vip/failover"
import { defineAction, inReadTransaction, inTransaction } from "./action"
import { DecommissionClusterOutput, GetClusterOutput, GetKubeconfigOutput, ListClustersOutput, ListNodesOutput, RotateTokenOutput } from "./action-outputs"
import { Ref } from "./input-fields"
import { presentCluster, presentKubernetesNode, presentVip } from "./presenters"


export const kubernetesListClusters = defineAction({
  name: "kubernetes_list_clusters",
  description: "List the account's K3s clusters (decommissioned ones only with include_decommissioned).",
  destructive: false,
  access: "read",
  input: Schema.Struct({ include_decommissioned: Schema.optionalKey(Schema.Boolean) }),
  output: ListClustersOutput,
  run: (input, { accountId }) =>
    inReadTransaction((ctx) =>
      Effect.map(ctx.tx.listClusters(accountId, input.include_decommissioned ?? false), (clusters) => ({ clusters: clusters.map(presentCluster) }))
    )
})

export const kubernetesGetCluster = defineAction({
  name: "kubernetes_get_cluster",
  description: "One cluster with its status, version, node count, VIP and HA warnings.",
  destructive: false,
  access: "read",
  input: Schema.Struct({ id: Ref }),
  output: GetClusterOutput,
  run: (input, { accountId }) =>
    inReadTransaction((ctx) =>
      Effect.gen(function* () {
        const cluster = yield* requireCluster(ctx, accountId, input.id)
        const nodes = yield* ctx.tx.listKubernetesNodes(accountId, cluster.id)
        const vip = yield* ctx.tx.findVipOfCluster(accountId, cluster.id)
        return {
          ...presentCluster(cluster),
          node_count: nodes.length,
          control_plane_count: nodes.filter((n) => n.role === "control-plane").length,
          worker_count: nodes.filter((n) => n.role === "worker").length,
          virtual_ip: vip === undefined ? null : presentVip(vip, yield* hostnameOf(ctx, accountId, vip.holder_peer_id))
        }
      })
    )
})

export const kubernetesListNodes = defineAction({
  name: "kubernetes_list_nodes",
  description:
    "The Kubernetes nodes of a cluster: control-plane servers and workers, with their status (as k3s last reported it) and whether their agent is heartbeating now.",
  destructive: false,
  access: "read",
  input: Schema.Struct({ cluster_id: Ref }),
  output: ListNodesOutput,
  run: (input, { accountId }) =>
    Effect.gen(function* () {
      const liveness = yield* AgentLiveness
      const config = yield* FleetConfig
      const now = yield* Clock.currentTimeMillis
      return yield* inReadTransaction((ctx) =>
        Effect.gen(function* () {
          const cluster = yield* requireCluster(ctx, accountId, input.cluster_id)
          const nodes = yield* ctx.tx.listKubernetesNodes(accountId, cluster.id)
          const result = []
          for (const node of nodes) {
            const instance = yield* ctx.tx.getInstance(accountId, node.instance_id as InstanceId)
            const host = instance === undefined ? undefined : yield* ctx.tx.getNode(accountId, instance.node_id)
            const seen = liveness.get(node.instance_id)
            const silent = seen === undefined || !seen.connected || isSilentNow(seen, liveness.startedAt, now, config)
            const presented = presentKubernetesNode(node, host?.hostname ?? null)
            result.push({
              ...presented,
              // As kubectl shows NotReady: a node whose agent is silent is not known to be ready, whatever k3s last said.
              status: silent && presented.status === "ready" ? ("not_ready" as const) : presented.status,
              agent: silent ? ("silent" as const) : ("heartbeating" as const),
              last_heartbeat_at: seen === undefined ? null : new Date(seen.lastSeenAt).toISOString()
            })
          }
          return { nodes: result }
        })
      )
    })
})

export const kubernetesGetKubeconfig = defineAction({
  name: "kubernetes_get_kubeconfig",
  description:
    "An admin kubeconfig for a cluster (by id or name): server is the VIP endpoint, the user a fresh client certificate signed by the cluster CA, named after the API key that asked (CN fleetplane:<key name>:<key id>) and valid expires_in_hours (default 24). The context is named after the cluster (context_name overrides it), the cluster and user entries after its id, so kubeconfigs merge cleanly.",
  destructive: false,
  access: "admin",
  input: Schema.Struct({
    cluster_id: Ref,
    context_name: Schema.optionalKey(ClusterName),
    /** How long the client certificate is valid (default 24 hours, at most a year): a kubeconfig cannot be revoked, only outlived. */
    expires_in_hours: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 8760 })))
  }),
  output: GetKubeconfigOutput,
  run: (input, { accountId, caller }) =>
    Effect.gen(function* () {
      const now = new Date(yield* Clock.currentTimeMillis)
      const validityMs = (input.expires_in_hours ?? DEFAULT_KUBECONFIG_HOURS) * 3_600_000
      // The certificate names who asked (Kubernetes audit logs show the CN as the user).
      const commonName = caller.api_key_id === undefined ? `fleetplane:${caller.name ?? "host"}` : `fleetplane:${caller.name ?? "key"}:${caller.api_key_id}`
      const cluster = yield* inTransaction((ctx) =>
        Effect.gen(function* () {
          const found = yield* requireCluster(ctx, accountId, input.cluster_id)
          if (found.status === "decommissioned") {
            return yield* stateError("cluster_decommissioned", `cluster ${found.id} is decommissioned; it has no API to reach`, { cluster_id: found.id })
          }
          // Audit: who got credentials to which cluster, until when (the certificate itself is never logged).
          yield* ctx.emit(accountId, "kubernetes.kubeconfig_issued", {
            cluster_id: found.id,
            api_endpoint: found.api_endpoint,
            issued_to: { api_key_id: caller.api_key_id ?? null, name: caller.name ?? null, role: caller.role },
            common_name: subjectSafe(commonName),
            expires_at: new Date(now.getTime() + validityMs).toISOString()
          })
          return found
        })
      )
      const client = yield* Effect.promise(() =>
        issueClientCertificate({ certPem: cluster.ca_cert_pem, keyPem: cluster.ca_key_pem }, commonName, "system:masters", now, validityMs)
      )
      const kubeconfig = renderKubeconfig({
        clusterName: cluster.name,
        clusterId: cluster.id,
        ...(input.context_name === undefined ? {} : { contextName: input.context_name }),
        apiEndpoint: cluster.api_endpoint,
        caCertPem: cluster.ca_cert_pem,
        clientCertPem: client.certPem,
        clientKeyPem: client.keyPem
      })
      return { kubeconfig, api_endpoint: cluster.api_endpoint, expires_at: new Date(now.getTime() + validityMs).toISOString() }
    })
})

export const kubernetesDecommissionCluster = defineAction({
  name: "kubernetes_decommission_cluster",
  description:
    "Decommission a cluster: removes its Kubernetes node records, releases its VIP, revokes its token and tells its agents to leave. Instances keep running.",
  destructive: true,
  access: "admin",
  input: Schema.Struct({ cluster_id: Ref }),
  output: DecommissionClusterOutput,
  describe: (input, { accountId }) => inTransaction((ctx) => describeDecommission(ctx, accountId, input.cluster_id)),
  run: (input, { accountId }) => inTransaction((ctx) => decommissionCluster(ctx, accountId, input.cluster_id))
})

export const kubernetesRotateToken = defineAction({
  name: "kubernetes_rotate_token",
  description: "Rotate a cluster's join token; every connected member agent receives the new token.",
  destructive: true,
  access: "admin",
  input: Schema.Struct({ cluster_id: Ref }),
  output: RotateTokenOutput,
  describe: (input, { accountId }) =>
    inTransaction((ctx) =>
      Effect.map(requireCluster(ctx, accountId, input.cluster_id), (cluster) => ({
        summary: `rotate the join token of cluster "${cluster.name}" (${cluster.id}); nodes that have not received the new token cannot join until they do`,
        changes: { cluster_id: cluster.id, token_version: cluster.token_version + 1 }
      }))
    ),
  run: (input, { accountId }) => inTransaction((ctx) => rotateJoinToken(ctx, accountId, input.cluster_id))
})
