/**
 * Runbook phases 1-3 through the Promise facade, as a non-Effect app would embed the SDK.
 * The "agents" are in-process: they talk to the SDK's agent port directly instead of a gateway.
 */
import { generateKeyPairSync } from "node:crypto"
import { createFleet } from "@fleetplane/sdk"

const publicKey = () => generateKeyPairSync("x25519").publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("base64")

export const phasesWithPromises = async (log: (line: string) => void) => {
  const fleet = await createFleet({ database: ":memory:" })
  try {
    const acme = await fleet.createAccount({ name: "acme" })
    const ops = fleet.forAccount(acme.id)
    const port = await fleet.agentPort()

    const network = await ops.actions.system_sdwan_create_network({ name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
    /** Provisions a node and connects an in-process agent for it. */
    const agentFor = async (hostname: string, templateId: string) => {
      const node = await ops.actions.system_create_node({ hostname, node_template_id: templateId })
      const instance = await ops.actions.system_provision_instance({ node_id: node.id })
      await ops.actions.system_sdwan_attach_peer({ network_id: network.id, node_instance_id: instance.id })
      const identity = await fleet.run(port.authenticate(instance.id, instance.agent_credential))
      await fleet.run(port.hello(identity, { wireguard_keys: [{ network_id: network.id, public_key: publicKey() }], applied: [], held_vips: [] }))
      return identity
    }
    const ready = { service: "active" as const, node_ready: true }

    const clusterIds: Array<string> = []
    for (const env of ["prod", "staging"]) {
      // Phases 1 and 2: a k3s-server without target_cluster_id creates a cluster.
      const template = await ops.actions.system_create_template({ name: `k3s-${env}-server` })
      await ops.actions.system_assign_module_to_template({ template_id: template.id, module_name: "k3s-server" })
      const server = await agentFor(`k3s-${env}-server-1`, template.id)
      const joined = await fleet.run(port.joinRequest(server, { request_id: "r", module_name: "k3s-server", target_cluster_id: null }))
      if (!joined.accepted) throw new Error(`bootstrap rejected: ${joined.code}`)
      await fleet.run(port.statusReport(server, { k3s: ready, modules: [] }))
      clusterIds.push(joined.cluster_id)
    }
    const { clusters } = await ops.actions.kubernetes_list_clusters({})
    for (const c of clusters) log(`[promises] ${c.name}: ${c.status} at ${c.api_endpoint}`)

    // Phase 3: a worker with an explicit target_cluster_id joins prod, not the most recent cluster.
    const workers = await ops.actions.system_create_template({ name: "prod-workers" })
    await ops.actions.system_assign_module_to_template({ template_id: workers.id, module_name: "k3s-agent", config: { target_cluster_id: clusterIds[0]! } })
    const worker = await agentFor("prod-worker-1", workers.id)
    const joined = await fleet.run(port.joinRequest(worker, { request_id: "r", module_name: "k3s-agent", target_cluster_id: clusterIds[0]! }))
    log(`[promises] prod-worker-1: ${joined.accepted ? `joined ${joined.cluster_id} as ${joined.role}` : `rejected ${joined.code}`}`)
    const { nodes } = await ops.actions.kubernetes_list_nodes({ cluster_id: clusterIds[0]! })
    return { clusters: clusters.map((c) => ({ name: c.name, status: c.status })), prodNodes: nodes.map((n) => n.role) }
  } finally {
    await fleet.close()
  }
}
