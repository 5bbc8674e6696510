/**
 * `fleetplane`: run a gateway, manage accounts and API keys on its database, and drive every
 * runbook step through the admin API. Tables for people, `--json` for scripts, `--help`
 * everywhere. Exit codes follow the SDK's error categories (2 invalid input, 3 unauthorized,
 * 4 not found, 5 conflict, 6 state, 7 confirmation needed, 10 unavailable).
 */
import { chmodSync, existsSync, writeFileSync } from "node:fs"
import { resolve as resolvePath } from "node:path"
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from "commander"
import { DEFAULT_ADMIN_URL, resolveConnection } from "./cli-config"
import { registerConfigCommands } from "./config-commands"
import { COMPLETION_SHELLS, completionScript, type CompletionShell } from "./completion"
import WebSocket from "ws"
import { createFleet } from "@fleetplane/sdk"
import { startGateway } from "../gateway"
import type { LogLevel } from "../log"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { adminApi, CliError, exitCodeFor } from "./admin-client"
import { adminApiBackend } from "../mcp/fleet-backend"
import { createFleetMcpServer } from "../mcp/mcp-server"
import { GATEWAY_VERSION } from "../version"
import { fields, table, type Io } from "./output"

interface GlobalOptions {
  readonly url?: string
  readonly apiKey?: string
  readonly context?: string
  readonly json?: boolean
}

const DEFAULT_DB = "fleet.db"

/** A flag in milliseconds: a positive whole number, or the command stops with usage. */
const milliseconds = (value: string): number => {
  const parsed = Number(value)
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed <= 0) {
    throw new InvalidArgumentError(`expected a positive whole number of milliseconds, got "${value.slice(0, 32)}"`)
  }
  return parsed
}

const wholeNumber = (value: string): number => {
  const parsed = Number(value)
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed)) throw new InvalidArgumentError(`expected a whole number (0 or more), got "${value.slice(0, 32)}"`)
  return parsed
}

/** Set by `fleetplane terminal`: the remote program's exit status becomes the CLI's. */
let terminalExitCode: number | undefined

export const buildProgram = (io: Io, env: NodeJS.ProcessEnv = process.env) => {
  const program = new Command("fleetplane")
    .description("Run many K3s clusters over a WireGuard SD-WAN: the Fleetplane gateway and operator CLI.")
    .addOption(new Option("--url <url>", `admin API of the gateway (or FLEETPLANE_URL, or the context's; default ${DEFAULT_ADMIN_URL})`))
    .addOption(new Option("--api-key <key>", "account API key (or FLEETPLANE_API_KEY, or the context's)"))
    .addOption(new Option("--context <name>", "a context of the config file (or FLEETPLANE_CONTEXT; default: its current context)"))
    .option("--json", "print JSON for scripts instead of tables")
    .addHelpText("after", "\nfleetplane --version prints the version.")
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride()
    .showHelpAfterError()

  const globals = () => program.opts<GlobalOptions>()
  const connection = () => resolveConnection(globals(), env)
  const api = () => {
    const { url, apiKey } = connection()
    return adminApi(url, apiKey)
  }
  const print = (value: unknown, human: (value: any) => string) => io.out(globals().json ? `${JSON.stringify(value, null, 2)}\n` : human(value))

  /** Runs an action; a destructive one shows its summary and asks (or needs --yes) before repeating with the token. */
  const run = async (name: string, input: Record<string, unknown>, options: { yes?: boolean } = {}) => {
    const client = api()
    const first = await client.action(name, input)
    if (first.ok) return first.result
    if (first.error.code !== "confirmation_required") throw new CliError(first.error.message, exitCodeFor(first.error.category), first.error.code, first.error.details)
    const summary = String(first.error.details.summary ?? name)
    if (!options.yes) {
      if (io.ask === undefined) throw new CliError(`${summary}\nThis is destructive: re-run with --yes to confirm.`, 7, "confirmation_required")
      const answer = await io.ask(`${summary}\nType "yes" to continue: `)
      if (answer.trim() !== "yes") throw new CliError("cancelled; nothing was changed", 7, "cancelled")
    }
    const second = await client.action(name, { ...input, confirmation_token: first.error.details.confirmation_token })
    if (second.ok) return second.result
    throw new CliError(second.error.message, exitCodeFor(second.error.category), second.error.code, second.error.details)
  }

  // --- gateway and local administration -------------------------------------------------------
  /** The store a command works on: PostgreSQL when given (flag or environment), else the SQLite file. */
  const storeOf = (options: { db: string; postgres?: string }) => {
    const postgres = options.postgres ?? env.FLEETPLANE_POSTGRES_URL
    return postgres === undefined || postgres === "" ? { database: options.db } : { postgres }
  }
  program
    .command("gateway")
    .description("run a gateway: agent WebSocket endpoint, admin API, embedded SQLite or shared PostgreSQL")
    .option("--db <file>", "SQLite database file", DEFAULT_DB)
    .option("--postgres <url>", "share state with other gateways on PostgreSQL (or set FLEETPLANE_POSTGRES_URL, which keeps a password out of `ps`)")
    .option("--listen <host:port>", "where agents connect", "0.0.0.0:7443")
    .option("--admin-listen <host:port>", "admin API (keep it private)", "127.0.0.1:7080")
    .option("--tls-cert <file>", "serve agents over wss:// with this certificate (PEM)")
    .option("--tls-key <file>", "the certificate's private key (PEM)")
    .option("--admin-tls-cert <file>", "serve the admin API over https:// with this certificate (PEM)")
    .option("--admin-tls-key <file>", "the admin certificate's private key (PEM)")
    .option("--heartbeat-interval <ms>", "heartbeat interval sent to agents", milliseconds, 5000)
    .option("--silence-threshold <ms>", "silence before a VIP holder is declared silent", milliseconds, 15000)
    .option("--hello-timeout <ms>", "how long a new connection has to send its hello", milliseconds, 10000)
    .option(
      "--liveness-sync <ms>",
      "several gateways: how often each shares and reads agent liveness; a holder heard of through another gateway is declared silent up to twice this after the threshold",
      milliseconds,
      1000
    )
    .option("--vip-probe-interval <ms>", "how often the nodes sampled as reporters probe their cluster's VIP over the overlay (each probe times out after as long)", milliseconds, 2000)
    .option("--vip-probe-reporters <n>", "how many of a cluster's nodes probe its VIP; 0 turns the peers' view off (failover on the holder's heartbeats alone)", wholeNumber, 5)
    .option("--lease-retry <ms>", "several gateways: how often a gateway without the leader lease tries to take it (how soon the sensor resumes after the leader dies)", milliseconds, 1000)
    .option("--gateway-id <id>", "name of this gateway in welcome messages")
    .option(
      "--peer-gateway <url>",
      "another gateway's agent endpoint (wss://host:7443/v1/agent), told to agents so they can move there when this one fails or drains; repeat for each",
      (value: string, previous: Array<string>) => {
        if (!/^wss?:\/\/\S+$/.test(value)) throw new InvalidArgumentError(`expected a ws:// or wss:// URL, got "${value.slice(0, 64)}"`)
        return [...previous, value]
      },
      [] as Array<string>
    )
    .addOption(new Option("--log-level <level>", "log level").choices(["debug", "info", "warn", "error"]).default("info"))
    .action(async (options) => {
      if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) throw new CliError("--tls-cert and --tls-key go together", 2, "invalid_tls")
      if ((options.adminTlsCert === undefined) !== (options.adminTlsKey === undefined)) throw new CliError("--admin-tls-cert and --admin-tls-key go together", 2, "invalid_tls")
      const gateway = await startGateway({
        ...storeOf(options),
        listen: options.listen,
        adminListen: options.adminListen,
        heartbeatIntervalMs: options.heartbeatInterval,
        silenceThresholdMs: options.silenceThreshold,
        helloTimeoutMs: options.helloTimeout,
        livenessSyncMs: options.livenessSync,
        leaseRetryMs: options.leaseRetry,
        vipProbeIntervalMs: options.vipProbeInterval,
        vipProbeReporters: options.vipProbeReporters,
        logLevel: options.logLevel as LogLevel,
        ...(options.gatewayId === undefined ? {} : { gatewayId: options.gatewayId }),
        ...(options.peerGateway.length === 0 ? {} : { peerGateways: options.peerGateway }),
        ...(options.tlsCert === undefined ? {} : { tls: { certFile: options.tlsCert, keyFile: options.tlsKey } }),
        ...(options.adminTlsCert === undefined ? {} : { adminTls: { certFile: options.adminTlsCert, keyFile: options.adminTlsKey } })
      })
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop)
          process.off("SIGTERM", stop)
          void gateway.close().then(resolve)
        }
        process.on("SIGINT", stop)
        process.on("SIGTERM", stop)
      })
    })

  const withLocalFleet = async <A>(store: { db: string; postgres?: string; createDb?: boolean }, f: (fleet: Awaited<ReturnType<typeof createFleet>>) => Promise<A>) => {
    const where = storeOf(store)
    // A typo in --db (or a command run from another directory) must not quietly start a second, empty fleet.
    if ("database" in where && where.database !== ":memory:" && !existsSync(where.database) && store.createDb !== true) {
      throw new CliError(
        `no database at ${resolvePath(where.database)}: point --db at the gateway's database file${where.database === DEFAULT_DB ? " (the default is fleet.db in the current directory)" : ""}, or pass --create-db to start a new one there`,
        2,
        "database_not_found"
      )
    }
    const fleet = await createFleet({ ...where, runSensor: false })
    try {
      return await f(fleet)
    } finally {
      await fleet.close()
    }
  }

  program
    .command("account")
    .description("accounts (on the database file directly)")
    .command("create")
    .description("create an account")
    .requiredOption("--name <name>", "account name")
    .option("--db <file>", "SQLite database file", DEFAULT_DB)
    .option("--create-db", "create the database file if it does not exist (the first command on a new gateway box)")
    .option("--postgres <url>", "the shared PostgreSQL instead (or FLEETPLANE_POSTGRES_URL)")
    .action(async (options) => {
      const account = await withLocalFleet(options, (fleet) => fleet.createAccount({ name: options.name }))
      print(account, (a) => fields(a))
    })

  const apikey = program.command("apikey").description("admin API keys (on the database file directly)")
  apikey
    .command("revoke")
    .description("revoke an API key; requests with it are refused from then on")
    .requiredOption("--account <id>", "account id")
    .requiredOption("--id <key_id>", "the key's id (key_…), as printed when it was created")
    .option("--db <file>", "SQLite database file", DEFAULT_DB)
    .option("--postgres <url>", "the shared PostgreSQL instead (or FLEETPLANE_POSTGRES_URL)")
    .action(async (options) => {
      await withLocalFleet(options, (fleet) => fleet.revokeApiKey({ account_id: options.account, api_key_id: options.id }))
      print({ revoked: options.id }, fields)
    })
  apikey
    .command("create")
    .description("create an API key for an account; the key is printed once")
    .requiredOption("--account <id>", "account id")
    .option("--name <name>", "what the key is for", "cli")
    .addOption(
      new Option("--role <role>", "read: lists, gets, events; operate: also non-destructive changes; admin: also destructive actions, kubeconfigs, terminals")
        .choices(["read", "operate", "admin"])
        .makeOptionMandatory()
    )
    .option("--db <file>", "SQLite database file", DEFAULT_DB)
    .option("--postgres <url>", "the shared PostgreSQL instead (or FLEETPLANE_POSTGRES_URL)")
    .action(async (options) => {
      const key = await withLocalFleet(options, (fleet) => fleet.createApiKey({ account_id: options.account, name: options.name, role: options.role }))
      print(key, (k) => `${fields(k)}Store the key now: it is not shown again.\n`)
    })

  // --- inventory ------------------------------------------------------------------------------
  const networks = program.command("networks").description("SD-WAN networks")
  networks
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
      print(result, (r) => fields(r) + (r.warnings.length > 0 ? `\nwarning: ${r.warnings.join("\nwarning: ")}\n` : ""))
    })

  networks
    .command("list")
    .description("list networks")
    .action(async () => {
      const result = await run("system_sdwan_list_networks", {})
      print(result, (r) => table(r.networks, ["id", "name", "interface_name", "overlay_prefix", "overlay_ipv4_prefix", "pod_subnet_prefix", "listen_port"]))
    })

  const templates = program.command("templates").description("node templates and module assignments")
  templates
    .command("create")
    .description("create a template")
    .requiredOption("--name <name>")
    .action(async (options) => print(await run("system_create_template", { name: options.name }), fields))
  templates
    .command("assign")
    .description("assign k3s-server or k3s-agent to a template")
    .requiredOption("--template <id>")
    .addOption(new Option("--module <name>").choices(["k3s-server", "k3s-agent"]).makeOptionMandatory())
    .option("--target-cluster <cluster>", "the cluster to join, by id or name (required for workers in multi-cluster accounts)")
    .option("--cluster-name <name>", "for a bootstrapping server: the name of the cluster it creates (default: its hostname)")
    .addOption(new Option("--vip-policy <policy>", "for a bootstrapping server").choices(["require_approval", "automatic"]))
    .addOption(new Option("--cni <plugin>").choices(["flannel", "ovn-kubernetes"]))
    .action(async (options) => {
      const config = {
        ...(options.targetCluster === undefined ? {} : { target_cluster_id: options.targetCluster }),
        ...(options.clusterName === undefined ? {} : { cluster_name: options.clusterName }),
        ...(options.vipPolicy === undefined ? {} : { vip_policy: options.vipPolicy }),
        ...(options.cni === undefined ? {} : { cni_plugin: options.cni })
      }
      print(await run("system_assign_module_to_template", { template_id: options.template, module_name: options.module, config }), fields)
    })

  const nodes = program.command("nodes").description("nodes (machine roles)")
  nodes
    .command("create")
    .description("create a node from a template")
    .requiredOption("--hostname <name>", "RFC 1123 label; becomes the Kubernetes node name")
    .requiredOption("--template <id>")
    .action(async (options) => print(await run("system_create_node", { hostname: options.hostname, node_template_id: options.template }), fields))

  const instances = program.command("instances").description("node instances (machines with an agent)")
  instances
    .command("provision")
    .description("provision an instance; prints its agent credential once")
    .requiredOption("--node <id>")
    .action(async (options) => {
      const result = await run("system_provision_instance", { node_id: options.node })
      print(result, (r) => `${fields(r)}Give agent_credential to this node's agent now: it is not shown again.\n`)
    })
  instances
    .command("rotate-credential <instance>")
    .description("give an instance's agent a new credential, delivered over its session; prints it once")
    .option("--grace-hours <hours>", "how long the previous credential keeps working if the agent does not confirm the new one (default 24)")
    .action(async (instance, options) => {
      const result = await run("system_rotate_agent_credential", {
        instance_id: instance,
        ...(options.graceHours === undefined ? {} : { grace_hours: Number(options.graceHours) })
      })
      print(result, (r) => `${fields(r)}The agent receives the new credential over its session; keep this copy only if it is offline.\n`)
    })
  instances
    .command("terminate <instance>")
    .description("terminate an instance (asks for confirmation)")
    .option("-y, --yes", "confirm without asking")
    .action(async (instance, options) => print(await run("system_terminate_instance", { instance_id: instance }, options), fields))

  program
    .command("peers")
    .description("SD-WAN peers")
    .command("attach")
    .description("attach an instance to a network")
    .requiredOption("--network <id>")
    .requiredOption("--instance <id>")
    .action(async (options) => print(await run("system_sdwan_attach_peer", { network_id: options.network, node_instance_id: options.instance }), fields))

  // --- clusters -------------------------------------------------------------------------------
  const clusters = program.command("clusters").description("K3s clusters")
  clusters
    .command("list")
    .description("list clusters")
    .option("--all", "include decommissioned clusters")
    .action(async (options) => {
      const result = await run("kubernetes_list_clusters", { include_decommissioned: options.all === true })
      print(result, (r) => table(r.clusters, ["id", "name", "status", "api_endpoint", "version"]))
    })
  clusters
    .command("get <cluster>")
    .description("one cluster with its VIP, node count and warnings")
    .action(async (cluster) => print(await run("kubernetes_get_cluster", { id: cluster }), fields))
  clusters
    .command("nodes <cluster>")
    .description("the cluster's Kubernetes nodes")
    .action(async (cluster) => {
      const result = await run("kubernetes_list_nodes", { cluster_id: cluster })
      print(result, (r) => table(r.nodes, ["instance_id", "hostname", "role", "status"]))
    })
  clusters
    .command("decommission <cluster>")
    .description("decommission a cluster; instances keep running (asks for confirmation)")
    .option("-y, --yes", "confirm without asking")
    .action(async (cluster, options) => print(await run("kubernetes_decommission_cluster", { cluster_id: cluster }, options), fields))
  clusters
    .command("rotate-token <cluster>")
    .description("rotate the join token; member agents get the new one (asks for confirmation)")
    .option("-y, --yes", "confirm without asking")
    .action(async (cluster, options) => print(await run("kubernetes_rotate_token", { cluster_id: cluster }, options), fields))

  program
    .command("kubeconfig")
    .description("kubeconfigs")
    .command("get <cluster>")
    .description("an admin kubeconfig for a cluster")
    .option("-o, --out <file>", "write it to this file (mode 0600) instead of printing it")
    .option("--context-name <name>", "name the context this (default: the cluster's name)")
    .action(async (cluster, options) => {
      const result = await run("kubernetes_get_kubeconfig", { cluster_id: cluster, ...(options.contextName === undefined ? {} : { context_name: options.contextName }) })
      if (options.out !== undefined) {
        writeFileSync(options.out, result.kubeconfig, { mode: 0o600 })
        chmodSync(options.out, 0o600)
        print({ written: options.out, api_endpoint: result.api_endpoint }, fields)
      } else {
        print(result, (r) => r.kubeconfig)
      }
    })

  program
    .command("failover <vip>")
    .description("fail a VIP over to its best candidate (asks for confirmation), or show the plan with --dry-run")
    .option("--dry-run", "show the current holder and every candidate's score")
    .option("-y, --yes", "confirm without asking")
    .action(async (vip, options) => {
      const result = await run("system_sdwan_failover_virtual_ip", { virtual_ip_id: vip, dry_run: options.dryRun === true }, options)
      print(result, (r) =>
        r.dry_run ? `current holder: ${r.current_holder}\n${table(r.candidates, ["peer", "score", "disqualified"])}` : fields(r)
      )
    })

  const approvals = program.command("approvals").description("pending decisions (VIP failovers under require_approval)")
  approvals
    .command("list")
    .description("list approvals")
    .option("--all", "include decided ones")
    .action(async (options) => {
      const result = await run("system_list_approvals", options.all === true ? {} : { status: "pending" })
      print(result, (r) => table(r.approvals, ["id", "status", "virtual_ip_id", "epoch", "summary"]))
    })
  approvals
    .command("approve <approval>")
    .description("approve (a failover approved after the holder came back resolves as moot)")
    .action(async (approval) => print(await run("system_approve", { approval_id: approval }), fields))
  approvals
    .command("reject <approval>")
    .description("reject")
    .option("--reason <text>")
    .action(async (approval, options) =>
      print(await run("system_reject", { approval_id: approval, ...(options.reason === undefined ? {} : { reason: options.reason }) }), fields)
    )

  program
    .command("events")
    .description("the account's event log, oldest first; --follow streams new events and resumes after a gateway restart")
    .option("--since <seq>", "only events after this sequence number", "0")
    .option("--type <type>", "only events of this type, or of every type under a prefix (sdwan.vip)")
    .option("--cluster <id or name>", "only events about this cluster")
    .option("--limit <n>", "print at most this many events (without --follow)", "1000")
    .option("-f, --follow", "keep streaming new events")
    .action(async (options) => {
      const line = (e: any) => (globals().json ? `${JSON.stringify(e)}\n` : `${e.seq}  ${e.at}  ${e.type}  ${JSON.stringify(e.data)}\n`)
      const clusterId = options.cluster === undefined ? undefined : ((await run("kubernetes_get_cluster", { id: options.cluster })) as { id: string }).id
      const wanted = eventFilter(options.type, clusterId)
      let since = Number(options.since)
      if (options.follow !== true) {
        const limit = Number(options.limit)
        let shown = 0
        for (;;) {
          const page = ((await run("system_list_events", { since, limit: 1000 })) as { events: Array<{ seq: number }> }).events
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
      // Follow: after a dropped stream (a gateway restart), resume from the last event seen, with backoff.
      let streamed = false
      for (let attempt = 0; ; attempt++) {
        const ended = await followEvents(api(), since, () => (streamed = true), (event) => {
          since = event.seq
          attempt = 0
          if (wanted(event)) io.out(line(event))
        }).then(
          () => "the stream ended",
          (error: unknown) => {
            // A gateway that was never reached is a mistake to report (wrong --url), not to wait out.
            if (error instanceof CliError && (error.exitCode !== 10 || !streamed)) throw error
            return error instanceof Error ? error.message : String(error)
          }
        )
        const delay = Math.min(10_000, 250 * 2 ** Math.min(attempt, 6))
        io.err(`(${ended}; reconnecting from event ${since} in ${(delay / 1000).toFixed(1)} s)\n`)
        await new Promise((resolve) => setTimeout(resolve, delay))
      }
    })

  const upgrade = program.command("upgrade").description("rolling module upgrades (system-rolling-module-upgrade)")
  upgrade
    .command("start")
    .description("plan and start a rolling upgrade of a template's instances (--template) or of a cluster's members (--cluster); --dry-run shows the plan only")
    .option("--template <id>", "upgrade this template's instances (the module must be assigned on it)")
    .option("--cluster <id or name>", "upgrade every member of this cluster running the module, whatever its template")
    .option("--dry-run", "show the plan (batches, quorum cap, warnings) and start nothing")
    .requiredOption("--module <id>")
    .requiredOption("--version <id>", "target version id")
    .option("--batch-pct <pct>", "percent of instances per batch", "25")
    .option("--max-failures <n>", "halt after this many consecutive failures", "1")
    .option("--timeout <ms>", "how long an instance may take to report the new version healthy", "600000")
    .action(async (options) => {
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
          timeout_ms: Number(options.timeout)
        }
      })
      print(result, (r) =>
        fields({
          run_id: r.run_id ?? "- (preview)",
          status: r.status,
          module: r.module_name,
          batches: r.plan.batches.map((batch: ReadonlyArray<string>) => batch.length).join(" + ") || "-",
          warnings: r.plan.warnings.join("; ") || "-"
        })
      )
    })
  upgrade
    .command("list")
    .description("rolling upgrades, newest first")
    .option("--status <status>", "only runs in this status: running, halted, completed or aborted")
    .action(async (options) => {
      const result = await run("skill_list_runs", options.status === undefined ? {} : { status: options.status })
      print(result, (r) =>
        table(
          r.runs.map((x: { run_id: string; status: string; progress: { batches: number; next_batch: number; completed: number; failed: number }; created_at: string }) => ({
            run_id: x.run_id,
            status: x.status,
            batch: `${x.progress.next_batch} of ${x.progress.batches}`,
            completed: x.progress.completed,
            failed: x.progress.failed,
            created_at: x.created_at
          })),
          ["run_id", "status", "batch", "completed", "failed", "created_at"]
        )
      )
    })
  upgrade
    .command("status <run>")
    .description("progress of a rolling upgrade")
    .action(async (runId) =>
      print(await run("skill_run_status", { run_id: runId }), (r) =>
        fields({
          run_id: r.run_id,
          status: r.status,
          batch: `${r.state.next_batch} of ${r.state.plan.batches.length}`,
          upgrading: Object.keys(r.state.in_flight).join(", ") || "-",
          completed: r.state.completed.length,
          failed: r.state.failed.map((f: { instance_id: string; reason: string }) => `${f.instance_id} (${f.reason})`).join("; ") || "-",
          warnings: r.state.plan.warnings.join("; ") || "-"
        })
      )
    )
  upgrade
    .command("resume <run>")
    .description("resume a halted upgrade")
    .action(async (runId) => print(await run("skill_run_resume", { run_id: runId }), fields))
  upgrade
    .command("abort <run>")
    .description("abort an upgrade; upgraded instances stay upgraded")
    .action(async (runId) => print(await run("skill_run_abort", { run_id: runId }), fields))

  program
    .command("mcp")
    .description("serve this account's fleet to an AI client over MCP on stdio: tools from the action catalog (what the key's role allows), resources, runbook prompts")
    .action(async () => {
      const { url, apiKey } = connection()
      const backend = adminApiBackend(url, apiKey)
      // Fail before the client starts talking: a gateway out of reach or a bad key is said once, plainly.
      try {
        await backend.caller()
      } catch (error) {
        const e = error as { code?: string; message?: string; category?: string; exitCode?: number }
        if (error instanceof CliError) throw error
        throw new CliError(`${e.message ?? String(error)}`, exitCodeFor(e.category), e.code ?? "mcp_unavailable")
      }
      const server = createFleetMcpServer(backend, { version: GATEWAY_VERSION })
      const closed = new Promise<void>((resolve) => {
        const previous = server.onclose
        server.onclose = () => {
          previous?.()
          resolve()
        }
      })
      await server.connect(new StdioServerTransport())
      // The client closing its end of stdin ends the server.
      process.stdin.once("end", () => void server.close())
      await closed
    })

  program
    .command("terminal <instance> [command...]")
    .description("open a terminal on an instance: a login shell, or one command after -- (e.g. -- journalctl -u k3s.service -n 200)")
    .action(async (instance: string, command: Array<string>) => {
      const { url, apiKey } = connection()
      if (apiKey === undefined || apiKey === "") throw new CliError("no API key: pass --api-key or set FLEETPLANE_API_KEY", 3, "missing_api_key")
      const local = io.terminal ?? {
        input: process.stdin,
        output: (bytes: Uint8Array) => process.stdout.write(bytes),
        size: () => ({ cols: process.stdout.columns ?? 80, rows: process.stdout.rows ?? 24 }),
        onResize: (listener: () => void) => {
          process.stdout.on("resize", listener)
          return () => process.stdout.off("resize", listener)
        }
      }
      const { cols, rows } = local.size()
      const query = new URLSearchParams({ cols: String(cols), rows: String(rows), ...(command.length > 0 ? { command: JSON.stringify(command) } : {}) })
      const target = `${url.replace(/^http/, "ws").replace(/\/$/, "")}/v1/instances/${encodeURIComponent(instance)}/terminal?${query}`
      terminalExitCode = await new Promise<number>((resolve, reject) => {
        const socket = new WebSocket(target, { headers: { authorization: `Bearer ${apiKey}` } })
        let exitCode: number | undefined
        const raw = local.input.isTTY === true && typeof local.input.setRawMode === "function"
        const onInput = (chunk: Buffer | string) => socket.readyState === WebSocket.OPEN && socket.send(Buffer.from(chunk), { binary: true })
        const stopResize = local.onResize(() => {
          const size = local.size()
          if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "resize", cols: size.cols, rows: size.rows }))
        })
        const restore = () => {
          stopResize()
          local.input.off("data", onInput)
          if (raw) local.input.setRawMode!(false)
          local.input.pause()
        }
        socket.on("unexpected-response", (_request, response) => {
          let body = ""
          response.on("data", (chunk: Buffer) => (body += chunk.toString()))
          response.on("end", () => {
            restore()
            const error = (JSON.parse(body || "{}") as { error?: { code: string; message: string } }).error
            const status = response.statusCode ?? 0
            reject(new CliError(error?.message ?? `HTTP ${status}`, status === 401 ? 3 : status === 404 ? 4 : status === 400 ? 2 : 6, error?.code ?? "terminal_refused"))
          })
        })
        socket.on("open", () => {
          if (raw) local.input.setRawMode!(true)
          local.input.on("data", onInput)
          local.input.resume()
        })
        socket.on("message", (data: Buffer, isBinary: boolean) => {
          if (isBinary) return local.output(data)
          const control = JSON.parse(data.toString()) as { type: string; exit_code?: number | null; reason?: string }
          if (control.type === "exit") exitCode = control.exit_code ?? 1
          if (control.type === "closed") io.err(`\r\nterminal closed: ${control.reason}\r\n`)
        })
        socket.on("close", () => {
          restore()
          resolve(exitCode ?? 1)
        })
        socket.on("error", (error) => {
          restore()
          reject(new CliError(`cannot open the terminal: ${error.message}`, 10, "unreachable"))
        })
      })
    })

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

  registerConfigCommands(program, { env, io, print, globals })

  program
    .command("completion")
    .description("print a shell completion script: source <(fleetplane completion bash), or zsh, or fleetplane completion fish | source")
    .addArgument(new Argument("<shell>", "the shell").choices(COMPLETION_SHELLS))
    .action((shell: CompletionShell) => io.out(completionScript(program, shell)))

  return program
}

/** Runs the CLI; resolves to the process exit code. */
export const runCli = async (argv: ReadonlyArray<string>, io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> => {
  const program = buildProgram(io, env)
  terminalExitCode = undefined
  // Commander's program-level --version is recognised after subcommands too, where it would swallow
  // `upgrade start --version <id>`: answer it only when no subcommand is named.
  const commandNames = new Set(program.commands.flatMap((c) => [c.name(), ...c.aliases()]))
  if (argv.some((a) => a === "--version" || a === "-V") && !argv.some((a) => commandNames.has(a))) {
    io.out(`${GATEWAY_VERSION}\n`)
    return 0
  }
  try {
    await program.parseAsync([...argv], { from: "user" })
    return terminalExitCode ?? 0
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2
    if (error instanceof CliError) {
      if (program.opts<GlobalOptions>().json) io.err(`${JSON.stringify({ error: { code: error.code, message: error.message, details: error.details } })}\n`)
      else io.err(`error: ${error.message}\n`)
      return error.exitCode
    }
    const fleetError = error as { code?: string; message?: string; exitCode?: number }
    io.err(`error: ${fleetError.message ?? String(error)}\n`)
    return typeof fleetError.exitCode === "number" ? fleetError.exitCode : 1
  }
}

/** Which events `fleetplane events` shows: of a type (or under a type prefix) and about a cluster. */
const eventFilter = (type: string | undefined, clusterId: string | undefined) => (event: any) =>
  (type === undefined || event.type === type || event.type.startsWith(`${type}.`) || event.type.startsWith(`${type}_`)) &&
  (clusterId === undefined || event.data?.cluster_id === clusterId)

/** Reads the event stream from `since` until it ends; a refused stream is a CliError, an unreachable gateway exit code 10. */
const followEvents = async (client: ReturnType<typeof adminApi>, since: number, onOpen: () => void, onEvent: (event: any) => void) => {
  const response = await client.request("GET", `/v1/events?since=${since}`)
  if (response.status === 401) throw new CliError("the API key was refused (revoked, or for another gateway's database)", 3, "unauthorized")
  if (!response.ok || response.body === null) throw new CliError(`events stream failed: HTTP ${response.status}`, 10, "stream_failed")
  onOpen()
  const decoder = new TextDecoder()
  let buffer = ""
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true })
    let end: number
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const data = buffer.slice(0, end).split("\n").find((l) => l.startsWith("data: "))
      buffer = buffer.slice(end + 2)
      if (data !== undefined) onEvent(JSON.parse(data.slice(6)))
    }
  }
}
