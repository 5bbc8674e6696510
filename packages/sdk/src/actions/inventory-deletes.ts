/**
 * Deleting inventory where the domain allows it: what was made by mistake (a typo in a
 * template, a node never provisioned, an empty network) goes; what has history stays and the
 * error says what to do instead. Detaching a peer takes a machine off a network and asks for
 * confirmation. Instances are terminated (system_terminate_instance), clusters decommissioned.
 */
import { Effect, Schema } from "effect"
import { notFound, stateError } from "../model/errors"
import type { AccountId } from "../model/ids"
import type { TxContext } from "../domain/transactor"
import { requireRunningInstance, requireTemplate } from "../inventory/inventory-lookups"
import { requireNetwork } from "../network/networks"
import { ensurePeerHoldsNoVip, removePeer } from "../network/peer-removal"
import { defineAction, inTransaction } from "./action"
import { DeleteNetworkOutput, DeleteNodeOutput, DeleteTemplateOutput, DetachPeerOutput } from "./action-outputs"
import { Ref } from "./input-fields"
import { requireNode } from "./inventory-reads"

export const systemDeleteTemplate = defineAction({
  name: "system_delete_template",
  description: "Delete a template (by id or name) that no node uses, with its module assignments.",
  destructive: false,
  access: "operate",
  input: Schema.Struct({ template_id: Ref }),
  output: DeleteTemplateOutput,
  run: (input, { accountId }) =>
    inTransaction((ctx) =>
      Effect.gen(function* () {
        const template = yield* requireTemplate(ctx, accountId, input.template_id)
        const users = (yield* ctx.tx.listNodes(accountId)).filter((n) => n.node_template_id === template.id)
        if (users.length > 0) {
          return yield* stateError(
            "template_in_use",
            `template "${template.name}" is used by ${users.length} node(s) (${users.slice(0, 5).map((n) => n.hostname).join(", ")}${users.length > 5 ? ", …" : ""}); delete those nodes first`,
            { template_id: template.id, node_count: users.length }
          )
        }
        yield* ctx.tx.deleteTemplate(accountId, template.id)
        yield* ctx.emit(accountId, "system.template_deleted", { template_id: template.id, name: template.name })
        return { template_id: template.id, deleted: true as const }
      })
    )
})

export const systemDeleteNode = defineAction({
  name: "system_delete_node",
  description: "Delete a node (by id or hostname) that was never provisioned. A node with instances keeps its history: terminate its instance instead.",
  destructive: false,
  access: "operate",
  input: Schema.Struct({ node_id: Ref }),
  output: DeleteNodeOutput,
  run: (input, { accountId }) =>
    inTransaction((ctx) =>
      Effect.gen(function* () {
        const node = yield* requireNode(ctx, accountId, input.node_id)
        const instances = yield* ctx.tx.listInstancesOfNode(accountId, node.id)
        if (instances.length > 0) {
          const running = instances.find((i) => i.status === "running")
          return yield* stateError(
            "node_has_instances",
            running === undefined
              ? `node "${node.hostname}" has had instances and keeps their history; it cannot be deleted`
              : `node "${node.hostname}" has a running instance ${running.id}; terminate it first (a node that has had instances keeps their history and is not deleted)`,
            { node_id: node.id, instance_id: running?.id ?? null }
          )
        }
        yield* ctx.tx.deleteNode(accountId, node.id)
        yield* ctx.emit(accountId, "system.node_deleted", { node_id: node.id, hostname: node.hostname })
        return { node_id: node.id, deleted: true as const }
      })
    )
})

export const systemSdwanDeleteNetwork = defineAction({
  name: "system_sdwan_delete_network",
  description: "Delete an SD-WAN network (by id, handle or name) with no peers and no clusters (decommissioned ones included: they keep their history).",
  destructive: false,
  access: "operate",
  input: Schema.Struct({ network_id: Ref }),
  output: DeleteNetworkOutput,
  run: (input, { accountId }) =>
    inTransaction((ctx) =>
      Effect.gen(function* () {
        const network = yield* requireNetwork(ctx, accountId, input.network_id)
        const clusters = (yield* ctx.tx.listClusters(accountId, true)).filter((c) => c.network_id === network.id)
        if (clusters.length > 0) {
          return yield* stateError("network_has_clusters", `network "${network.name}" carries cluster(s) ${clusters.map((c) => c.name).join(", ")} and keeps their history; it cannot be deleted`, {
            network_id: network.id
          })
        }
        const peers = yield* ctx.tx.listPeersOfNetwork(accountId, network.id)
        if (peers.length > 0) {
          return yield* stateError("network_has_peers", `network "${network.name}" has ${peers.length} peer(s); detach them first`, { network_id: network.id, peer_count: peers.length })
        }
        yield* ctx.tx.deleteNetwork(accountId, network.id)
        yield* ctx.emit(accountId, "sdwan.network_deleted", { network_id: network.id, name: network.name })
        return { network_id: network.id, deleted: true as const }
      })
    )
})

/** The peer to detach, refused while its instance needs the network (it holds a VIP, or its cluster runs on it). */
const detachablePeer = (ctx: TxContext, accountId: AccountId, input: { readonly network_id: string; readonly node_instance_id: string }) =>
  Effect.gen(function* () {
    const network = yield* requireNetwork(ctx, accountId, input.network_id)
    const instance = yield* requireRunningInstance(ctx, accountId, input.node_instance_id)
    const peer = yield* ctx.tx.findPeer(accountId, network.id, instance.id)
    if (peer === undefined) {
      return yield* notFound("peer_not_found", `instance ${instance.id} is not attached to network "${network.name}"`, { network_id: network.id, instance_id: instance.id })
    }
    yield* ensurePeerHoldsNoVip(ctx, accountId, peer)
    const membership = yield* ctx.tx.findKubernetesNodeOfInstance(accountId, instance.id)
    const cluster = membership === undefined ? undefined : yield* ctx.tx.getCluster(accountId, membership.cluster_id)
    if (cluster !== undefined && cluster.network_id === network.id && cluster.status !== "decommissioned") {
      return yield* stateError(
        "peer_in_use_by_cluster",
        `instance ${instance.id} is a ${membership!.role} of cluster "${cluster.name}", which runs on network "${network.name}"; terminate the instance or decommission the cluster instead`,
        { network_id: network.id, instance_id: instance.id, cluster_id: cluster.id }
      )
    }
    return { peer, network }
  })

export const systemSdwanDetachPeer = defineAction({
  name: "system_sdwan_detach_peer",
  description:
    "Detach an instance from an SD-WAN network: every other peer's config loses it and its addresses are free again. Refused while it holds a VIP or its cluster runs on the network. The detached machine keeps its own interface (now without peers) until it is reconfigured by hand or terminated.",
  destructive: true,
  access: "admin",
  input: Schema.Struct({ network_id: Ref, node_instance_id: Ref }),
  output: DetachPeerOutput,
  describe: (input, { accountId }) =>
    inTransaction((ctx) =>
      Effect.map(detachablePeer(ctx, accountId, input), ({ peer, network }) => ({
        summary: `detach instance ${peer.instance_id} (${peer.overlay_address}) from network "${network.name}": every other peer's WireGuard config loses it`,
        changes: { peer_id: peer.id, network_id: network.id, instance_id: peer.instance_id }
      }))
    ),
  run: (input, { accountId }) =>
    inTransaction((ctx) =>
      Effect.gen(function* () {
        const { peer, network } = yield* detachablePeer(ctx, accountId, input)
        yield* removePeer(ctx, accountId, peer)
        yield* ctx.emit(accountId, "sdwan.peer_detached", { peer_id: peer.id, network_id: network.id, instance_id: peer.instance_id })
        return { peer_id: peer.id, network_id: network.id, instance_id: peer.instance_id, detached: true as const }
      })
    )
})
