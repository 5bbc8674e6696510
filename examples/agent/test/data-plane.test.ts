/**
 * The runbook on real nodes: every node a network namespace with a real WireGuard interface
 * (userspace wireguard-go), brought up and kept in sync by the reference agent in its real mode
 * against a real gateway; only k3s is a stand-in (it reports a pod subnet and answers on the
 * API port). Two clusters: prod (IPv4: 3 servers, 2 workers) and staging (IPv6: 1 server,
 * 1 worker), each on its own SD-WAN network. The steps run in order and build on each other.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startGateway, type Gateway } from "@fleetplane/gateway"
import { createNetworkLab, requireNetworkLab, type LabNode, type NetworkLab } from "./support/network-lab"
import { scratch } from "./support/fixture"

const HEARTBEAT_MS = 500
const SILENCE_MS = 1_500
const API_PORT = 6443
const PROBE_PORT = 7946

const eventually = async <A>(check: () => Promise<A | undefined | false> | A | undefined | false, what: string, timeoutMs = 30_000): Promise<A> => {
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
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

interface Member {
  readonly node: LabNode
  readonly instanceId: string
  readonly credential: string
  readonly networkId: string
  readonly interfaceName: string
  readonly address: string
  readonly podSubnet: string
  readonly module: "k3s-server" | "k3s-agent"
  targetClusterId?: string
}

describe("the data plane on real WireGuard interfaces (network namespaces, wireguard-go)", () => {
  let lab: NetworkLab
  let gateway: Gateway
  let gatewayUrl: string
  let ops: Gateway["fleet"] extends { forAccount: (id: never) => infer O } ? O : never
  const members = new Map<string, Member>()
  let prod: { clusterId: string; vipId: string; vip: string }
  let staging: { clusterId: string; vip: string }

  const publicKeyOf = (member: Member) => readFileSync(join(member.node.stateDir, "wireguard", `${member.networkId}.pub`), "utf8").trim()

  const provision = async (hostname: string, templateId: string, network: { id: string; interface_name: string }, family: "ipv4" | "ipv6", podSubnet: string, module: Member["module"]) => {
    const created = await ops.actions.system_create_node({ hostname, node_template_id: templateId })
    const instance = await ops.actions.system_provision_instance({ node_id: created.id })
    const peer = await ops.actions.system_sdwan_attach_peer({ network_id: network.id, node_instance_id: instance.id })
    const member: Member = {
      node: lab.addNode(hostname),
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

  const startAgent = (member: Member) =>
    lab.startAgent(member.node, {
      gatewayUrl,
      instanceId: member.instanceId,
      credential: member.credential,
      module: member.module,
      ...(member.targetClusterId === undefined ? {} : { targetClusterId: member.targetClusterId }),
      podSubnet: member.podSubnet
    })

  const clusterMembers = (prefix: string) => [...members.values()].filter((m) => m.node.name.startsWith(prefix) && m.node.agent !== undefined)

  /** Who answers on the VIP's API port, as seen from `member`. */
  const vipAnswer = async (member: Member, vip: string) => {
    const result = await member.node.connect(vip, API_PORT, 500)
    return result.ok ? result.answer : undefined
  }

  /** The last lines of every agent's log, attached to a failure so CI output says what the nodes saw. */
  const withNodeLogs = async <A>(body: () => Promise<A>) => {
    try {
      return await body()
    } catch (error) {
      const logs = [...members.values()].map((m) => `--- ${m.node.name}\n${m.node.agentLog.slice(-12).join("\n")}`).join("\n")
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${logs}`)
    }
  }

  beforeAll(() => withNodeLogs(setUp), 120_000)

  const setUp = async () => {
    requireNetworkLab()
    lab = createNetworkLab()
    gateway = await startGateway({
      database: join(scratch("dataplane-db"), "fleet.db"),
      listen: `${lab.hostAddress}:0`,
      adminListen: "127.0.0.1:0",
      heartbeatIntervalMs: HEARTBEAT_MS,
      silenceThresholdMs: SILENCE_MS,
      logLevel: "silent"
    })
    gatewayUrl = `ws://${lab.hostAddress}:${gateway.agentPort}/v1/agent`
    const account = await gateway.fleet.createAccount({ name: "acme" })
    ops = gateway.fleet.forAccount(account.id) as typeof ops

    // Phase 1: prod's bootstrap server, on an IPv4 pod prefix: an IPv4 cluster (R21).
    const prodNet = await ops.actions.system_sdwan_create_network({ name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
    const bootstrap = await ops.actions.system_create_template({ name: "k3s-prod-bootstrap" })
    await ops.actions.system_assign_module_to_template({ template_id: bootstrap.id, module_name: "k3s-server", config: { vip_policy: "automatic" } })
    startAgent(await provision("k3s-prod-server-1", bootstrap.id, prodNet, "ipv4", "10.42.1.0/24", "k3s-server"))
    const prodCluster = await eventually(async () => (await ops.actions.kubernetes_list_clusters({})).clusters.find((c) => c.status === "active"), "prod active")
    const prodDetail = await ops.actions.kubernetes_get_cluster({ id: prodCluster.id })
    prod = { clusterId: prodCluster.id, vipId: prodDetail.virtual_ip!.id, vip: prodDetail.virtual_ip!.address_ipv4 }

    // Phase 4 and 3: two more servers and two workers, targeted at prod.
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
      const member = await provision(hostname, template, prodNet, "ipv4", subnet, module)
      member.targetClusterId = prod.clusterId
      startAgent(member)
    }

    // Phase 2: staging, on an IPv6 pod prefix: an IPv6 cluster.
    const stagingNet = await ops.actions.system_sdwan_create_network({ name: "staging", handle: "stg", pod_subnet_prefix: "fd42:5::/56" })
    const stagingTemplate = await ops.actions.system_create_template({ name: "k3s-staging-server" })
    await ops.actions.system_assign_module_to_template({ template_id: stagingTemplate.id, module_name: "k3s-server", config: { vip_policy: "automatic" } })
    startAgent(await provision("k3s-staging-server-1", stagingTemplate.id, stagingNet, "ipv6", "fd42:5:0:1::/64", "k3s-server"))
    const stagingCluster = await eventually(
      async () => (await ops.actions.kubernetes_list_clusters({})).clusters.find((c) => c.status === "active" && c.id !== prod.clusterId),
      "staging active"
    )
    staging = { clusterId: stagingCluster.id, vip: (await ops.actions.kubernetes_get_cluster({ id: stagingCluster.id })).virtual_ip!.address }
    const stagingWorkers = await ops.actions.system_create_template({ name: "k3s-staging-workers" })
    await ops.actions.system_assign_module_to_template({ template_id: stagingWorkers.id, module_name: "k3s-agent", config: { target_cluster_id: staging.clusterId } })
    const stagingWorker = await provision("k3s-staging-worker-1", stagingWorkers.id, stagingNet, "ipv6", "fd42:5:0:2::/64", "k3s-agent")
    stagingWorker.targetClusterId = staging.clusterId
    startAgent(stagingWorker)

    for (const cluster of [prod.clusterId, staging.clusterId]) {
      await eventually(async () => {
        const { nodes } = await ops.actions.kubernetes_list_nodes({ cluster_id: cluster })
        return nodes.length >= (cluster === prod.clusterId ? 5 : 2) && nodes.every((n) => n.status === "ready")
      }, `every node of ${cluster} ready`)
    }
  }

  afterAll(async () => {
    await gateway?.close()
    lab?.close()
  })

  it("every node reaches every other over the overlay, in its cluster's IP family", async () => {
    for (const prefix of ["k3s-prod", "k3s-staging"]) {
      const group = clusterMembers(prefix)
      for (const from of group) {
        for (const to of group) {
          if (from === to) continue
          const reached = await eventually(async () => {
            const result = await from.node.connect(to.address, PROBE_PORT, 500)
            return result.ok && result.answer === to.node.name ? result : undefined
          }, `${from.node.name} -> ${to.node.name} (${to.address})`)
          expect(reached.answer).toBe(to.node.name)
        }
      }
    }
    expect(clusterMembers("k3s-prod")[0]!.address).toMatch(/^100\.\d+\.\d+\.\d+$/)
    expect(clusterMembers("k3s-staging")[0]!.address).toMatch(/^fd[0-9a-f:]+$/)
  }, 60_000)

  it("the VIP answers from every node of its cluster, from the holder (its loopback)", async () => {
    for (const member of clusterMembers("k3s-prod")) {
      expect(await eventually(() => vipAnswer(member, prod.vip), `prod VIP from ${member.node.name}`)).toBe("k3s-prod-server-1")
    }
    for (const member of clusterMembers("k3s-staging")) {
      expect(await eventually(() => vipAnswer(member, staging.vip), `staging VIP from ${member.node.name}`)).toBe("k3s-staging-server-1")
    }
    expect(members.get("k3s-prod-server-1")!.node.exec(["ip", "-4", "-o", "address", "show", "dev", "lo"])).toContain(`${prod.vip}/32`)
  }, 60_000)

  it("R22: each node's pod subnet is routed to it through the tunnel on every other node", async () => {
    for (const prefix of ["k3s-prod", "k3s-staging"]) {
      const group = clusterMembers(prefix)
      for (const on of group) {
        await eventually(() => {
          const routes = on.node.exec(["ip", group[0]!.podSubnet.includes(":") ? "-6" : "-4", "route", "show", "dev", on.interfaceName])
          return group.filter((other) => other !== on).every((other) => routes.includes(other.podSubnet))
        }, `pod subnet routes on ${on.node.name}`)
      }
    }
  }, 60_000)

  it("the holder dies: under the automatic policy the VIP answers again from every other node, and the old holder, back, no longer holds it", async () => {
    const before = await ops.actions.kubernetes_get_cluster({ id: prod.clusterId })
    const died = Date.now()
    lab.killNode(members.get("k3s-prod-server-1")!.node)
    const survivors = clusterMembers("k3s-prod")
    const newHolder = await eventually(async () => {
      const answers = await Promise.all(survivors.map((m) => vipAnswer(m, prod.vip)))
      const holder = answers[0]
      return holder !== undefined && holder !== "k3s-prod-server-1" && answers.every((a) => a === holder) ? holder : undefined
    }, "the VIP answering from a new holder on every surviving node")
    const failoverMs = Date.now() - died
    expect(["k3s-prod-server-2", "k3s-prod-server-3"]).toContain(newHolder)
    // Target (SPEC §9): within the silence threshold + 1 s.
    expect(failoverMs).toBeLessThan(SILENCE_MS + 1_000 + 2_000)
    const after = await ops.actions.kubernetes_get_cluster({ id: prod.clusterId })
    expect(after.virtual_ip!.epoch).toBe(before.virtual_ip!.epoch + 1)

    const old = members.get("k3s-prod-server-1")!
    startAgent(old)
    await eventually(() => !old.node.exec(["ip", "-4", "-o", "address", "show", "dev", "lo"]).includes(`${prod.vip}/32`), "the old holder releasing the VIP")
    // Its tunnel came back from its own state, and it reaches the VIP on the new holder like everyone else.
    expect(await eventually(() => vipAnswer(old, prod.vip), "the VIP from the old holder")).toBe(newHolder)
  }, 60_000)

  it("a node that joins later is reachable from every node, with no tunnel restarted", async () => {
    const group = clusterMembers("k3s-prod")
    const interfaceIndex = (member: Member) => member.node.exec(["ip", "-o", "link", "show", "dev", member.interfaceName]).split(":")[0]
    const before = new Map(group.map((m) => [m.node.name, interfaceIndex(m)]))
    const workers = (await ops.actions.kubernetes_list_nodes({ cluster_id: prod.clusterId })).nodes
    expect(workers.length).toBe(5)
    const template = await ops.actions.system_create_template({ name: "k3s-prod-late" })
    await ops.actions.system_assign_module_to_template({ template_id: template.id, module_name: "k3s-agent", config: { target_cluster_id: prod.clusterId } })
    const prodNet = (await ops.actions.system_sdwan_list_networks({})).networks.find((n) => n.handle === "prod")!
    const late = await provision("k3s-prod-worker-3", template.id, prodNet, "ipv4", "10.42.6.0/24", "k3s-agent")
    late.targetClusterId = prod.clusterId
    startAgent(late)
    for (const member of group) {
      await eventually(async () => (await member.node.connect(late.address, PROBE_PORT, 500)).answer === late.node.name, `${member.node.name} -> the late node`)
      await eventually(async () => (await late.node.connect(member.address, PROBE_PORT, 500)).answer === member.node.name, `the late node -> ${member.node.name}`)
    }
    for (const member of group) expect(interfaceIndex(member), `${member.node.name}'s interface was not recreated`).toBe(before.get(member.node.name))
  }, 60_000)

  it("R25: a terminated node's peer is gone from every other node's interface, and its own tunnels are down", async () => {
    const victim = members.get("k3s-prod-worker-2")!
    const key = publicKeyOf(victim)
    const first = await ops.execute("system_terminate_instance", { instance_id: victim.instanceId }).catch((error: { details: { confirmation_token: string } }) => error)
    await ops.execute("system_terminate_instance", { instance_id: victim.instanceId, confirmation_token: (first as { details: { confirmation_token: string } }).details.confirmation_token })
    for (const member of clusterMembers("k3s-prod").filter((m) => m !== victim)) {
      await eventually(() => !member.node.exec(["wg", "show", member.interfaceName, "peers"]).includes(key), `${member.node.name} dropping the terminated peer`)
    }
    await eventually(() => !victim.node.exec(["ip", "-o", "link", "show"]).includes(victim.interfaceName), "the terminated node's interface down")
    await eventually(() => victim.node.agent?.exitCode !== null || victim.node.agentLog.some((l) => l.includes("4006")), "the agent told 4006")
    victim.node.agent?.kill("SIGKILL")
    victim.node.agent = undefined
  }, 60_000)

  it("20% packet loss on a non-holder's link to the gateway causes no failover", async () => {
    const before = await ops.actions.kubernetes_get_cluster({ id: prod.clusterId })
    const silentBefore = (await ops.actions.system_list_events({ limit: 1000 })).events.filter((e) => e.type === "sdwan.vip_holder_silent").length
    const holderName = await vipAnswer(members.get("k3s-prod-worker-1")!, prod.vip)
    const bystander = clusterMembers("k3s-prod").find((m) => m.node.name !== holderName && m.module === "k3s-agent")!
    lab.dropPackets(bystander.node, lab.hostAddress, 20)
    try {
      await new Promise((resolve) => setTimeout(resolve, SILENCE_MS * 5))
    } finally {
      lab.stopDropping(bystander.node)
    }
    const after = await ops.actions.kubernetes_get_cluster({ id: prod.clusterId })
    expect(after.virtual_ip!.epoch).toBe(before.virtual_ip!.epoch)
    expect(after.virtual_ip!.holder_peer_id).toBe(before.virtual_ip!.holder_peer_id)
    const silentAfter = (await ops.actions.system_list_events({ limit: 1000 })).events.filter((e) => e.type === "sdwan.vip_holder_silent").length
    expect(silentAfter).toBe(silentBefore)
    expect(await vipAnswer(bystander, prod.vip)).toBe(holderName)
  }, 60_000)
})
