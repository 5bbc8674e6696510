/**
 * The runbook's changes through the admin API: create and assign, provision and attach,
 * failover and approvals, kubeconfigs, rolling upgrades, events, and `--wait` / `wait` for
 * what takes time (a cluster coming up, a node joining, a decommission, a failover, an upgrade).
 */
import { chmodSync, writeFileSync } from "node:fs"
import { type Command, Option } from "commander"
import { CliError } from "./admin-client"
import type { CliSession } from "./cli-session"
import { speaks } from "./cli-words"
import { followEventStream, type FleetEventLine } from "./event-stream"
import { milliseconds } from "./local-commands"
import { fields, table } from "./output"
import { duration, waitUntil } from "./waiting"

const DEFAULT_WAIT = "10m"

const withWait = (command: Command, what: string) =>
  command.option("--wait", `wait until ${what}`).option("--timeout <duration>", "how long --wait waits (90s, 5m, 1h)", DEFAULT_WAIT)

/** `--since`: a sequence number, a duration ago, or a time (ISO 8601). */
const sinceOf = (value: string): { seq: number; at?: string } => {
  if (/^\d+$/.test(value)) return { seq: Number(value) }
  if (/^\d+(\.\d+)?(ms|s|m|h)$/.test(value)) return { seq: 0, at: new Date(Date.now() - duration(value)).toISOString() }
  const time = Date.parse(value)
  if (Number.isNaN(time)) throw new CliError(`--since takes a sequence number (1234), a duration (10m, 2h) or a time (2026-12-01T10:00:00Z), not "${value.slice(0, 40)}"`, 2, "invalid_since")
  return { seq: 0, at: new Date(time).toISOString() }
}

/** Which events `fleetplane events` shows: of a type (or under a type prefix) and about a cluster. */
const eventFilter = (type: string | undefined, clusterId: string | undefined) => (event: FleetEventLine) =>
  (type === undefined || event.type === type || event.type.startsWith(`${type}.`) || event.type.startsWith(`${type}_`)) &&
  (clusterId === undefined || event.data?.cluster_id === clusterId)

export const registerOperateCommands = (program: Command, session: CliSession) => {
  const { run, print, io } = session

  /** An instance's config of one kind and key, as its agent last applied it. */
  const configOf = async (instance: string, kind: string, key?: string) => {
    const view = await run("system_get_instance", { instance_id: instance })
    return { view, config: (view.configs as Array<any>).find((c) => c.kind === kind && (key === undefined || c.key === key)) }
  }

  // --- clusters: waiting for one, and its lifecycle --------------------------------------------
  const clusters = program.command("clusters").description("K3s clusters")
  const waitForCluster = (cluster: string, wanted: "active" | "decommissioned", timeoutMs: number) =>
    waitUntil({ io, what: `cluster ${cluster} to be ${wanted}`, timeoutMs }, async () => {
      const found = await run("kubernetes_get_cluster", { id: cluster }).catch((error: unknown) => {
        // A cluster is created by its first server's join: until then, it is not there yet.
        if (error instanceof CliError && error.code === "cluster_not_found" && wanted === "active") return undefined
        throw error
      })
      if (found === undefined) return { done: false, status: "not created yet (its first server's agent has not joined)" }
      return {
        done: found.status === wanted,
        status: `${found.status}, ${found.node_count} node(s)${found.virtual_ip?.holder_hostname ? `, VIP on ${found.virtual_ip.holder_hostname}` : ""}`,
        value: found
      }
    })
  speaks(
    clusters
      .command("wait <cluster>")
      .description("wait until a cluster (id or name) is active (--for active, the default: it may not exist yet) or decommissioned")
      .addOption(new Option("--for <state>", "the state to wait for").choices(["active", "decommissioned"]).default("active"))
      .option("--timeout <duration>", "give up after (90s, 5m, 1h)", DEFAULT_WAIT),
    { id: "<cluster>", cluster_id: "<cluster>" }
  ).action(async (cluster: string, options) => {
    const found = await waitForCluster(cluster, options.for, duration(options.timeout))
    print(found, (c) => `cluster ${c.name} is ${c.status}\n`)
  })
  speaks(clusters.command("nodes <cluster>").description("the cluster's Kubernetes nodes"), { cluster_id: "<cluster>" }).action(async (cluster) => {
    const result = await run("kubernetes_list_nodes", { cluster_id: cluster })
    print(result, (r) => (session.format() === "name" ? r.nodes.map((n: any) => `node/${n.hostname}\n`).join("") : table(r.nodes, ["hostname", "role", "status", "agent", "last_heartbeat_at", "instance_id"])))
  })
  speaks(
    withWait(
      clusters.command("decommission <cluster>").description("decommission a cluster; instances keep running (asks for confirmation)").option("-y, --yes", "confirm without asking"),
      "every member's agent has left the cluster"
    ),
    { cluster_id: "<cluster>" }
  ).action(async (cluster, options) => {
    const members = options.wait === true ? (await run("kubernetes_list_nodes", { cluster_id: cluster })).nodes : []
    const result = await run("kubernetes_decommission_cluster", { cluster_id: cluster }, options)
    if (options.wait === true) {
      await waitUntil({ io, what: `the members of ${cluster} to leave`, timeoutMs: duration(options.timeout) }, async () => {
        const waiting: Array<string> = []
        for (const member of members) {
          const { view, config } = await configOf(member.instance_id, "leave", result.cluster_id)
          if (config === undefined || config.applied_version !== config.version) waiting.push(`${member.hostname ?? member.instance_id}${view.agent === "connected" ? "" : " (agent disconnected)"}`)
        }
        return { done: waiting.length === 0, status: `${members.length - waiting.length} of ${members.length} left${waiting.length === 0 ? "" : `; waiting for ${waiting.join(", ")}`}` }
      })
    }
    print(result, fields)
  })
  speaks(
    clusters.command("rotate-token <cluster>").description("rotate the join token; member agents get the new one (asks for confirmation)").option("-y, --yes", "confirm without asking"),
    { cluster_id: "<cluster>" }
  ).action(async (cluster, options) => print(await run("kubernetes_rotate_token", { cluster_id: cluster }, options), fields))

  // --- inventory changes ------------------------------------------------------------------------
  const networks = program.command("networks").description("SD-WAN networks")
  const createNetwork = networks
    .command("create")
    .description("create a network (WireGuard interface wg-sdwan-<handle>)")
    .requiredOption("--name <name>")
    .requiredOption("--handle <handle>", "1-6 characters of a-z, 0-9, -")
    .option("--pod-prefix <cidr>", "pod subnet prefix, e.g. 10.42.0.0/16")
    .option("--overlay-prefix <cidr>", "IPv6 ULA /64 (allocated when omitted)")
    .option("--overlay-ipv4-prefix <cidr>", "IPv4 range for node addresses (a free /20 of 100.64.0.0/10 when omitted)")
    .option("--listen-port <port>", "WireGuard listen port", "51820")
    .action(async (options) => {
      const result = await run("system_sdwan_create_network", {
        name: options.name,
        handle: options.handle,
        listen_port: Number(options.listenPort),
        ...(options.podPrefix === undefined ? {} : { pod_subnet_prefix: options.podPrefix }),
        ...(options.overlayPrefix === undefined ? {} : { overlay_prefix: options.overlayPrefix }),
        ...(options.overlayIpv4Prefix === undefined ? {} : { overlay_ipv4_prefix: options.overlayIpv4Prefix })
      })
      // Warnings once, on stderr, so a script reading stdout gets the network only.
      const { warnings, ...network } = result
      print(result, () => fields(network))
      for (const warning of warnings as Array<string>) io.err(`warning: ${warning}\n`)
    })
  speaks(createNetwork, { pod_subnet_prefix: "--pod-prefix", overlay_prefix: "--overlay-prefix", overlay_ipv4_prefix: "--overlay-ipv4-prefix", listen_port: "--listen-port" })

  const templates = program.command("templates").description("node templates and module assignments")
  templates
    .command("create")
    .description("create a template")
    .requiredOption("--name <name>")
    .action(async (options) => print(await run("system_create_template", { name: options.name }), fields))
  speaks(
    templates
      .command("assign")
      .description("assign k3s-server or k3s-agent to a template")
      .requiredOption("--template <template>", "the template (id or name)")
      .addOption(new Option("--module <name>").choices(["k3s-server", "k3s-agent"]).makeOptionMandatory())
      .option("--target-cluster <cluster>", "the cluster to join, by id or name (required for workers in multi-cluster accounts)")
      .option("--cluster-name <name>", "for a bootstrapping server: the name of the cluster it creates (default: its hostname)")
      .addOption(new Option("--vip-policy <policy>", "for a bootstrapping server").choices(["require_approval", "automatic"]))
      .addOption(new Option("--cni <plugin>").choices(["flannel", "ovn-kubernetes"])),
    { template_id: "--template", module_name: "--module", target_cluster_id: "--target-cluster", cni_plugin: "--cni" }
  ).action(async (options) => {
    const config = {
      ...(options.targetCluster === undefined ? {} : { target_cluster_id: options.targetCluster }),
      ...(options.clusterName === undefined ? {} : { cluster_name: options.clusterName }),
      ...(options.vipPolicy === undefined ? {} : { vip_policy: options.vipPolicy }),
      ...(options.cni === undefined ? {} : { cni_plugin: options.cni })
    }
    print(await run("system_assign_module_to_template", { template_id: options.template, module_name: options.module, config }), fields)
  })

  const nodes = program.command("nodes").description("nodes (machine roles)")
  speaks(
    nodes
      .command("create")
      .description("create a node from a template")
      .requiredOption("--hostname <name>", "RFC 1123 label; becomes the Kubernetes node name")
      .requiredOption("--template <template>", "the template (id or name)"),
    { node_template_id: "--template" }
  ).action(async (options) => print(await run("system_create_node", { hostname: options.hostname, node_template_id: options.template }), fields))

  const instances = program.command("instances").description("node instances (machines with an agent)")
  speaks(instances.command("provision").description("provision an instance; prints its agent credential once").requiredOption("--node <node>", "the node (id or hostname)"), {
    node_id: "--node"
  }).action(async (options) => {
    const result = await run("system_provision_instance", { node_id: options.node })
    print(result, (r) => `${fields(r)}Give agent_credential to this node's agent now: it is not shown again.\n`)
  })
  speaks(
    instances
      .command("rotate-credential <instance>")
      .description("give an instance's agent a new credential, delivered over its session; prints it once")
      .option("--grace-hours <hours>", "how long the previous credential keeps working if the agent does not confirm the new one (default 24)"),
    { instance_id: "<instance>" }
  ).action(async (instance, options) => {
    const result = await run("system_rotate_agent_credential", {
      instance_id: instance,
      ...(options.graceHours === undefined ? {} : { grace_hours: Number(options.graceHours) })
    })
    print(result, (r) => `${fields(r)}The agent receives the new credential over its session; keep this copy only if it is offline.\n`)
  })
  speaks(instances.command("terminate <instance>").description("terminate an instance (asks for confirmation)").option("-y, --yes", "confirm without asking"), {
    instance_id: "<instance>"
  }).action(async (instance, options) => print(await run("system_terminate_instance", { instance_id: instance }, options), fields))
  speaks(
    instances
      .command("wait <instance>")
      .description("wait until an instance's agent is connected, or its node has joined a cluster (joined), or is ready in it (ready)")
      .addOption(new Option("--for <state>", "what to wait for").choices(["connected", "joined", "ready"]).default("ready"))
      .option("--timeout <duration>", "give up after (90s, 5m, 1h)", DEFAULT_WAIT),
    { instance_id: "<instance>" }
  ).action(async (instance: string, options) => {
    const found = await waitUntil({ io, what: `${instance} to be ${options.for}`, timeoutMs: duration(options.timeout) }, async () => {
      const view = await run("system_get_instance", { instance_id: instance })
      if (view.status !== "running") throw new CliError(`instance ${view.id} is ${view.status}; nothing to wait for`, 6, "instance_terminated")
      let done = view.agent === "connected"
      let status = `agent ${view.agent}`
      if (options.for !== "connected" && done) {
        done = view.cluster_id !== null
        status = view.cluster_id === null ? "agent connected, not in a cluster yet" : `${view.role} of ${view.cluster_id}`
        if (options.for === "ready" && done) {
          const member = (await run("kubernetes_list_nodes", { cluster_id: view.cluster_id })).nodes.find((n: any) => n.instance_id === view.id)
          done = member?.status === "ready"
          status = `${view.role} of ${view.cluster_id}, ${member?.status ?? "not listed"}`
        }
      }
      return { done, status, value: view }
    })
    print(found, (v) => `${v.hostname ?? v.id}: ${options.for}\n`)
  })

  const peers = program.command("peers").description("SD-WAN peers (instances attached to networks)")
  speaks(
    peers.command("attach").description("attach an instance to a network").requiredOption("--network <network>", "id, handle or name").requiredOption("--instance <instance>", "id or hostname"),
    { network_id: "--network", node_instance_id: "--instance" }
  ).action(async (options) => print(await run("system_sdwan_attach_peer", { network_id: options.network, node_instance_id: options.instance }), fields))
  speaks(
    peers
      .command("detach")
      .description("detach an instance from a network (asks for confirmation); refused while it holds a VIP or its cluster runs there")
      .requiredOption("--network <network>", "id, handle or name")
      .requiredOption("--instance <instance>", "id or hostname")
      .option("-y, --yes", "confirm without asking"),
    { network_id: "--network", node_instance_id: "--instance" }
  ).action(async (options) => print(await run("system_sdwan_detach_peer", { network_id: options.network, node_instance_id: options.instance }, options), fields))

  // --- kubeconfigs, failover, approvals ---------------------------------------------------------
  speaks(
    program
      .command("kubeconfig")
      .description("kubeconfigs")
      .command("get <cluster>")
      .description("an admin kubeconfig for a cluster")
      .option("--out <file>", "write it to this file (mode 0600) instead of printing it")
      .option("--context-name <name>", "name the context this (default: the cluster's name)"),
    { cluster_id: "<cluster>" }
  ).action(async (cluster, options) => {
    const result = await run("kubernetes_get_kubeconfig", { cluster_id: cluster, ...(options.contextName === undefined ? {} : { context_name: options.contextName }) })
    if (options.out !== undefined) {
      writeFileSync(options.out, result.kubeconfig, { mode: 0o600 })
      chmodSync(options.out, 0o600)
      print({ written: options.out, api_endpoint: result.api_endpoint, expires_at: result.expires_at }, fields)
    } else {
      print(result, (r) => r.kubeconfig)
    }
  })

  speaks(
    withWait(
      program
        .command("failover <vip>")
        .description("fail a VIP (its id, or its cluster's id or name) over to its best candidate (asks for confirmation), or show the plan with --dry-run")
        .option("--dry-run", "show the current holder and every candidate's score")
        .option("-y, --yes", "confirm without asking"),
      "the new holder's agent has taken the VIP"
    ),
    { virtual_ip_id: "<vip>" }
  ).action(async (vip, options) => {
    const result = await run("system_sdwan_failover_virtual_ip", { virtual_ip_id: vip, dry_run: options.dryRun === true }, options)
    if (options.wait === true && result.resolved === true) await waitForHolder(result.current_holder, result.current_holder_hostname, duration(options.timeout))
    print(result, (r) =>
      r.dry_run
        ? `current holder: ${r.current_holder_hostname ?? r.current_holder ?? "-"}\n${table(r.candidates, ["hostname", "score", "disqualified", "peer"])}`
        : fields(r)
    )
  })

  /** The new holder has taken the VIP: its agent applied the VIP routes written by the promotion. */
  const waitForHolder = async (peerId: string, hostname: string | null, timeoutMs: number) => {
    const networkOf = (await run("system_sdwan_list_virtual_ips", {})).virtual_ips.find((v: any) => v.holder_peer_id === peerId)
    if (networkOf === undefined) return
    const holder = (await run("system_sdwan_list_peers", { network_id: networkOf.network_id })).peers.find((p: any) => p.id === peerId)
    const target = (await configOf(holder.instance_id, "vip_routes", networkOf.network_id)).config?.version ?? 0
    await waitUntil({ io, what: `${hostname ?? peerId} to take the VIP`, timeoutMs }, async () => {
      const { view, config } = await configOf(holder.instance_id, "vip_routes", networkOf.network_id)
      const done = (config?.applied_version ?? 0) >= target
      return { done, status: done ? "taken" : `told, not applied yet (agent ${view.agent})` }
    })
  }

  const approvals = program.command("approvals").description("pending decisions (VIP failovers under require_approval)")
  speaks(withWait(approvals.command("approve <approval>").description("approve (a failover approved after the holder came back resolves as moot)"), "the new holder's agent has taken the VIP"), {
    approval_id: "<approval>"
  }).action(async (approval, options) => {
    const result = await run("system_approve", { approval_id: approval })
    const promoted = result.resolution?.promoted as string | undefined
    if (options.wait === true && result.status === "approved" && promoted !== undefined) await waitForHolder(promoted, result.resolution.hostname ?? null, duration(options.timeout))
    print(result, fields)
  })
  speaks(approvals.command("reject <approval>").description("reject").option("--reason <text>"), { approval_id: "<approval>" }).action(async (approval, options) =>
    print(await run("system_reject", { approval_id: approval, ...(options.reason === undefined ? {} : { reason: options.reason }) }), fields)
  )

  // --- events -----------------------------------------------------------------------------------
  program
    .command("events")
    .description("the account's event log, oldest first; --follow streams new events and resumes after a gateway restart")
    .option("--since <when>", "only events after this sequence number (1234), this long ago (10m, 2h) or this time (2026-12-01T10:00:00Z)", "0")
    .option("--type <type>", "only events of this type, or of every type under a prefix (sdwan.vip)")
    .option("--cluster <cluster>", "only events about this cluster (id or name)")
    .option("--limit <n>", "print at most this many events (without --follow)", "1000")
    .option("-f, --follow", "keep streaming new events")
    .action(async (options) => {
      const line = (e: FleetEventLine) =>
        session.format() === "json" ? `${JSON.stringify(e)}\n` : session.format() === "yaml" ? `---\n${fields(e as any)}` : `${e.seq}  ${e.at}  ${e.type}  ${JSON.stringify(e.data)}\n`
      const clusterId = options.cluster === undefined ? undefined : ((await run("kubernetes_get_cluster", { id: options.cluster })) as { id: string }).id
      const { seq: sinceSeq, at: sinceAt } = sinceOf(options.since)
      const filter = eventFilter(options.type, clusterId)
      const wanted = (event: FleetEventLine) => filter(event) && (sinceAt === undefined || event.at >= sinceAt)
      let since = sinceSeq
      if (options.follow !== true) {
        const limit = Number(options.limit)
        let shown = 0
        for (;;) {
          const page = ((await run("system_list_events", { since, limit: 1000 })) as { events: Array<FleetEventLine> }).events
          for (const event of page) {
            if (!wanted(event)) continue
            if (shown === limit) {
              // Say how to read on, rather than stopping silently.
              io.err(`(showing ${limit} events; more follow: fleetplane events --since ${since}${options.type === undefined ? "" : ` --type ${options.type}`}${options.cluster === undefined ? "" : ` --cluster ${options.cluster}`})\n`)
              return
            }
            io.out(line(event))
            shown += 1
            since = event.seq
          }
          if (page.length < 1000) return
          since = page.at(-1)!.seq
        }
      }
      await followEventStream(session, since, (event) => {
        if (wanted(event)) io.out(line(event))
      })
    })

  // --- rolling upgrades -------------------------------------------------------------------------
  const upgrade = program.command("upgrade").description("rolling module upgrades (system-rolling-module-upgrade)")
  const runProgress = (r: any) => {
    const state = r.state as { next_batch: number; plan: { batches: Array<unknown> }; in_flight: Record<string, unknown>; completed: Array<unknown>; failed: Array<{ instance_id: string; reason: string }> }
    return `${r.status}: batch ${Math.min(state.next_batch, state.plan.batches.length)} of ${state.plan.batches.length}, ${state.completed.length} upgraded, ${state.failed.length} failed, ${Object.keys(state.in_flight).length} upgrading`
  }
  const waitForRun = (runId: string, timeoutMs: number) =>
    waitUntil({ io, what: `upgrade ${runId}`, timeoutMs, intervalMs: 2000 }, async () => {
      const r = await run("skill_run_status", { run_id: runId })
      return { done: r.status !== "running", status: runProgress(r), value: r }
    })
  const runFields = (r: any) =>
    fields({
      run_id: r.run_id,
      status: r.status,
      batch: `${r.state.next_batch} of ${r.state.plan.batches.length}`,
      upgrading: Object.keys(r.state.in_flight).join(", ") || "-",
      completed: r.state.completed.length,
      failed: r.state.failed.map((f: { instance_id: string; reason: string }) => `${f.instance_id} (${f.reason})`).join("; ") || "-",
      warnings: r.state.plan.warnings.join("; ") || "-"
    })
  /** A run that did not complete is a failure of the command that waited for it. */
  const finished = (r: any) => {
    if (r.status !== "completed") throw new CliError(`upgrade ${r.run_id} ${r.status}: ${runProgress(r)}; fleetplane upgrade status ${r.run_id} shows why, upgrade resume continues it`, 6, `upgrade_${r.status}`)
    return r
  }
  speaks(
    withWait(
      upgrade
        .command("start")
        .description("plan and start a rolling upgrade of a template's instances (--template) or of a cluster's members (--cluster); --dry-run shows the plan only")
        .option("--template <template>", "upgrade this template's instances (the module must be assigned on it)")
        .option("--cluster <cluster>", "upgrade every member of this cluster running the module, whatever its template")
        .option("--dry-run", "show the plan (batches, quorum cap, warnings) and start nothing")
        .requiredOption("--module <id>", "k3s-server or k3s-agent (or the runbook's mod-… id)")
        .requiredOption("--version <id>", "target version id")
        .option("--batch-pct <pct>", "percent of instances per batch", "25")
        .option("--max-failures <n>", "halt after this many consecutive failures", "1")
        .option("--instance-timeout <ms>", "how long an instance may take to report the new version healthy", milliseconds, 600_000),
      "the run completes (exits non-zero if it halts or is aborted)"
    ),
    {
      template_id: "--template",
      cluster_id: "--cluster",
      module_id: "--module",
      target_version_id: "--version",
      max_consecutive_failures: "--max-failures",
      timeout_ms: "--instance-timeout"
    }
  ).action(async (options) => {
    const result = await run("execute_skill", {
      skill: "system-rolling-module-upgrade",
      inputs: {
        ...(options.template === undefined ? {} : { template_id: options.template }),
        ...(options.cluster === undefined ? {} : { cluster_id: options.cluster }),
        ...(options.dryRun === true ? { dry_run: true } : {}),
        module_id: options.module,
        target_version_id: options.version,
        batch_pct: Number(options.batchPct),
        max_consecutive_failures: Number(options.maxFailures),
        timeout_ms: options.instanceTimeout
      }
    })
    const summary = (r: any) =>
      fields({
        run_id: r.run_id ?? "- (preview)",
        status: r.status,
        module: r.module_name,
        batches: r.plan.batches.map((batch: ReadonlyArray<string>) => batch.length).join(" + ") || "-",
        warnings: r.plan.warnings.join("; ") || "-"
      })
    if (options.wait === true && result.run_id !== null) {
      io.err(summary(result))
      const done = finished(await waitForRun(result.run_id, duration(options.timeout)))
      return print(done, runFields)
    }
    print(result, summary)
  })
  speaks(upgrade.command("status <run>").description("progress of a rolling upgrade"), { run_id: "<run>" }).action(async (runId) =>
    print(await run("skill_run_status", { run_id: runId }), runFields)
  )
  speaks(upgrade.command("wait <run>").description("wait until a rolling upgrade finishes; exits non-zero unless it completed").option("--timeout <duration>", "give up after (90s, 5m, 1h)", DEFAULT_WAIT), {
    run_id: "<run>"
  }).action(async (runId, options) => print(finished(await waitForRun(runId, duration(options.timeout))), runFields))
  speaks(upgrade.command("resume <run>").description("resume a halted upgrade"), { run_id: "<run>" }).action(async (runId) => print(await run("skill_run_resume", { run_id: runId }), fields))
  speaks(upgrade.command("abort <run>").description("abort an upgrade; upgraded instances stay upgraded"), { run_id: "<run>" }).action(async (runId) =>
    print(await run("skill_run_abort", { run_id: runId }), fields)
  )

  // --- any action -------------------------------------------------------------------------------
  program
    .command("action <name> [input]")
    .description("run any action of the catalog with a JSON input (GET /v1/actions lists them)")
    .option("-y, --yes", "confirm a destructive action without asking")
    .action(async (name, input, options) => {
      let parsed: Record<string, unknown>
      try {
        parsed = input === undefined ? {} : JSON.parse(input)
      } catch {
        throw new CliError("the input must be a JSON object, e.g. '{\"cluster_id\":\"clu_…\"}'", 2, "invalid_json")
      }
      print(await run(name, parsed, options), (r) => `${JSON.stringify(r, null, 2)}\n`)
    })
}
