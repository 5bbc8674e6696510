/**
 * The action catalog (SPEC §5): every runbook action under its runbook name. The same
 * catalog backs the Effect API, the Promise facade, the gateway's HTTP API and CLI, and
 * AI tools (through `describeActions`, which publishes each input's and output's JSON Schema).
 */
import { Schema } from "effect"
import type { ActionDefinition } from "./action"
import type { ApiKeyRole } from "../accounts/roles"
import {
  systemAssignModuleToTemplate,
  systemCreateNode,
  systemCreateTemplate,
  systemProvisionInstance,
  systemRotateAgentCredential,
  systemSdwanAttachPeer,
  systemSdwanCreateNetwork,
  systemSdwanListNetworks,
  systemTerminateInstance
} from "./inventory-actions"
import {
  systemGetInstance,
  systemGetNode,
  systemGetTemplate,
  systemListInstances,
  systemListNodes,
  systemListTemplates,
  systemSdwanGetNetwork,
  systemSdwanListPeers,
  systemSdwanListVirtualIps
} from "./inventory-reads"
import { systemDeleteNode, systemDeleteTemplate, systemSdwanDeleteNetwork, systemSdwanDetachPeer } from "./inventory-deletes"
import {
  kubernetesDecommissionCluster,
  kubernetesGetCluster,
  kubernetesGetKubeconfig,
  kubernetesListClusters,
  kubernetesListNodes,
  kubernetesRotateToken
} from "./kubernetes-actions"
import { executeSkill, skillListRuns, skillRunAbort, skillRunResume, skillRunStatus, systemListEvents } from "./system-actions"
import { systemApprove, systemListApprovals, systemReject, systemSdwanFailoverVirtualIp } from "./vip-actions"

export const actionCatalog = {
  system_create_template: systemCreateTemplate,
  system_list_templates: systemListTemplates,
  system_get_template: systemGetTemplate,
  system_delete_template: systemDeleteTemplate,
  system_assign_module_to_template: systemAssignModuleToTemplate,
  system_create_node: systemCreateNode,
  system_list_nodes: systemListNodes,
  system_get_node: systemGetNode,
  system_delete_node: systemDeleteNode,
  system_provision_instance: systemProvisionInstance,
  system_list_instances: systemListInstances,
  system_get_instance: systemGetInstance,
  system_terminate_instance: systemTerminateInstance,
  system_rotate_agent_credential: systemRotateAgentCredential,
  system_sdwan_create_network: systemSdwanCreateNetwork,
  system_sdwan_list_networks: systemSdwanListNetworks,
  system_sdwan_get_network: systemSdwanGetNetwork,
  system_sdwan_delete_network: systemSdwanDeleteNetwork,
  system_sdwan_attach_peer: systemSdwanAttachPeer,
  system_sdwan_list_peers: systemSdwanListPeers,
  system_sdwan_detach_peer: systemSdwanDetachPeer,
  system_sdwan_list_virtual_ips: systemSdwanListVirtualIps,
  kubernetes_list_clusters: kubernetesListClusters,
  kubernetes_get_cluster: kubernetesGetCluster,
  kubernetes_list_nodes: kubernetesListNodes,
  kubernetes_get_kubeconfig: kubernetesGetKubeconfig,
  kubernetes_decommission_cluster: kubernetesDecommissionCluster,
  kubernetes_rotate_token: kubernetesRotateToken,
  system_sdwan_failover_virtual_ip: systemSdwanFailoverVirtualIp,
  system_list_approvals: systemListApprovals,
  system_approve: systemApprove,
  system_reject: systemReject,
  system_list_events: systemListEvents,
  execute_skill: executeSkill,
  skill_run_status: skillRunStatus,
  skill_list_runs: skillListRuns,
  skill_run_resume: skillRunResume,
  skill_run_abort: skillRunAbort
} as const

export type ActionCatalog = typeof actionCatalog
export type ActionName = keyof ActionCatalog
export type ActionInput<N extends ActionName> = ActionCatalog[N] extends ActionDefinition<infer I, any> ? I : never
export type ActionOutput<N extends ActionName> = ActionCatalog[N] extends ActionDefinition<any, infer O> ? O : never

export interface ActionDescription {
  readonly name: ActionName
  readonly description: string
  readonly destructive: boolean
  /** The role an API key needs (`read` < `operate` < `admin`); for a dry run of a destructive action, `read`. */
  readonly access: ApiKeyRole
  /** JSON Schema (draft 2020-12) of the input; destructive actions also accept `confirmation_token`. */
  readonly input_schema: unknown
  /** JSON Schema (draft 2020-12) of the result, in the same document form as `input_schema`. */
  readonly output_schema: unknown
}

export const isActionName = (name: string): name is ActionName => Object.hasOwn(actionCatalog, name)

const CLOSED = { onExcessProperty: "error" } as const

export const describeActions = (): ReadonlyArray<ActionDescription> =>
  Object.values(actionCatalog).map((action: ActionDefinition) => {
    // Closed objects, as the executor decodes (unknown fields are refused) and as results are built.
    const document = Schema.toJsonSchemaDocument(action.input, CLOSED) as { schema: Record<string, unknown> }
    const schema = { ...document, schema: { ...document.schema } }
    if (action.destructive) {
      const properties = (schema.schema.properties ?? {}) as Record<string, unknown>
      schema.schema.properties = {
        ...properties,
        confirmation_token: { type: "string", description: "the one-time token from a confirmation_required answer" }
      }
    }
    // What the action needs as called (a dry-run capable action publishes what its real run needs).
    const access = typeof action.access === "function" ? action.access({}) : action.access
    return {
      name: action.name as ActionName,
      description: action.description,
      destructive: action.destructive,
      access,
      input_schema: schema,
      output_schema: Schema.toJsonSchemaDocument(action.output, CLOSED)
    }
  })
