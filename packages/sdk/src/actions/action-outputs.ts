/**
 * What each action returns, as Schema. The catalog publishes these beside the input schemas
 * (`describeActions().output_schema`, MCP tools' `outputSchema`), the Effect API types its
 * results with them, and a test checks every result of the runbook against them, so the
 * published shape cannot drift from what is returned.
 *
 * The presenters (presenters.ts) build the views below; they are typed by these schemas.
 */
import { Schema } from "effect"
import {
  ApprovalStatus,
  ClusterIpFamily,
  ClusterStatus,
  CniPlugin,
  InstanceStatus,
  KubernetesNodeRole,
  KubernetesNodeStatus,
  ModuleConfig,
  ModuleName,
  SkillRunStatus,
  VipPolicy
} from "../model/entities"

const Id = Schema.String
const Timestamp = Schema.String
const Strings = Schema.Array(Schema.String)
const Free = Schema.Record(Schema.String, Schema.Unknown)

// --- views (one per kind; what the presenters return) ------------------------------------------

export const ClusterView = Schema.Struct({
  id: Id,
  name: Schema.String,
  flavor: Schema.Literal("k3s"),
  status: ClusterStatus,
  api_endpoint: Schema.String,
  version: Schema.NullOr(Schema.String),
  network_id: Id,
  cni_plugin: CniPlugin,
  ip_family: ClusterIpFamily,
  cluster_cidr: Schema.NullOr(Schema.String),
  service_cidr: Schema.String,
  warnings: Strings,
  created_at: Timestamp,
  activated_at: Schema.NullOr(Timestamp)
})
export type ClusterView = typeof ClusterView.Type

export const VipView = Schema.Struct({
  id: Id,
  address: Schema.String,
  address_ipv4: Schema.String,
  network_id: Id,
  cluster_id: Id,
  holder_peer_id: Schema.NullOr(Id),
  holder_hostname: Schema.NullOr(Schema.String),
  failover_holder_peer_ids: Strings,
  epoch: Schema.Int,
  policy: VipPolicy
})
export type VipView = typeof VipView.Type

export const NetworkView = Schema.Struct({
  id: Id,
  name: Schema.String,
  handle: Schema.String,
  interface_name: Schema.String,
  overlay_prefix: Schema.String,
  overlay_ipv4_prefix: Schema.String,
  pod_subnet_prefix: Schema.NullOr(Schema.String),
  listen_port: Schema.Int
})
export type NetworkView = typeof NetworkView.Type

export const PeerView = Schema.Struct({
  id: Id,
  network_id: Id,
  instance_id: Id,
  overlay_address: Schema.String,
  overlay_ipv4_address: Schema.String,
  public_key: Schema.NullOr(Schema.String),
  endpoint: Schema.NullOr(Schema.String),
  pod_subnet: Schema.NullOr(Schema.String)
})
export type PeerView = typeof PeerView.Type

export const KubernetesNodeView = Schema.Struct({
  instance_id: Id,
  role: KubernetesNodeRole,
  status: KubernetesNodeStatus,
  hostname: Schema.NullOr(Schema.String),
  joined_at: Timestamp
})
export type KubernetesNodeView = typeof KubernetesNodeView.Type

export const ApprovalView = Schema.Struct({
  id: Id,
  kind: Schema.Literal("vip_failover"),
  status: ApprovalStatus,
  virtual_ip_id: Id,
  cluster_id: Id,
  epoch: Schema.Int,
  summary: Schema.String,
  created_at: Timestamp,
  decided_at: Schema.NullOr(Timestamp),
  reason: Schema.NullOr(Schema.String),
  resolution: Schema.NullOr(Free)
})
export type ApprovalView = typeof ApprovalView.Type

const ScoreComponents = Schema.Struct({ freshness: Schema.Finite, readiness: Schema.Finite, reachability: Schema.Finite, headroom: Schema.Finite })

const RollingUpgradePlan = Schema.Struct({
  total: Schema.Int,
  batch_size: Schema.Int,
  server_cap: Schema.Int,
  max_consecutive_failures: Schema.Int,
  batches: Schema.Array(Strings),
  warnings: Strings
})

// --- outputs, by action ------------------------------------------------------------------------

export const CreateTemplateOutput = Schema.Struct({ id: Id, name: Schema.String })

export const AssignModuleOutput = Schema.Struct({
  template_id: Id,
  module_name: ModuleName,
  module_version_id: Schema.NullOr(Schema.String),
  config: ModuleConfig
})

export const CreateNodeOutput = Schema.Struct({ id: Id, hostname: Schema.String, node_template_id: Id })

export const ProvisionInstanceOutput = Schema.Struct({
  id: Id,
  node_id: Id,
  hostname: Schema.String,
  status: Schema.Literal("running"),
  /** Shown once: give it to the node's agent. */
  agent_credential: Schema.String
})

export const InstanceView = Schema.Struct({
  id: Id,
  node_id: Id,
  hostname: Schema.NullOr(Schema.String),
  status: InstanceStatus,
  cluster_id: Schema.NullOr(Id),
  role: Schema.NullOr(KubernetesNodeRole),
  agent: Schema.Literals(["connected", "disconnected"]),
  last_seen_at: Schema.NullOr(Timestamp),
  created_at: Timestamp
})
export type InstanceView = typeof InstanceView.Type

export const GetInstanceOutput = Schema.Struct({
  ...InstanceView.fields,
  /** What the gateway wants on the machine, and what its agent has applied (`applied_version`) or refused (`error`). */
  configs: Schema.Array(
    Schema.Struct({ kind: Schema.String, key: Schema.String, version: Schema.Int, applied_version: Schema.NullOr(Schema.Int), error: Schema.NullOr(Schema.String), updated_at: Timestamp })
  )
})

export const TerminateInstanceOutput = Schema.Struct({ instance_id: Id, status: Schema.Literal("terminated") })

export const RotateAgentCredentialOutput = Schema.Struct({
  instance_id: Id,
  hostname: Schema.NullOr(Schema.String),
  /** Shown once. */
  agent_credential: Schema.String,
  previous_valid_until: Timestamp,
  delivery: Schema.Literals(["pushed to the connected agent", "pushed when the agent next connects"])
})

export const CreateNetworkOutput = Schema.Struct({ ...NetworkView.fields, warnings: Strings })

export const ListNetworksOutput = Schema.Struct({ networks: Schema.Array(NetworkView) })

export const AttachPeerOutput = Schema.Struct({ ...PeerView.fields, interface_name: Schema.String })

export const ListClustersOutput = Schema.Struct({ clusters: Schema.Array(ClusterView) })

export const GetClusterOutput = Schema.Struct({
  ...ClusterView.fields,
  node_count: Schema.Int,
  control_plane_count: Schema.Int,
  worker_count: Schema.Int,
  virtual_ip: Schema.NullOr(VipView)
})

export const ListNodesOutput = Schema.Struct({
  nodes: Schema.Array(
    Schema.Struct({
      ...KubernetesNodeView.fields,
      agent: Schema.Literals(["heartbeating", "silent"]),
      last_heartbeat_at: Schema.NullOr(Timestamp)
    })
  )
})

export const GetKubeconfigOutput = Schema.Struct({
  /** YAML; holds a client key. */
  kubeconfig: Schema.String,
  api_endpoint: Schema.String,
  expires_at: Timestamp
})

export const DecommissionClusterOutput = Schema.Struct({
  cluster_id: Id,
  status: Schema.Literal("decommissioned"),
  kubernetes_nodes_removed: Schema.Int,
  instances_terminated: Schema.Int
})

export const RotateTokenOutput = Schema.Struct({ cluster_id: Id, token_version: Schema.Int })

export const FailoverOutput = Schema.Union([
  Schema.Struct({
    resolved: Schema.Literal(false),
    dry_run: Schema.Literal(true),
    current_holder: Schema.NullOr(Id),
    current_holder_hostname: Schema.NullOr(Schema.String),
    epoch: Schema.Int,
    candidates: Schema.Array(
      Schema.Struct({ peer: Id, hostname: Schema.NullOr(Schema.String), score: Schema.Finite, components: ScoreComponents, disqualified: Schema.NullOr(Schema.String) })
    )
  }),
  Schema.Struct({
    resolved: Schema.Literal(true),
    dry_run: Schema.Literal(false),
    current_holder: Id,
    current_holder_hostname: Schema.NullOr(Schema.String),
    previous_holder: Schema.NullOr(Id),
    previous_holder_hostname: Schema.NullOr(Schema.String),
    epoch: Schema.Int,
    score: Schema.Finite
  })
])

export const ListApprovalsOutput = Schema.Struct({ approvals: Schema.Array(ApprovalView) })

export const ApproveOutput = Schema.Struct({
  approval_id: Id,
  status: Schema.Literals(["approved", "moot"]),
  /** `{ promoted, hostname, epoch, score }` or `{ moot: why }`. */
  resolution: Free,
  message: Schema.String
})

export const RejectOutput = Schema.Struct({ approval_id: Id, status: Schema.Literal("rejected") })

export const ListEventsOutput = Schema.Struct({
  events: Schema.Array(Schema.Struct({ seq: Schema.Int, type: Schema.String, at: Timestamp, data: Free }))
})

export const ExecuteSkillOutput = Schema.Struct({
  /** Null for a preview (`dry_run: true`). */
  run_id: Schema.NullOr(Id),
  skill: Schema.Literal("system-rolling-module-upgrade"),
  status: Schema.Literals(["preview", "running"]),
  module_name: ModuleName,
  plan: RollingUpgradePlan
})

export const ListSkillRunsOutput = Schema.Struct({
  runs: Schema.Array(
    Schema.Struct({
      run_id: Id,
      skill: Schema.String,
      status: SkillRunStatus,
      inputs: Schema.Unknown,
      progress: Schema.Struct({ batches: Schema.Int, next_batch: Schema.Int, completed: Schema.Int, failed: Schema.Int, in_flight: Schema.Int }),
      created_at: Timestamp,
      updated_at: Timestamp
    })
  )
})

export const SkillRunStatusOutput = Schema.Struct({
  run_id: Id,
  skill: Schema.String,
  status: SkillRunStatus,
  inputs: Schema.Unknown,
  /** The run's own record: plan, next batch, instances in flight, completed and failed. */
  state: Schema.Unknown,
  created_at: Timestamp,
  updated_at: Timestamp
})

export const SkillRunChangeOutput = Schema.Struct({ run_id: Id, status: Schema.Literals(["running", "aborted"]) })

// --- inventory reads and deletes (list / get / delete for every kind) ----------------------------

const ModuleAssignmentView = Schema.Struct({ module_name: ModuleName, module_version_id: Schema.NullOr(Schema.String), config: ModuleConfig })

export const TemplateView = Schema.Struct({
  id: Id,
  name: Schema.String,
  modules: Schema.Array(ModuleAssignmentView),
  node_count: Schema.Int,
  created_at: Timestamp
})
export type TemplateView = typeof TemplateView.Type

export const ListTemplatesOutput = Schema.Struct({ templates: Schema.Array(TemplateView) })

export const GetTemplateOutput = Schema.Struct({
  ...TemplateView.fields,
  nodes: Schema.Array(Schema.Struct({ id: Id, hostname: Schema.String, instance_id: Schema.NullOr(Id) }))
})

export const DeleteTemplateOutput = Schema.Struct({ template_id: Id, deleted: Schema.Literal(true) })

/** A node (a machine role) with its template's name and its running instance, if any. */
export const InventoryNodeView = Schema.Struct({
  id: Id,
  hostname: Schema.String,
  node_template_id: Id,
  template_name: Schema.NullOr(Schema.String),
  instance_id: Schema.NullOr(Id),
  created_at: Timestamp
})
export type InventoryNodeView = typeof InventoryNodeView.Type

export const ListInventoryNodesOutput = Schema.Struct({ nodes: Schema.Array(InventoryNodeView) })

export const GetInventoryNodeOutput = Schema.Struct({
  ...InventoryNodeView.fields,
  instances: Schema.Array(Schema.Struct({ id: Id, status: InstanceStatus, created_at: Timestamp }))
})

export const DeleteNodeOutput = Schema.Struct({ node_id: Id, deleted: Schema.Literal(true) })

export const ListInstancesOutput = Schema.Struct({ instances: Schema.Array(InstanceView) })

export const GetNetworkOutput = Schema.Struct({
  ...NetworkView.fields,
  peer_count: Schema.Int,
  clusters: Schema.Array(Schema.Struct({ id: Id, name: Schema.String, status: ClusterStatus })),
  virtual_ips: Schema.Array(VipView)
})

export const DeleteNetworkOutput = Schema.Struct({ network_id: Id, deleted: Schema.Literal(true) })

export const ListPeersOutput = Schema.Struct({
  peers: Schema.Array(Schema.Struct({ ...PeerView.fields, hostname: Schema.String, holds_vip: Schema.Boolean }))
})

export const DetachPeerOutput = Schema.Struct({ peer_id: Id, network_id: Id, instance_id: Id, detached: Schema.Literal(true) })

export const ListVipsOutput = Schema.Struct({
  virtual_ips: Schema.Array(Schema.Struct({ ...VipView.fields, cluster_name: Schema.NullOr(Schema.String) }))
})
