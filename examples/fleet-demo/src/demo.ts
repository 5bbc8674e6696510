/**
 * The runbook, end to end, in under a minute: a real gateway on 127.0.0.1 with an embedded
 * SQLite file, simulated agents as real WebSocket clients (the reference agent in
 * --simulate), and the operator's side through the admin HTTP API — phases 1 to 6 with a
 * visible step list, timings, and a summary at the end.
 */
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { startReferenceAgent, wireguardPath, type ReferenceAgent, type ReferenceAgentOptions } from "@fleetplane/agent"

type JoinRejectedBody = Parameters<NonNullable<ReferenceAgentOptions["onJoinRejected"]>>[0]
import { startGateway } from "@fleetplane/gateway"

export interface DemoOptions {
  /** Where the database, agent state and kubeconfigs go (default ./.demo). */
  readonly dir: string
  /** Shorter heartbeats and thresholds (for tests). */
  readonly fast?: boolean
  /** Print every agent log line too. */
  readonly verbose?: boolean
  readonly write?: (text: string) => void
  /**
   * Leave the gateway and the agents running after the runbook, for the web console: the
   * summary's `running` says where, and stops them. (Otherwise everything stops at the end.)
   */
  readonly keepRunning?: boolean
}

/** The demo's fleet, still up (keepRunning): the console's address, a file holding a sign-in key, and how to stop it. */
export interface RunningDemo {
  readonly consoleUrl: string
  /** A file (mode 0600) with an admin API key of the demo's account: sign in to the console with it. */
  readonly apiKeyFile: string
  readonly stop: () => Promise<void>
}

export interface DemoSummary {
  readonly clusters: ReadonlyArray<{ id: string; name: string; status: string; api_endpoint: string; nodes: number; vip_epoch: number | null }>
  readonly nodes: ReadonlyArray<{ hostname: string; cluster: string; role: string; status: string; agent: string }>
  readonly rejectedWorker: { code: string; message: string; retry_after_ms: number }
  readonly networkWarnings: ReadonlyArray<string>
  readonly silenceDetectedMs: number
  readonly convergenceMs: number
  /** Survivors whose WireGuard file on disk routes the VIP to the promoted holder (or who hold it). */
  readonly routedToNewHolder: number
  readonly kubeconfigs: ReadonlyArray<string>
  readonly stagingInstancesStillConnected: number
  readonly elapsedMs: number
  readonly running?: RunningDemo
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const runDemo = async (options: DemoOptions): Promise<DemoSummary> => {
  const write = options.write ?? ((text: string) => process.stdout.write(text))
  const started = Date.now()
  const timing = { heartbeatIntervalMs: options.fast ? 150 : 500, silenceThresholdMs: options.fast ? 600 : 2_000, readyDelayMs: options.fast ? 100 : 800 }
  rmSync(options.dir, { recursive: true, force: true })
  mkdirSync(options.dir, { recursive: true })

  let stepNumber = 0
  const step = async <A>(title: string, body: () => Promise<A>, describe: (result: A) => string = () => "") => {
    stepNumber += 1
    const at = Date.now()
    write(`\n${String(stepNumber).padStart(2)}. ${title}\n`)
    const result = await body()
    const text = describe(result)
    write(`${text === "" ? "" : `${text.replace(/^/gm, "    ")}\n`}    ✓ ${Date.now() - at} ms\n`)
    return result
  }
  const phase = (title: string) => write(`\n── ${title} ${"─".repeat(Math.max(0, 66 - title.length))}\n`)

  const gateway = await startGateway({
    database: join(options.dir, "fleet.db"),
    listen: "127.0.0.1:0",
    adminListen: "127.0.0.1:0",
    logLevel: options.verbose ? "info" : "silent",
    heartbeatIntervalMs: timing.heartbeatIntervalMs,
    silenceThresholdMs: timing.silenceThresholdMs,
    sensorIntervalMs: 50
  })
  const agents: Array<ReferenceAgent> = []
  const stop = async () => {
    for (const agent of agents) agent.stop()
    await gateway.close()
  }
  let keep = false
  try {
    write(`Fleetplane demo — gateway at ${gateway.agentUrl} (admin ${gateway.adminUrl}), database ${join(options.dir, "fleet.db")}\n`)
    write(`heartbeats every ${timing.heartbeatIntervalMs} ms, a VIP holder is silent after ${timing.silenceThresholdMs} ms\n`)

    // The operator's side: the admin HTTP API with an account key.
    const account = await gateway.fleet.createAccount({ name: "acme" })
    const { api_key } = await gateway.fleet.createApiKey({ account_id: account.id, name: "demo", role: "admin" })
    const call = async (name: string, input: Record<string, unknown> = {}): Promise<any> => {
      const response = await fetch(`${gateway.adminUrl}/v1/actions/${name}`, {
        method: "POST",
        headers: { authorization: `Bearer ${api_key}`, "content-type": "application/json" },
        body: JSON.stringify(input)
      })
      const body = (await response.json()) as any
      if (!response.ok) throw Object.assign(new Error(`${name}: ${body.error.code}: ${body.error.message}`), { error: body.error, status: response.status })
      return body
    }
    const waitFor = async <A>(check: () => Promise<A | undefined | false>, what: string, timeoutMs = 20_000): Promise<A> => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const value = await check()
        if (value !== undefined && value !== false) return value
        if (Date.now() > deadline) throw new Error(`demo: timed out waiting for ${what}`)
        await sleep(25)
      }
    }
    const provision = async (hostname: string, templateId: string, networkId: string) => {
      const node = await call("system_create_node", { hostname, node_template_id: templateId })
      const instance = await call("system_provision_instance", { node_id: node.id })
      await call("system_sdwan_attach_peer", { network_id: networkId, node_instance_id: instance.id })
      return { hostname, instanceId: instance.id as string, credential: instance.agent_credential as string }
    }
    const roots = new Map<ReferenceAgent, string>()
    // R24: an agent is given only its gateway, instance and credential; it joins what its template assigns.
    const startAgent = async (node: { hostname: string; instanceId: string; credential: string }) => {
      const agent = await startReferenceAgent({
        gatewayUrl: gateway.agentUrl,
        stateDir: join(options.dir, "agents", node.hostname),
        root: join(options.dir, "nodes", node.hostname),
        instanceId: node.instanceId,
        credential: node.credential,
        simulate: true,
        readyDelayMs: timing.readyDelayMs,
        backoff: { initialDelayMs: 100, maxDelayMs: 1_000, multiplier: 2 },
        log: (line) => options.verbose && write(`      [${node.hostname}] ${line}\n`)
      })
      agents.push(agent)
      roots.set(agent, join(options.dir, "nodes", node.hostname))
      return agent
    }
    const clusterActive = (id: string) => async () => ((await call("kubernetes_get_cluster", { id })).status === "active" ? true : undefined)

    phase("Setup: one SD-WAN network per environment")
    const { prod, staging, warnings } = await step(
      "Create networks prod (10.42.0.0/16) and staging (10.43.0.0/16, k3s's default service CIDR)",
      async () => {
        const prodNet = await call("system_sdwan_create_network", { name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
        const stagingNet = await call("system_sdwan_create_network", { name: "staging", handle: "stg", pod_subnet_prefix: "10.43.0.0/16" })
        return { prod: prodNet, staging: stagingNet, warnings: stagingNet.warnings as Array<string> }
      },
      (r) => `prod    ${r.prod.interface_name}  overlay ${r.prod.overlay_prefix}\nstaging ${r.staging.interface_name}   overlay ${r.staging.overlay_prefix}\nwarning (R4): ${r.warnings.join("; ")}`
    )

    phase("Phase 1 — bootstrap cluster A (prod)")
    const prodServers = await call("system_create_template", { name: "k3s-prod-server" })
    await call("system_assign_module_to_template", { template_id: prodServers.id, module_name: "k3s-server", config: { cluster_name: "k3s-prod" } })
    const prod1 = await provision("k3s-prod-server-1", prodServers.id, prod.id)
    const prodCluster = await step(
      "k3s-prod-server-1: provision, attach SD-WAN peer, assign k3s-server (no target: it creates the cluster k3s-prod)",
      async () => {
        const agent = await startAgent(prod1)
        const accepted = await agent.joined
        await waitFor(clusterActive(accepted.cluster_id), "prod active")
        return call("kubernetes_get_cluster", { id: accepted.cluster_id })
      },
      (c) => `cluster ${c.name} (${c.id}) is ${c.status}; api_endpoint ${c.api_endpoint}\nwarning: ${c.warnings.join("; ")}`
    )

    phase("Phase 2 — bootstrap cluster B (staging)")
    const stagingServers = await call("system_create_template", { name: "k3s-staging-server" })
    await call("system_assign_module_to_template", { template_id: stagingServers.id, module_name: "k3s-server", config: { cluster_name: "k3s-staging" } })
    const staging1 = await provision("k3s-staging-server-1", stagingServers.id, staging.id)
    const stagingCluster = await step(
      "k3s-staging-server-1 bootstraps a second cluster, k3s-staging, in the same account",
      async () => {
        const agent = await startAgent(staging1)
        const accepted = await agent.joined
        await waitFor(clusterActive(accepted.cluster_id), "staging active")
        return call("kubernetes_get_cluster", { id: accepted.cluster_id })
      },
      (c) => `cluster ${c.name} is ${c.status}; api_endpoint ${c.api_endpoint}; service CIDR ${c.service_cidr} (10.43.0.0/16 is its pod prefix)`
    )

    phase("Phase 3 — workers targeted at a specific cluster")
    const prodWorkers = await call("system_create_template", { name: "prod-workers" })
    await call("system_assign_module_to_template", { template_id: prodWorkers.id, module_name: "k3s-agent", config: { target_cluster_id: prodCluster.id } })
    const stagingWorkers = await call("system_create_template", { name: "staging-workers" })
    await call("system_assign_module_to_template", { template_id: stagingWorkers.id, module_name: "k3s-agent", config: { target_cluster_id: stagingCluster.id } })
    const prodWorkerAgents = await step(
      "Three prod workers and two staging workers join the cluster their template's target_cluster_id names (no agent flags)",
      async () => {
        const joined: Array<ReferenceAgent> = []
        for (const [hostname, template, net] of [
          ["prod-worker-1", prodWorkers.id, prod.id],
          ["prod-worker-2", prodWorkers.id, prod.id],
          ["prod-worker-3", prodWorkers.id, prod.id],
          ["staging-worker-1", stagingWorkers.id, staging.id],
          ["staging-worker-2", stagingWorkers.id, staging.id]
        ] as const) {
          const agent = await startAgent(await provision(hostname, template, net))
          await agent.joined
          joined.push(agent)
        }
        return joined.slice(0, 3)
      },
      () => "prod-worker-1..3 -> prod, staging-worker-1..2 -> staging"
    )
    const rejectedWorker = await step(
      "A worker asking for another cluster than its template names (a stale flag) is refused, with its reason",
      async () => {
        const stray = await provision("stray-worker", prodWorkers.id, prod.id)
        // An agent started with a --target-cluster that disagrees with its assignment (R24).
        let rejection: JoinRejectedBody | undefined
        const agent = await startReferenceAgent({
          gatewayUrl: gateway.agentUrl,
          stateDir: join(options.dir, "agents", stray.hostname),
          root: join(options.dir, "nodes", stray.hostname),
          instanceId: stray.instanceId,
          credential: stray.credential,
          targetClusterId: "clu_0stale0000000000000000000",
          simulate: true,
          onJoinRejected: (body) => (rejection ??= body),
          log: () => undefined
        })
        agents.push(agent)
        const answer = await waitFor(async () => rejection, "the rejection")
        agent.stop()
        return answer
      },
      (r) => `join_rejected: ${r.code} — ${r.message}\nretry_after_ms: ${r.retry_after_ms}`
    )

    phase("Phase 4 — HA control plane and a VIP failover")
    const prodJoiners = await call("system_create_template", { name: "k3s-prod-server-join" })
    await call("system_assign_module_to_template", { template_id: prodJoiners.id, module_name: "k3s-server", config: { target_cluster_id: "k3s-prod" } })
    const prod2 = await provision("k3s-prod-server-2", prodJoiners.id, prod.id)
    await step(
      "k3s-prod-server-2 (its template's k3s-server targets k3s-prod) joins prod as a second control-plane server",
      async () => {
        const agent = await startAgent(prod2)
        await agent.joined
        return waitFor(async () => {
          const { nodes } = await call("kubernetes_list_nodes", { cluster_id: prodCluster.id })
          const servers = nodes.filter((n: any) => n.role === "control-plane")
          return servers.length === 2 && servers.every((n: any) => n.status === "ready") ? nodes : undefined
        }, "two ready servers")
      },
      (nodes) => nodes.map((n: any) => `${n.hostname.padEnd(20)} ${n.role.padEnd(14)} ${n.status}`).join("\n")
    )
    const vipId = (await call("kubernetes_get_cluster", { id: prodCluster.id })).virtual_ip.id as string
    await sleep(timing.heartbeatIntervalMs * 3)
    await step(
      "Dry-run failover: who would be promoted",
      () => call("system_sdwan_failover_virtual_ip", { virtual_ip_id: vipId, dry_run: true }),
      (plan) => `current_holder ${plan.current_holder_hostname} (${plan.current_holder})\n${plan.candidates.map((c: any) => `candidate ${c.hostname} (${c.peer}) score ${c.score}`).join("\n")}`
    )
    const prodAgents = [agents.find((a) => a.instanceId === prod1.instanceId)!, agents.find((a) => a.instanceId === prod2.instanceId)!, ...prodWorkerAgents]
    const holder = prodAgents[0]!
    const { silenceDetectedMs } = await step(
      "Kill the prod VIP holder (k3s-prod-server-1): its heartbeats stop",
      async () => {
        const killedAt = Date.now()
        holder.stop()
        const event = await waitFor(async () => {
          const { events } = await call("system_list_events", { limit: 1000 })
          return events.find((e: any) => e.type === "sdwan.vip_holder_silent")
        }, "the silence event")
        return { silenceDetectedMs: Date.now() - killedAt, event }
      },
      (r) => `sdwan.vip_holder_silent ${r.silenceDetectedMs} ms after the kill (threshold ${timing.silenceThresholdMs} ms after its last heartbeat): holder ${r.event.data.holder_peer_id}, epoch ${r.event.data.epoch}`
    )
    const approval = await step(
      "The sdwan_vip_failover skill files an approval (policy require_approval)",
      () => waitFor(async () => (await call("system_list_approvals", { status: "pending" })).approvals[0], "the approval"),
      (a) => `${a.id}: ${a.summary}`
    )
    const survivors = prodAgents.slice(1)
    const versionOf = (agent: ReferenceAgent) => agent.state.appliedConfigs().find((c) => c.kind === "vip_routes" && c.key === prod.id)?.version ?? 0
    const before = survivors.map(versionOf)
    const { convergenceMs, routedToNewHolder } = await step(
      "Approve it: the best candidate is promoted and every prod peer gets its new WireGuard config",
      async () => {
        const decidedAt = Date.now()
        const decided = await call("system_approve", { approval_id: approval.id })
        await waitFor(async () => survivors.every((agent, i) => versionOf(agent) > before[i]!), "every peer applied its new config")
        const convergenceMs = Date.now() - decidedAt
        // On disk, each survivor's wg-sdwan-prod.conf now routes the VIP /128 to the new holder's [Peer].
        const { address } = (await call("kubernetes_get_cluster", { id: prodCluster.id })).virtual_ip
        const routedToNewHolder = survivors.filter((agent) => {
          const blocks = readFileSync(join(roots.get(agent)!, wireguardPath(prod.interface_name)), "utf8").split("[Peer]").slice(1)
          const routing = blocks.filter((block) => block.includes(`${address}/128`))
          const own = agent.state.heldVips().some((held) => held.vip_id === vipId)
          return own ? routing.length === 0 : routing.length === 1 && routing[0]!.includes(`(${decided.resolution.promoted})`)
        }).length
        return { decided, convergenceMs, routedToNewHolder }
      },
      (r) =>
        `${r.decided.status}: promoted ${r.decided.resolution.hostname} (${r.decided.resolution.promoted}) at epoch ${r.decided.resolution.epoch}\nall ${survivors.length} live prod peers applied and acked their new WireGuard configs in ${r.convergenceMs} ms (only the VIP routes travel); ${r.routedToNewHolder}/${survivors.length} now route the VIP /128 to the new holder`
    )

    phase("Phase 5 — a kubeconfig per cluster")
    const kubeconfigs = await step(
      "Write ./.demo/k3s-prod.yaml and ./.demo/k3s-staging.yaml (mode 0600)",
      async () => {
        const files = []
        for (const [file, cluster] of [
          ["k3s-prod.yaml", prodCluster],
          ["k3s-staging.yaml", stagingCluster]
        ] as const) {
          const { kubeconfig } = await call("kubernetes_get_kubeconfig", { cluster_id: cluster.id })
          const path = join(options.dir, file)
          writeFileSync(path, kubeconfig, { mode: 0o600 })
          chmodSync(path, 0o600)
          files.push(path)
        }
        return files
      },
      (files) => `${files.join("\n")}\nKUBECONFIG=${files.join(":")} kubectl config view --merge --flatten  # contexts: ${prodCluster.name}, ${stagingCluster.name}`
    )

    phase("Phase 6 — cross-cluster operations")
    const stagingInstancesStillConnected = await step(
      "Decommission staging (destructive: confirmation_required, then confirmed with its token)",
      async () => {
        const first = await call("kubernetes_decommission_cluster", { cluster_id: stagingCluster.id }).catch((error) => error.error)
        write(`    ${first.code}: ${first.details.summary}\n`)
        await call("kubernetes_decommission_cluster", { cluster_id: stagingCluster.id, confirmation_token: first.details.confirmation_token })
        const stagingIds = agents.filter((a) => a.state.dir.includes("staging")).map((a) => a.instanceId)
        return stagingIds.filter((id) => gateway.sessions.get(id) !== undefined).length
      },
      (connected) => `staging is decommissioned; its ${connected} instances are still running and connected`
    )

    const clusters = []
    for (const cluster of (await call("kubernetes_list_clusters", { include_decommissioned: true })).clusters) {
      const detail = await call("kubernetes_get_cluster", { id: cluster.id })
      clusters.push({ id: cluster.id, name: cluster.name, status: cluster.status, api_endpoint: cluster.api_endpoint, nodes: detail.node_count, vip_epoch: detail.virtual_ip?.epoch ?? null })
    }
    const nodes = []
    for (const cluster of clusters) {
      for (const node of (await call("kubernetes_list_nodes", { cluster_id: cluster.id })).nodes) {
        nodes.push({ hostname: node.hostname, cluster: cluster.name, role: node.role, status: node.status, agent: node.agent })
      }
    }
    write(`\n── Summary ${"─".repeat(58)}\n`)
    write(`${"CLUSTER".padEnd(22)}${"STATUS".padEnd(16)}${"NODES".padEnd(7)}${"VIP EPOCH".padEnd(11)}API ENDPOINT\n`)
    for (const c of clusters) write(`${c.name.padEnd(22)}${c.status.padEnd(16)}${String(c.nodes).padEnd(7)}${String(c.vip_epoch ?? "-").padEnd(11)}${c.api_endpoint}\n`)
    write(`\n${"NODE".padEnd(22)}${"CLUSTER".padEnd(22)}${"ROLE".padEnd(15)}${"K3S".padEnd(11)}AGENT\n`)
    for (const n of nodes) write(`${n.hostname.padEnd(22)}${n.cluster.padEnd(22)}${n.role.padEnd(15)}${n.status.padEnd(11)}${n.agent}\n`)
    const elapsedMs = Date.now() - started
    write(`\nDone in ${(elapsedMs / 1000).toFixed(1)} s. Database, agent state and kubeconfigs are in ${options.dir}.\n`)
    let running: RunningDemo | undefined
    if (options.keepRunning === true) {
      // The key goes to a file, not the terminal: secrets stay out of output and logs.
      const apiKeyFile = join(options.dir, "console-api-key")
      writeFileSync(apiKeyFile, `${api_key}\n`, { mode: 0o600 })
      running = { consoleUrl: `${gateway.adminUrl}/`, apiKeyFile, stop }
      keep = true
    }
    return {
      clusters,
      nodes,
      rejectedWorker: { code: rejectedWorker.code, message: rejectedWorker.message, retry_after_ms: rejectedWorker.retry_after_ms },
      networkWarnings: warnings,
      silenceDetectedMs,
      convergenceMs,
      routedToNewHolder,
      kubeconfigs,
      stagingInstancesStillConnected,
      elapsedMs,
      ...(running === undefined ? {} : { running })
    }
  } finally {
    if (!keep) await stop()
  }
}
