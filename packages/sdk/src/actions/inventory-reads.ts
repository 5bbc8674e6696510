/**
 * Read actions for every inventory kind (templates, nodes, instances, networks, peers, VIPs):
 * what `fleetplane <kind> list|get|describe`, the console and AI tools show. Wherever an id is
 * accepted the name an operator knows works too. Lists show hostnames and names, not only ids.
 */
import { Effect, Schema } from "effect"
import { InstanceStatus } from "../model/entities"
import { notFound } from "../model/errors"
import type { AccountId, NodeId } from "../model/ids"
import type { InstanceRecord, NodeRecord, TemplateRecord } from "../store/records"
import type { ReadContext } from "../domain/transactor"
import { AgentLiveness, type AgentLivenessService } from "../domain/liveness"
import { findInstance, requireTemplate } from "../inventory/inventory-lookups"
import { requireNetwork } from "../network/networks"
import { hostnameOf } from "../vip/failover"
import { defineAction, inReadTransaction } from "./action"
import {
  GetInstanceOutput,
  GetInventoryNodeOutput,
  GetNetworkOutput,
  GetTemplateOutput,
  ListInstancesOutput,
  ListInventoryNodesOutput,
  ListPeersOutput,
  ListTemplatesOutput,
  ListVipsOutput,
  type InventoryNodeView,
  type TemplateView
} from "./action-outputs"
import { Ref } from "./input-fields"
import { presentNetwork, presentPeer, presentVip } from "./presenters"

const presentTemplate = (template: TemplateRecord, nodeCount: number): TemplateView => ({
  id: template.id,
  name: template.name,
  modules: template.modules.map((m) => ({ module_name: m.module_name, module_version_id: m.module_version_id, config: m.config })),
  node_count: nodeCount,
  created_at: template.created_at
})

const presentNode = (node: NodeRecord, templateName: string | null, running: InstanceRecord | undefined): InventoryNodeView => ({
  id: node.id,
  hostname: node.hostname,
  node_template_id: node.node_template_id,
  template_name: templateName,
  instance_id: running?.id ?? null,
  created_at: node.created_at
})

/** An instance as operators see it: hostname, cluster membership, and whether its agent is connected. */
const presentInstance = (ctx: ReadContext, liveness: AgentLivenessService, accountId: AccountId, instance: InstanceRecord, hostname?: string) =>
  Effect.gen(function* () {
    const seen = liveness.get(instance.id)
    const membership = yield* ctx.tx.findKubernetesNodeOfInstance(accountId, instance.id)
    return {
      id: instance.id,
      node_id: instance.node_id,
      hostname: hostname ?? (yield* ctx.tx.getNode(accountId, instance.node_id))?.hostname ?? null,
      status: instance.status,
      cluster_id: membership?.cluster_id ?? null,
      role: membership?.role ?? null,
      // An instance is "running" from its provisioning; whether a machine is really there is this.
      agent: seen?.connected === true ? ("connected" as const) : ("disconnected" as const),
      last_seen_at: seen === undefined ? null : new Date(seen.lastSeenAt).toISOString(),
      created_at: instance.created_at
    }
  })

/** A node by id or hostname. */
export const requireNode = (ctx: ReadContext, accountId: AccountId, nodeRef: string) =>
  Effect.gen(function* () {
    const node = (yield* ctx.tx.getNode(accountId, nodeRef as NodeId)) ?? (yield* ctx.tx.findNodeByHostname(accountId, nodeRef))
    if (node === undefined) return yield* notFound("node_not_found", `there is no node "${nodeRef.slice(0, 128)}" (by id or hostname) in this account`, { node_id: nodeRef })
    return node
  })

export const systemListTemplates = defineAction({
  name: "system_list_templates",
  description: "The account's node templates with their module assignments and how many nodes use each.",
  destructive: false,
  access: "read",
  input: Schema.Struct({}),
  output: ListTemplatesOutput,
  run: (_input, { accountId }) =>
    inReadTransaction((ctx) =>
      Effect.gen(function* () {
        const nodes = yield* ctx.tx.listNodes(accountId)
        const templates = yield* ctx.tx.listTemplates(accountId)
        return { templates: templates.map((t) => presentTemplate(t, nodes.filter((n) => n.node_template_id === t.id).length)) }
      })
    )
})

export const systemGetTemplate = defineAction({
  name: "system_get_template",
  description: "One template (by id or name): its module assignments and the nodes made from it.",
  destructive: false,
  access: "read",
  input: Schema.Struct({ template_id: Ref }),
  output: GetTemplateOutput,
  run: (input, { accountId }) =>
    inReadTransaction((ctx) =>
      Effect.gen(function* () {
        const template = yield* requireTemplate(ctx, accountId, input.template_id)
        const nodes = (yield* ctx.tx.listNodes(accountId)).filter((n) => n.node_template_id === template.id)
        const withInstances = []
        for (const node of nodes) {
          withInstances.push({ id: node.id, hostname: node.hostname, instance_id: (yield* ctx.tx.findRunningInstanceOfNode(accountId, node.id))?.id ?? null })
        }
        return { ...presentTemplate(template, nodes.length), nodes: withInstances }
      })
    )
})

export const systemListNodes = defineAction({
  name: "system_list_nodes",
  description: "The account's nodes (machine roles) with their template and running instance; template_id (id or name) narrows to one template.",
  destructive: false,
  access: "read",
  input: Schema.Struct({ template_id: Schema.optionalKey(Ref) }),
  output: ListInventoryNodesOutput,
  run: (input, { accountId }) =>
    inReadTransaction((ctx) =>
      Effect.gen(function* () {
        const only = input.template_id === undefined ? undefined : yield* requireTemplate(ctx, accountId, input.template_id)
        const templates = new Map((yield* ctx.tx.listTemplates(accountId)).map((t) => [t.id as string, t.name]))
        const running = new Map((yield* ctx.tx.listInstances(accountId)).filter((i) => i.status === "running").map((i) => [i.node_id as string, i]))
        const nodes = (yield* ctx.tx.listNodes(accountId)).filter((n) => only === undefined || n.node_template_id === only.id)
        return { nodes: nodes.map((n) => presentNode(n, templates.get(n.node_template_id) ?? null, running.get(n.id))) }
      })
    )
})

export const systemGetNode = defineAction({
  name: "system_get_node",
  description: "One node (by id or hostname): its template, running instance and every instance it has had.",
  destructive: false,
  access: "read",
  input: Schema.Struct({ node_id: Ref }),
  output: GetInventoryNodeOutput,
  run: (input, { accountId }) =>
    inReadTransaction((ctx) =>
      Effect.gen(function* () {
        const node = yield* requireNode(ctx, accountId, input.node_id)
        const template = yield* ctx.tx.getTemplate(accountId, node.node_template_id)
        const instances = yield* ctx.tx.listInstancesOfNode(accountId, node.id)
        return {
          ...presentNode(node, template?.name ?? null, [...instances].reverse().find((i) => i.status === "running")),
          instances: instances.map((i) => ({ id: i.id, status: i.status, created_at: i.created_at }))
        }
      })
    )
})

export const systemListInstances = defineAction({
  name: "system_list_instances",
  description: "The account's instances with hostname, cluster membership and agent liveness; status narrows to running or terminated.",
  destructive: false,
  access: "read",
  input: Schema.Struct({ status: Schema.optionalKey(InstanceStatus) }),
  output: ListInstancesOutput,
  run: (input, { accountId }) =>
    Effect.gen(function* () {
      const liveness = yield* AgentLiveness
      return yield* inReadTransaction((ctx) =>
        Effect.gen(function* () {
          const hostnames = new Map((yield* ctx.tx.listNodes(accountId)).map((n) => [n.id as string, n.hostname]))
          const instances = (yield* ctx.tx.listInstances(accountId)).filter((i) => input.status === undefined || i.status === input.status)
          const views = []
          for (const instance of instances) views.push(yield* presentInstance(ctx, liveness, accountId, instance, hostnames.get(instance.node_id)))
          return { instances: views }
        })
      )
    })
})

export const systemGetInstance = defineAction({
  name: "system_get_instance",
  description:
    "One instance (by id, or its node's hostname): node, hostname, status, the cluster it belongs to, whether its agent is connected (agent, last_seen_at), and each config the gateway wants on it with the version its agent has applied.",
  destructive: false,
  access: "read",
  input: Schema.Struct({ instance_id: Ref }),
  output: GetInstanceOutput,
  run: (input, { accountId }) =>
    Effect.gen(function* () {
      const liveness = yield* AgentLiveness
      return yield* inReadTransaction((ctx) =>
        Effect.gen(function* () {
          const instance = yield* findInstance(ctx, accountId, input.instance_id)
          if (instance === undefined) {
            return yield* notFound("instance_not_found", `there is no instance "${input.instance_id}" (by id or hostname) in this account`, { instance_id: input.instance_id })
          }
          const configs = yield* ctx.tx.listDesiredConfigs(instance.id)
          return {
            ...(yield* presentInstance(ctx, liveness, accountId, instance)),
            configs: configs.map((c) => ({ kind: c.kind, key: c.key, version: c.version, applied_version: c.acked_version, error: c.ack_error, updated_at: c.updated_at }))
          }
        })
      )
    })
})

export const systemSdwanGetNetwork = defineAction({
  name: "system_sdwan_get_network",
  description: "One SD-WAN network (by id, handle or name): prefixes, how many peers, the clusters on it and their VIPs with holders.",
  destructive: false,
  access: "read",
  input: Schema.Struct({ network_id: Ref }),
  output: GetNetworkOutput,
  run: (input, { accountId }) =>
    inReadTransaction((ctx) =>
      Effect.gen(function* () {
        const network = yield* requireNetwork(ctx, accountId, input.network_id)
        const peers = yield* ctx.tx.listPeersOfNetwork(accountId, network.id)
        const clusters = (yield* ctx.tx.listClusters(accountId, true)).filter((c) => c.network_id === network.id)
        const vips = []
        for (const vip of yield* ctx.tx.listVipsOfNetwork(accountId, network.id)) vips.push(presentVip(vip, yield* hostnameOf(ctx, accountId, vip.holder_peer_id)))
        return {
          ...presentNetwork(network),
          peer_count: peers.length,
          clusters: clusters.map((c) => ({ id: c.id, name: c.name, status: c.status })),
          virtual_ips: vips
        }
      })
    )
})

export const systemSdwanListPeers = defineAction({
  name: "system_sdwan_list_peers",
  description: "The peers of an SD-WAN network (by id, handle or name) with hostnames, overlay addresses, endpoints, pod subnets and which one holds a VIP.",
  destructive: false,
  access: "read",
  input: Schema.Struct({ network_id: Ref }),
  output: ListPeersOutput,
  run: (input, { accountId }) =>
    inReadTransaction((ctx) =>
      Effect.gen(function* () {
        const network = yield* requireNetwork(ctx, accountId, input.network_id)
        const holders = new Set((yield* ctx.tx.listVipsOfNetwork(accountId, network.id)).map((v) => v.holder_peer_id))
        const peers = yield* ctx.tx.listPeersOfNetwork(accountId, network.id)
        return { peers: peers.map((p) => ({ ...presentPeer(p), hostname: p.hostname, holds_vip: holders.has(p.id) })) }
      })
    )
})

export const systemSdwanListVirtualIps = defineAction({
  name: "system_sdwan_list_virtual_ips",
  description: "Every cluster VIP of the account with its cluster's name, holder (peer and hostname), epoch and failover policy.",
  destructive: false,
  access: "read",
  input: Schema.Struct({}),
  output: ListVipsOutput,
  run: (_input, { accountId }) =>
    inReadTransaction((ctx) =>
      Effect.gen(function* () {
        const clusters = new Map((yield* ctx.tx.listClusters(accountId, true)).map((c) => [c.id as string, c.name]))
        const views = []
        for (const vip of yield* ctx.tx.listVips(accountId)) {
          views.push({ ...presentVip(vip, yield* hostnameOf(ctx, accountId, vip.holder_peer_id)), cluster_name: clusters.get(vip.cluster_id) ?? null })
        }
        return { virtual_ips: views }
      })
    )
})
