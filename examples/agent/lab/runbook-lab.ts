/**
 * The runbook's layout on real nodes (network-lab.ts): a real gateway on the lab's bridge and
 * two clusters, each on its own SD-WAN network — prod on an IPv4 pod prefix (3 servers,
 * 2 workers) and staging on an IPv6 one (1 server, 1 worker) — every node's agent in its
 * real mode. Shared by the data-plane test, the data-plane benchmark and `npm run demo:real`,
 * so all three exercise the same thing.
 */
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startGateway, type Gateway } from "@fleetplane/gateway"
import { createNetworkLab, requireNetworkLab, type LabNode, type NetworkLab } from "./network-lab"

export const API_PORT = 6443
export const PROBE_PORT = 7946

type Operations = ReturnType<Gateway["fleet"]["forAccount"]>

export interface LabMember {
  readonly node: LabNode
  readonly instanceId: string
  readonly credential: string
  readonly networkId: string
  readonly interfaceName: string
  /** Its overlay address in its cluster's family. */
  readonly address: string
  readonly podSubnet: string
  /** What its template assigns (its agent is not told: it reads its assignment). */
  readonly module: "k3s-server" | "k3s-agent"
}

export interface RunbookLabOptions {
  readonly heartbeatIntervalMs: number
  readonly silenceThresholdMs: number
  /** R26: how often reporters probe the VIP, also each probe's timeout (default: twice the heartbeat interval); 0 reporters turns the peers' view off. */
  readonly vipProbeIntervalMs?: number
  readonly vipProbeReporters?: number
  /** Two labs in one process need different ids (bridge and subnet names); default: from the pid. */
  readonly labId?: string
  /** Bring up staging too (the test does; the benchmark needs only prod). */
  readonly staging?: boolean
  readonly log?: (line: string) => void
}

/** Polls `check` until it returns a value (not undefined/false), or throws saying what it waited for. */
export const eventually = async <A>(check: () => Promise<A | undefined | false> | A | undefined | false, what: string, timeoutMs = 30_000, everyMs = 100): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? "" : `: ${String(last)}`}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

export interface RunbookLab {
  readonly lab: NetworkLab
  readonly gateway: Gateway
  readonly ops: Operations
  readonly members: Map<string, LabMember>
  readonly prod: { readonly clusterId: string; readonly vipId: string; readonly vip: string; readonly network: { readonly id: string; readonly interface_name: string } }
  readonly staging: { readonly clusterId: string; readonly vip: string } | undefined
  readonly provision: (
    hostname: string,
    templateId: string,
    network: { readonly id: string; readonly interface_name: string },
    family: "ipv4" | "ipv6",
    podSubnet: string,
    module: LabMember["module"]
  ) => Promise<LabMember>
  readonly startAgent: (member: LabMember) => void
  /** The nodes of a cluster (by hostname prefix) whose agent runs. */
  readonly clusterMembers: (prefix: string) => Array<LabMember>
  /** Who answers on the VIP's API port, as seen from `member`. */
  readonly vipAnswer: (member: LabMember, vip: string, timeoutMs?: number) => Promise<string | undefined>
  readonly publicKeyOf: (member: LabMember) => string
  /** The last lines of every agent's log, for failure messages. */
  readonly nodeLogs: () => string
  readonly close: () => Promise<void>
}

export const startRunbookLab = async (options: RunbookLabOptions): Promise<RunbookLab> => {
  requireNetworkLab()
  const log = options.log ?? (() => undefined)
  const lab: NetworkLab = await createNetworkLab(options.labId)
  const members = new Map<string, LabMember>()
  let gateway: Gateway | undefined
  const close = async () => {
    await gateway?.close()
    lab.close()
  }
  try {
    gateway = await startGateway({
      database: join(mkdtempSync(join(tmpdir(), "fleetplane-lab-db-")), "fleet.db"),
      listen: `${lab.hostAddress}:0`,
      adminListen: "127.0.0.1:0",
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      silenceThresholdMs: options.silenceThresholdMs,
      vipProbeIntervalMs: options.vipProbeIntervalMs ?? 2 * options.heartbeatIntervalMs,
      ...(options.vipProbeReporters === undefined ? {} : { vipProbeReporters: options.vipProbeReporters }),
      logLevel: (process.env.LAB_GATEWAY_LOG as "info" | undefined) ?? "silent"
    })
    const gatewayUrl = `ws://${lab.hostAddress}:${gateway.agentPort}/v1/agent`
    const account = await gateway.fleet.createAccount({ name: "acme" })
    const ops: Operations = gateway.fleet.forAccount(account.id)

    const provision = async (hostname: string, templateId: string, network: { id: string; interface_name: string }, family: "ipv4" | "ipv6", podSubnet: string, module: LabMember["module"]) => {
      const created = await ops.actions.system_create_node({ hostname, node_template_id: templateId })
      const instance = await ops.actions.system_provision_instance({ node_id: created.id })
      const peer = await ops.actions.system_sdwan_attach_peer({ network_id: network.id, node_instance_id: instance.id })
      const member: LabMember = {
        node: await lab.addNode(hostname),
        instanceId: instance.id,
        credential: instance.agent_credential,
        networkId: network.id,
        interfaceName: network.interface_name,
        address: family === "ipv4" ? peer.overlay_ipv4_address : peer.overlay_address,
        podSubnet,
        module
      }
      members.set(hostname, member)
      return member
    }

    // R24: agents get only their gateway, instance and credential; what to join comes from
    // their template's assignment.
    const startAgent = (member: LabMember) => {
      lab.startAgent(member.node, { gatewayUrl, instanceId: member.instanceId, credential: member.credential, podSubnet: member.podSubnet })
    }

    const activeClusters = async () => (await ops.actions.kubernetes_list_clusters({})).clusters.filter((c) => c.status === "active")

    log("prod: bootstrap server (IPv4 pod prefix 10.42.0.0/16, automatic failover)")
    const prodNet = await ops.actions.system_sdwan_create_network({ name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
    const bootstrap = await ops.actions.system_create_template({ name: "k3s-prod-bootstrap" })
    await ops.actions.system_assign_module_to_template({ template_id: bootstrap.id, module_name: "k3s-server", config: { vip_policy: "automatic" } })
    startAgent(await provision("k3s-prod-server-1", bootstrap.id, prodNet, "ipv4", "10.42.1.0/24", "k3s-server"))
    const prodCluster = await eventually(async () => (await activeClusters())[0], "prod active", 60_000)
    const prodDetail = await ops.actions.kubernetes_get_cluster({ id: prodCluster.id })
    const prod = { clusterId: prodCluster.id, vipId: prodDetail.virtual_ip!.id, vip: prodDetail.virtual_ip!.address_ipv4, network: prodNet }

    log("prod: two more servers and two workers, targeted at the cluster")
    const servers = await ops.actions.system_create_template({ name: "k3s-prod-servers" })
    await ops.actions.system_assign_module_to_template({ template_id: servers.id, module_name: "k3s-server", config: { target_cluster_id: prod.clusterId } })
    const workers = await ops.actions.system_create_template({ name: "k3s-prod-workers" })
    await ops.actions.system_assign_module_to_template({ template_id: workers.id, module_name: "k3s-agent", config: { target_cluster_id: prod.clusterId } })
    for (const [hostname, template, subnet, module] of [
      ["k3s-prod-server-2", servers.id, "10.42.2.0/24", "k3s-server"],
      ["k3s-prod-server-3", servers.id, "10.42.3.0/24", "k3s-server"],
      ["k3s-prod-worker-1", workers.id, "10.42.4.0/24", "k3s-agent"],
      ["k3s-prod-worker-2", workers.id, "10.42.5.0/24", "k3s-agent"]
    ] as const) {
      startAgent(await provision(hostname, template, prodNet, "ipv4", subnet, module))
    }

    let staging: { clusterId: string; vip: string } | undefined
    if (options.staging !== false) {
      log("staging: a server and a worker on an IPv6 pod prefix (fd42:5::/56)")
      const stagingNet = await ops.actions.system_sdwan_create_network({ name: "staging", handle: "stg", pod_subnet_prefix: "fd42:5::/56" })
      const stagingTemplate = await ops.actions.system_create_template({ name: "k3s-staging-server" })
      await ops.actions.system_assign_module_to_template({ template_id: stagingTemplate.id, module_name: "k3s-server", config: { vip_policy: "automatic" } })
      startAgent(await provision("k3s-staging-server-1", stagingTemplate.id, stagingNet, "ipv6", "fd42:5:0:1::/64", "k3s-server"))
      const stagingCluster = await eventually(async () => (await activeClusters()).find((c) => c.id !== prod.clusterId), "staging active", 60_000)
      staging = { clusterId: stagingCluster.id, vip: (await ops.actions.kubernetes_get_cluster({ id: stagingCluster.id })).virtual_ip!.address }
      const stagingWorkers = await ops.actions.system_create_template({ name: "k3s-staging-workers" })
      await ops.actions.system_assign_module_to_template({ template_id: stagingWorkers.id, module_name: "k3s-agent", config: { target_cluster_id: staging.clusterId } })
      startAgent(await provision("k3s-staging-worker-1", stagingWorkers.id, stagingNet, "ipv6", "fd42:5:0:2::/64", "k3s-agent"))
    }

    for (const [cluster, count] of [[prod.clusterId, 5], ...(staging === undefined ? [] : [[staging.clusterId, 2] as const])] as const) {
      await eventually(async () => {
        const { nodes } = await ops.actions.kubernetes_list_nodes({ cluster_id: cluster })
        return nodes.length >= count && nodes.every((n) => n.status === "ready")
      }, `every node of ${cluster} ready`, 60_000)
    }

    const clusterMembers = (prefix: string) => [...members.values()].filter((m) => m.node.name.startsWith(prefix) && m.node.agent !== undefined)

    const vipAnswer = async (member: LabMember, vip: string, timeoutMs = 500) => {
      const result = await member.node.connect(vip, API_PORT, timeoutMs)
      return result.ok ? result.answer : undefined
    }

    const publicKeyOf = (member: LabMember) => readFileSync(join(member.node.stateDir, "wireguard", `${member.networkId}.pub`), "utf8").trim()

    const nodeLogs = () => [...members.values()].map((m) => `--- ${m.node.name}\n${m.node.agentLog.slice(-(Number(process.env.LAB_LOG_LINES) || 12)).join("\n")}`).join("\n")

    return { lab, gateway, ops, members, prod, staging, provision, startAgent, clusterMembers, vipAnswer, publicKeyOf, nodeLogs, close }
  } catch (error) {
    const logs = [...members.values()].map((m) => `--- ${m.node.name}\n${m.node.agentLog.slice(-(Number(process.env.LAB_LOG_LINES) || 12)).join("\n")}`).join("\n")
    await close()
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${logs}`)
  }
}

