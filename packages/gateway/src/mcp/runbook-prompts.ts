/**
 * The operator runbook's phases and troubleshooting table as MCP prompts: what an AI
 * concierge is asked to do, in the catalog's own tool names, with the runbook's cautions
 * (workers name their cluster; destructive steps are confirmed by a person).
 */

export interface RunbookPrompt {
  readonly name: string
  readonly title: string
  readonly description: string
  readonly arguments: ReadonlyArray<{ readonly name: string; readonly description: string; readonly required: boolean }>
  readonly render: (args: Record<string, string>) => string
}

const CONFIRM = "Destructive tools answer first with a summary and a confirmation_token: show the summary to the user and call again with the token only once they agree."

export const RUNBOOK_PROMPTS: ReadonlyArray<RunbookPrompt> = [
  {
    name: "bootstrap-cluster",
    title: "Bootstrap a K3s cluster (runbook phases 1-2)",
    description: "Create a cluster from its first server: template, assignment, node, instance, SD-WAN peer.",
    arguments: [
      { name: "cluster_name", description: "the cluster's name, e.g. k3s-prod", required: true },
      { name: "network", description: "the SD-WAN network (id or handle) its servers peer on", required: false }
    ],
    render: ({ cluster_name, network }) =>
      [
        `Bootstrap the K3s cluster "${cluster_name}".`,
        `1. Find or create the SD-WAN network${network === undefined ? "" : ` "${network}"`} (system_sdwan_list_networks, system_sdwan_create_network; each network needs its own pod_subnet_prefix).`,
        `2. Create a server template (system_create_template, e.g. "${cluster_name}-server") and assign it k3s-server with config.cluster_name "${cluster_name}" (system_assign_module_to_template). No target_cluster_id: the first server creates the cluster.`,
        `3. Create the node (system_create_node, hostname "${cluster_name}-server-1"), provision its instance (system_provision_instance: give the agent_credential to the node's agent, it is shown once) and attach it to the network (system_sdwan_attach_peer: required, the VIP lives there).`,
        `4. Once the agent runs, wait for kubernetes_get_cluster({ id: "${cluster_name}" }) to say status "active", and report its api_endpoint (the VIP).`,
        "A second cluster in the same account repeats these steps with its own template; its workers must then name their cluster (add-worker)."
      ].join("\n")
  },
  {
    name: "add-worker",
    title: "Add a worker to a specific cluster (runbook phase 3)",
    description: "Workers join the cluster their template's assignment names, never the most recent one.",
    arguments: [
      { name: "cluster", description: "the cluster to join (id or name)", required: true },
      { name: "hostname", description: "the worker's hostname", required: true }
    ],
    render: ({ cluster, hostname }) =>
      [
        `Add the worker "${hostname}" to the cluster "${cluster}".`,
        `1. Check the cluster is active (kubernetes_get_cluster) and find its network (it is the network of its servers).`,
        `2. Use a worker template whose k3s-agent assignment has config.target_cluster_id "${cluster}" (system_assign_module_to_template): this is required when the account has several clusters.`,
        `3. system_create_node (hostname "${hostname}"), system_provision_instance, system_sdwan_attach_peer on the cluster's network.`,
        `4. When its agent runs, kubernetes_list_nodes({ cluster_id: "${cluster}" }) lists it; if not, use the troubleshoot prompt.`,
        "Changing a worker's target cluster later means terminating and reprovisioning it."
      ].join("\n")
  },
  {
    name: "make-cluster-ha",
    title: "Make a cluster's control plane highly available (runbook phase 4)",
    description: "A second server joins etcd and becomes a VIP failover candidate.",
    arguments: [{ name: "cluster", description: "the cluster (id or name)", required: true }],
    render: ({ cluster }) =>
      [
        `Add a second control-plane server to "${cluster}".`,
        `1. A server template assigned k3s-server with config.target_cluster_id "${cluster}" (this server joins, it does not create). Propose this to the user before provisioning.`,
        "2. system_create_node, system_provision_instance, system_sdwan_attach_peer on the cluster's network.",
        `3. kubernetes_list_nodes({ cluster_id: "${cluster}" }) shows two control-plane nodes ready.`,
        `4. system_sdwan_failover_virtual_ip({ virtual_ip_id: "${cluster}", dry_run: true }) shows the candidates and their scores (a dry run changes nothing).`
      ].join("\n")
  },
  {
    name: "get-kubeconfig",
    title: "Get a kubeconfig for a cluster (runbook phase 5)",
    description: "A short-lived admin kubeconfig whose context is named after the cluster.",
    arguments: [{ name: "cluster", description: "the cluster (id or name)", required: true }],
    render: ({ cluster }) =>
      [
        `Get a kubeconfig for "${cluster}" with kubernetes_get_kubeconfig({ cluster_id: "${cluster}" }).`,
        "It is valid for 24 hours unless expires_in_hours says otherwise, and its certificate names the API key that asked. It is a credential: hand it to the user to save with mode 0600, never paste it into logs.",
        "Its server is the cluster's VIP; the user must be on the SD-WAN network (or have a route to it) to reach it."
      ].join("\n")
  },
  {
    name: "decommission-cluster",
    title: "Decommission a cluster (runbook phase 6)",
    description: "Removes the cluster; its machines keep running.",
    arguments: [{ name: "cluster", description: "the cluster (id or name)", required: true }],
    render: ({ cluster }) =>
      [
        `Decommission "${cluster}".`,
        `1. Show the user what it holds first: kubernetes_get_cluster and kubernetes_list_nodes for "${cluster}".`,
        `2. kubernetes_decommission_cluster({ cluster_id: "${cluster}" }). ${CONFIRM}`,
        "Its member nodes leave the cluster; their instances are not terminated."
      ].join("\n")
  },
  {
    name: "troubleshoot",
    title: "Troubleshoot a cluster or a node (the runbook's troubleshooting table)",
    description: "Symptom, likely cause and what to check, in the catalog's tools.",
    arguments: [{ name: "symptom", description: "what the user sees, e.g. 'worker joined the wrong cluster'", required: false }],
    render: ({ symptom }) =>
      [
        symptom === undefined ? "Diagnose the user's problem with this table." : `The user reports: "${symptom}". Diagnose it with this table.`,
        "- A worker joined the wrong cluster, or none: its template's k3s-agent assignment lacks or has a stale config.target_cluster_id. Check system_get_instance (cluster_id), the kubernetes.join_rejected events (system_list_events: the reason says which rule refused it, e.g. assignment_mismatch, network_mismatch, cluster_not_active). Fix the assignment, then terminate and reprovision the worker.",
        "- A worker stuck joining: it is not on the cluster's SD-WAN network (network_mismatch), or the cluster is not active. Attach it with system_sdwan_attach_peer.",
        "- A server fails to join: look at its events and the node's k3s logs; etcd needs a majority of servers to accept a member.",
        "- The VIP did not fail over: a single-server cluster has no candidate (sdwan.vip_failover_skipped), or the failover waits for approval (system_list_approvals; approve with system_approve).",
        "- A node shows not_ready: its agent is silent or disconnected (system_get_instance: agent, last_seen_at).",
        "- A cluster is missing from kubernetes_list_clusters: it may be decommissioned (include_decommissioned: true).",
        "Report what you found and the fix; do not run destructive tools without the user's confirmation."
      ].join("\n")
  }
]

/** What every MCP client is told when it connects (the runbook's concierge section). */
export const CONCIERGE_INSTRUCTIONS = [
  "Fleetplane runs many K3s clusters over a WireGuard SD-WAN. Tools are the operator runbook's actions, by name.",
  "For several clusters in one account, bootstrap each from its own server template, and give every worker template's assignment a config.target_cluster_id.",
  "For HA, propose a second server (make-cluster-ha) and ask the user before provisioning it.",
  CONFIRM,
  "After each phase, report the cluster's status from kubernetes_get_cluster. Resources: fleetplane://clusters, fleetplane://networks, fleetplane://events (subscribable)."
].join("\n")
