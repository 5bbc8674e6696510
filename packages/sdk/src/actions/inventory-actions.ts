/**
 * Inventory actions: templates and module assignments, nodes, instances, SD-WAN networks
 * and peers (runbook steps 1-3 of each phase).
 */
import { Effect, Schema } from "effect"
import { conflict, invalidInput, notFound } from "../model/errors"
import { ModuleConfig, ModuleName } from "../model/entities"
import { newId, type InstanceId, type NodeId } from "../model/ids"
import { hashSecret, newAgentCredential } from "../agents/credentials"
import { rotateAgentCredential } from "../agents/credential-rotation"
import { requestNetworkWireguardSync } from "../config/network-syncer"
import { ensurePeerHoldsNoVip, removePeer } from "../network/peer-removal"
import { attachPeer, createNetwork } from "../network/networks"
import { requireRunningInstance, requireTemplate } from "../inventory/inventory-lookups"
import { AgentLiveness } from "../domain/liveness"
import { refreshHaWarnings } from "../cluster/ha-warnings"
import { requireCluster } from "../cluster/lifecycle"
import { runningInstancesOfTemplate, syncInstanceAssignments } from "../cluster/assignments"
import { defineAction, inReadTransaction, inTransaction } from "./action"
import { AssignModuleOutput, AttachPeerOutput, CreateNetworkOutput, CreateNodeOutput, CreateTemplateOutput, ListNetworksOutput, ProvisionInstanceOutput, RotateAgentCredentialOutput, TerminateInstanceOutput } from "./action-outputs"
import { CidrText, Ref, Text } from "./input-fields"
import { presentNetwork, presentPeer } from "./presenters"


/** RFC 1123 label: what k3s accepts as a node name. */
const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

export const systemCreateTemplate = defineAction({
  name: "system_create_template",
  description: "Create a node template; modules (k3s-server, k3s-agent) are assigned to templates.",
  destructive: false,
  access: "operate",
  input: Schema.Struct({ name: Text }),
  output: CreateTemplateOutput,
  run: (input, { accountId }) =>
    inTransaction((ctx) =>
      Effect.gen(function* () {
        if ((yield* ctx.tx.findTemplateByName(accountId, input.name)) !== undefined) {
          return yield* conflict("template_name_taken", `a template named "${input.name}" already exists in this account`, { name: input.name })
        }
        const id = newId("template")
        yield* ctx.tx.insertTemplate({ id, account_id: accountId, name: input.name, modules: [], created_at: ctx.nowIso })
        yield* ctx.emit(accountId, "system.template_created", { template_id: id, name: input.name })
        return { id, name: input.name }
      })
    )
})

export const systemAssignModuleToTemplate = defineAction({
  name: "system_assign_module_to_template",
  description:
    "Assign k3s-server or k3s-agent to a template. config.target_cluster_id picks the cluster to join; a k3s-server without one creates a cluster.",
  destructive: false,
  access: "operate",
  input: Schema.Struct({
    template_id: Ref,
    module_name: ModuleName,
    module_version_id: Schema.optionalKey(Schema.NullOr(Ref)),
    config: Schema.optionalKey(ModuleConfig)
  }),
  output: AssignModuleOutput,
  run: (input, { accountId }) =>
    inTransaction((ctx) =>
      Effect.gen(function* () {
        const template = yield* requireTemplate(ctx, accountId, input.template_id)
        let config = input.config ?? {}
        // Catch a wrong target now rather than at the agent's next join (runbook: "the critical step");
        // a cluster's name works too, and the id is what is stored.
        if (config.target_cluster_id != null) {
          const cluster = yield* requireCluster(ctx, accountId, config.target_cluster_id)
          config = { ...config, target_cluster_id: cluster.id }
        }
        const assignment = { module_name: input.module_name, module_version_id: input.module_version_id ?? null, config }
        yield* ctx.tx.putModuleAssignment(template.id, assignment)
        yield* ctx.emit(accountId, "system.module_assigned", { template_id: template.id, ...assignment })
        // R24: the agents of the template's instances are told at once.
        const updated = { ...template, modules: [...template.modules.filter((m) => m.module_name !== assignment.module_name), assignment] }
        yield* syncInstanceAssignments(ctx, updated, yield* runningInstancesOfTemplate(ctx, accountId, updated))
        return { template_id: template.id, ...assignment }
      })
    )
})

export const systemCreateNode = defineAction({
  name: "system_create_node",
  description: "Create a node (a machine role) from a template. hostname becomes the Kubernetes node name.",
  destructive: false,
  access: "operate",
  input: Schema.Struct({ hostname: Text, node_template_id: Ref }),
  output: CreateNodeOutput,
  run: (input, { accountId }) =>
    inTransaction((ctx) =>
      Effect.gen(function* () {
        if (!HOSTNAME.test(input.hostname)) {
          return yield* invalidInput(
            "invalid_hostname",
            `hostname "${input.hostname}" must be an RFC 1123 label: 1-63 characters of a-z, 0-9 and "-", starting and ending with a letter or digit`,
            { hostname: input.hostname }
          )
        }
        const template = yield* requireTemplate(ctx, accountId, input.node_template_id)
        if ((yield* ctx.tx.findNodeByHostname(accountId, input.hostname)) !== undefined) {
          return yield* conflict("hostname_taken", `a node with hostname "${input.hostname}" already exists in this account`, { hostname: input.hostname })
        }
        const id = newId("node")
        yield* ctx.tx.insertNode({ id, account_id: accountId, hostname: input.hostname, node_template_id: template.id, created_at: ctx.nowIso })
        yield* ctx.emit(accountId, "system.node_created", { node_id: id, hostname: input.hostname, node_template_id: template.id })
        return { id, hostname: input.hostname, node_template_id: template.id }
      })
    )
})

export const systemProvisionInstance = defineAction({
  name: "system_provision_instance",
  description: "Provision a NodeInstance for a node. The result's agent_credential is shown once: give it to the node's agent.",
  destructive: false,
  // A credential: with it a machine joins a cluster and, as a server, receives its admin kubeconfig.
  access: "admin",
  input: Schema.Struct({ node_id: Ref }),
  output: ProvisionInstanceOutput,
  run: (input, { accountId }) =>
    inTransaction((ctx) =>
      Effect.gen(function* () {
        // By id, or by hostname.
        const node = (yield* ctx.tx.getNode(accountId, input.node_id as NodeId)) ?? (yield* ctx.tx.findNodeByHostname(accountId, input.node_id))
        if (node === undefined) return yield* notFound("node_not_found", `there is no node "${input.node_id}" (by id or hostname) in this account`, { node_id: input.node_id })
        const id = newId("instance")
        const credential = newAgentCredential()
        yield* ctx.tx.insertInstance({ id, account_id: accountId, node_id: node.id, status: "running", credential_hash: hashSecret(credential), created_at: ctx.nowIso })
        yield* ctx.emit(accountId, "system.instance_provisioned", { instance_id: id, node_id: node.id, hostname: node.hostname })
        const template = yield* ctx.tx.getTemplate(accountId, node.node_template_id)
        if (template !== undefined) yield* syncInstanceAssignments(ctx, template, [id])
        return { id, node_id: node.id, hostname: node.hostname, status: "running" as const, agent_credential: credential }
      })
    )
})

export const systemTerminateInstance = defineAction({
  name: "system_terminate_instance",
  description:
    "Terminate an instance: its agent is disconnected (4006), its credential stops working, and it leaves its cluster and every SD-WAN network (R25). Refused while it holds a VIP.",
  destructive: true,
  access: "admin",
  input: Schema.Struct({ instance_id: Ref }),
  output: TerminateInstanceOutput,
  describe: (input, { accountId }) =>
    inTransaction((ctx) =>
      Effect.map(requireRunningInstance(ctx, accountId, input.instance_id), (instance) => ({
        summary: `terminate instance ${instance.id}: its agent is disconnected, its credential stops working, and it is removed from its cluster and from every SD-WAN network`,
        changes: { instance_id: instance.id, status: "terminated" }
      }))
    ),
  run: (input, { accountId }) =>
    inTransaction((ctx) =>
      Effect.gen(function* () {
        const instance = yield* requireRunningInstance(ctx, accountId, input.instance_id)
        const peers = yield* ctx.tx.listPeersOfInstance(accountId, instance.id)
        for (const peer of peers) yield* ensurePeerHoldsNoVip(ctx, accountId, peer)
        const membership = yield* ctx.tx.findKubernetesNodeOfInstance(accountId, instance.id)
        if (membership !== undefined) {
          yield* ctx.tx.deleteKubernetesNodeOfInstance(accountId, instance.id)
          const cluster = yield* ctx.tx.getCluster(accountId, membership.cluster_id)
          if (cluster !== undefined && membership.role === "control-plane") yield* refreshHaWarnings(ctx, cluster)
        }
        // R25: its peers leave every network config; their addresses are free again.
        for (const peer of peers) yield* removePeer(ctx, accountId, peer)
        yield* ctx.tx.setInstanceStatus(accountId, instance.id, "terminated")
        yield* ctx.emit(accountId, "system.instance_terminated", {
          instance_id: instance.id,
          cluster_id: membership?.cluster_id ?? null,
          peers_removed: peers.map((p) => p.id)
        })
        return { instance_id: instance.id as InstanceId, status: "terminated" as const }
      })
    )
})

export const systemRotateAgentCredential = defineAction({
  name: "system_rotate_agent_credential",
  description:
    "Give an instance's agent a new credential (shown once in the result) and deliver it over the agent's session. The previous credential keeps working until the agent confirms the new one or grace_hours (default 24, at most 720) pass, so a lost credential is not fatal and a connected agent is never locked out.",
  destructive: false,
  access: "admin",
  input: Schema.Struct({
    instance_id: Ref,
    grace_hours: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 720 })))
  }),
  output: RotateAgentCredentialOutput,
  run: (input, { accountId, caller }) =>
    Effect.gen(function* () {
      const liveness = yield* AgentLiveness
      return yield* inTransaction((ctx) =>
        Effect.gen(function* () {
          const instance = yield* requireRunningInstance(ctx, accountId, input.instance_id)
          const node = yield* ctx.tx.getNode(accountId, instance.node_id)
          const hostname = node?.hostname ?? null
          const { credential, previousValidUntil } = yield* rotateAgentCredential(ctx, accountId, instance, hostname, input.grace_hours ?? 24, caller.name ?? caller.api_key_id ?? null)
          const connected = liveness.get(instance.id)?.connected === true
          return {
            instance_id: instance.id as InstanceId,
            hostname,
            agent_credential: credential,
            previous_valid_until: previousValidUntil,
            delivery: connected ? ("pushed to the connected agent" as const) : ("pushed when the agent next connects" as const)
          }
        })
      )
    })
})

export const systemSdwanCreateNetwork = defineAction({
  name: "system_sdwan_create_network",
  description:
    "Create an SD-WAN network (WireGuard interface wg-sdwan-<handle>). pod_subnet_prefix must be canonical and distinct within the account and decides the IP family of clusters on it (IPv4 when omitted); overlay_prefix (an IPv6 /64) and overlay_ipv4_prefix (a free /20 of 100.64.0.0/10) are allocated when omitted.",
  destructive: false,
  access: "operate",
  input: Schema.Struct({
    name: Text,
    handle: Schema.String.check(Schema.isMaxLength(64)),
    pod_subnet_prefix: Schema.optionalKey(Schema.NullOr(CidrText)),
    overlay_prefix: Schema.optionalKey(Schema.NullOr(CidrText)),
    overlay_ipv4_prefix: Schema.optionalKey(Schema.NullOr(CidrText)),
    listen_port: Schema.optionalKey(Schema.Int)
  }),
  output: CreateNetworkOutput,
  run: (input, { accountId }) =>
    inTransaction((ctx) => Effect.map(createNetwork(ctx, accountId, input), ({ network, warnings }) => ({ ...presentNetwork(network), warnings })))
})

export const systemSdwanListNetworks = defineAction({
  name: "system_sdwan_list_networks",
  description: "The account's SD-WAN networks with their interface names, overlay and pod prefixes.",
  destructive: false,
  access: "read",
  input: Schema.Struct({}),
  output: ListNetworksOutput,
  run: (_input, { accountId }) => inReadTransaction((ctx) => Effect.map(ctx.tx.listNetworks(accountId), (networks) => ({ networks: networks.map(presentNetwork) })))
})

export const systemSdwanAttachPeer = defineAction({
  name: "system_sdwan_attach_peer",
  description: "Attach an instance to an SD-WAN network as a WireGuard peer (required for k3s servers: the VIP lives there).",
  destructive: false,
  access: "operate",
  input: Schema.Struct({ network_id: Ref, node_instance_id: Ref }),
  output: AttachPeerOutput,
  run: (input, { accountId }) =>
    inTransaction((ctx) =>
      Effect.gen(function* () {
        const { peer, network, created } = yield* attachPeer(ctx, accountId, input.network_id, input.node_instance_id)
        // Rendered by the syncer moments later, not in this request: at 1,000 peers a render is
        // seconds of work that would hold up every agent and admin call behind it (#20).
        if (created) yield* requestNetworkWireguardSync(ctx, accountId, network.id)
        return { ...presentPeer(peer), interface_name: network.interface_name }
      })
    )
})
