/**
 * Read and delete verbs for every kind, defined once as data: `list`, `get`, `describe` (with
 * related objects and recent events, like `kubectl describe`) and `delete` where the domain
 * allows it, by id or name; `-o table|wide|json|yaml|name`; `--watch` on list and get, which
 * re-reads on every event of the account and prints what changed.
 */
import type { Command } from "commander"
import type { CliSession } from "./cli-session"
import { speaks } from "./cli-words"
import { followEventStream, latestEventSeq } from "./event-stream"
import { CliError } from "./admin-client"
import { asYaml, fields, section, table, type Column } from "./output"

type Row = Record<string, any>

interface ListVerb {
  readonly action: string
  /** Extra options of `list` (filters). */
  readonly options?: (command: Command) => Command
  readonly input?: (options: Record<string, any>) => Record<string, unknown>
  readonly items: (result: any) => ReadonlyArray<Row>
}

interface GetVerb {
  readonly action: string
  readonly input: (ref: string, options: Record<string, any>) => Record<string, unknown>
  /** The field an error about the reference names (shown to the operator as the argument). */
  readonly field: string
}

interface Related {
  readonly title: string
  readonly rows: ReadonlyArray<Row>
  readonly columns: ReadonlyArray<Column<Row>>
}

export interface Kind {
  /** The command (`clusters`) and the word in `-o name` output (`cluster/k3s-prod`). */
  readonly noun: string
  readonly singular: string
  /** How the argument is written in usage (`<cluster>`) and what it accepts. */
  readonly ref: string
  readonly refHelp: string
  /** Options every verb of the kind needs (a peer lives in a network). */
  readonly scope?: (command: Command) => Command
  readonly list: ListVerb
  /** Without `get`, one object is found in the list by `matches`. */
  readonly get?: GetVerb
  readonly matches?: (row: Row, ref: string) => boolean
  readonly nameOf: (row: Row) => string
  readonly columns: ReadonlyArray<Column<Row>>
  readonly wide: ReadonlyArray<Column<Row>>
  /** Related objects for `describe`; `ids` are what events about the object mention. */
  readonly describe?: (session: CliSession, object: Row, options: Record<string, any>) => Promise<ReadonlyArray<Related>>
  readonly eventIds?: (object: Row) => ReadonlyArray<string>
  readonly delete?: { readonly action: string; readonly input: (ref: string, options: Record<string, any>) => Record<string, unknown>; readonly destructive: boolean; readonly help: string }
}

const network = (command: Command) => command.requiredOption("--network <network>", "the network (id, handle or name)")

export const KINDS: ReadonlyArray<Kind> = [
  {
    noun: "clusters",
    singular: "cluster",
    ref: "<cluster>",
    refHelp: "a cluster's id or name",
    list: {
      action: "kubernetes_list_clusters",
      options: (c) => c.option("--all", "include decommissioned clusters"),
      input: (o) => ({ include_decommissioned: o.all === true }),
      items: (r) => r.clusters
    },
    get: { action: "kubernetes_get_cluster", input: (ref) => ({ id: ref }), field: "id" },
    nameOf: (r) => r.name,
    columns: ["name", "status", "version", ["nodes", (r) => r.node_count], ["vip holder", (r) => r.virtual_ip?.holder_hostname], "api_endpoint", ["warnings", (r) => r.warnings?.length || undefined]],
    wide: ["id", "name", "status", "version", ["nodes", (r) => r.node_count], ["vip holder", (r) => r.virtual_ip?.holder_hostname], ["epoch", (r) => r.virtual_ip?.epoch], "api_endpoint", "ip_family", "cni_plugin", "cluster_cidr", "service_cidr", "network_id", "warnings", "created_at"],
    describe: async (session, cluster) => {
      const nodes = (await session.run("kubernetes_list_nodes", { cluster_id: cluster.id })).nodes
      return [{ title: "Nodes", rows: nodes, columns: ["hostname", "role", "status", "agent", "last_heartbeat_at", "instance_id"] }]
    },
    eventIds: (c) => [c.id, c.virtual_ip?.id].filter(Boolean),
    delete: { action: "kubernetes_decommission_cluster", input: (ref) => ({ cluster_id: ref }), destructive: true, help: "decommission the cluster (as clusters decommission)" }
  },
  {
    noun: "networks",
    singular: "network",
    ref: "<network>",
    refHelp: "a network's id, handle or name",
    list: { action: "system_sdwan_list_networks", items: (r) => r.networks },
    get: { action: "system_sdwan_get_network", input: (ref) => ({ network_id: ref }), field: "network_id" },
    nameOf: (r) => r.handle,
    columns: ["name", "handle", "interface_name", "overlay_ipv4_prefix", "pod_subnet_prefix", ["peers", (r) => r.peer_count]],
    wide: ["id", "name", "handle", "interface_name", "overlay_ipv4_prefix", "overlay_prefix", "pod_subnet_prefix", "listen_port", ["peers", (r) => r.peer_count], ["clusters", (r) => r.clusters?.map((c: Row) => c.name)]],
    describe: async (session, net) => {
      const peers = (await session.run("system_sdwan_list_peers", { network_id: net.id })).peers
      return [
        { title: "Peers", rows: peers, columns: ["hostname", "overlay_ipv4_address", "overlay_address", "endpoint", "pod_subnet", ["vip", (p) => (p.holds_vip ? "holder" : "")]] },
        { title: "Clusters", rows: net.clusters, columns: ["name", "status", "id"] },
        { title: "Virtual IPs", rows: net.virtual_ips, columns: ["address_ipv4", "address", "holder_hostname", "epoch", "policy", "cluster_id"] }
      ]
    },
    eventIds: (n) => [n.id],
    delete: { action: "system_sdwan_delete_network", input: (ref) => ({ network_id: ref }), destructive: false, help: "delete a network without peers or clusters" }
  },
  {
    noun: "peers",
    singular: "peer",
    ref: "<peer>",
    refHelp: "a peer's id, its instance's id or its node's hostname",
    scope: network,
    list: { action: "system_sdwan_list_peers", input: (o) => ({ network_id: o.network }), items: (r) => r.peers },
    matches: (p, ref) => p.id === ref || p.instance_id === ref || p.hostname === ref,
    nameOf: (r) => r.hostname,
    columns: ["hostname", "overlay_ipv4_address", "endpoint", "pod_subnet", ["vip", (p) => (p.holds_vip ? "holder" : "")]],
    wide: ["id", "hostname", "instance_id", "overlay_ipv4_address", "overlay_address", "endpoint", "pod_subnet", "public_key", ["vip", (p) => (p.holds_vip ? "holder" : "")]],
    eventIds: (p) => [p.id],
    delete: {
      action: "system_sdwan_detach_peer",
      input: (ref, o) => ({ network_id: o.network, node_instance_id: ref }),
      destructive: true,
      help: "detach an instance from the network (as peers detach)"
    }
  },
  {
    noun: "templates",
    singular: "template",
    ref: "<template>",
    refHelp: "a template's id or name",
    list: { action: "system_list_templates", items: (r) => r.templates },
    get: { action: "system_get_template", input: (ref) => ({ template_id: ref }), field: "template_id" },
    nameOf: (r) => r.name,
    columns: ["name", ["modules", (t) => t.modules.map((m: Row) => m.module_name)], ["nodes", (t) => t.node_count]],
    wide: ["id", "name", ["modules", (t) => t.modules.map((m: Row) => m.module_name)], ["nodes", (t) => t.node_count], "created_at"],
    describe: async (_session, template) => [
      { title: "Modules", rows: template.modules, columns: ["module_name", "module_version_id", ["config", (m) => Object.entries(m.config).map(([k, v]) => `${k}=${v}`).join(" ")]] },
      { title: "Nodes", rows: template.nodes, columns: ["hostname", "instance_id", "id"] }
    ],
    eventIds: (t) => [t.id],
    delete: { action: "system_delete_template", input: (ref) => ({ template_id: ref }), destructive: false, help: "delete a template no node uses" }
  },
  {
    noun: "nodes",
    singular: "node",
    ref: "<node>",
    refHelp: "a node's id or hostname",
    list: {
      action: "system_list_nodes",
      options: (c) => c.option("--template <template>", "only nodes of this template (id or name)"),
      input: (o) => (o.template === undefined ? {} : { template_id: o.template }),
      items: (r) => r.nodes
    },
    get: { action: "system_get_node", input: (ref) => ({ node_id: ref }), field: "node_id" },
    nameOf: (r) => r.hostname,
    columns: ["hostname", ["template", (n) => n.template_name], ["instance", (n) => n.instance_id]],
    wide: ["id", "hostname", ["template", (n) => n.template_name], "node_template_id", ["instance", (n) => n.instance_id], "created_at"],
    describe: async (_session, node) => [{ title: "Instances", rows: node.instances, columns: ["id", "status", "created_at"] }],
    eventIds: (n) => [n.id, ...(n.instances ?? []).map((i: Row) => i.id)],
    delete: { action: "system_delete_node", input: (ref) => ({ node_id: ref }), destructive: false, help: "delete a node that was never provisioned" }
  },
  {
    noun: "instances",
    singular: "instance",
    ref: "<instance>",
    refHelp: "an instance's id or its node's hostname",
    list: {
      action: "system_list_instances",
      options: (c) => c.option("--status <status>", "running or terminated"),
      input: (o) => (o.status === undefined ? {} : { status: o.status }),
      items: (r) => r.instances
    },
    get: { action: "system_get_instance", input: (ref) => ({ instance_id: ref }), field: "instance_id" },
    nameOf: (r) => r.hostname ?? r.id,
    columns: ["hostname", "status", "agent", ["cluster", (i) => i.cluster_id], "role", "last_seen_at", "id"],
    wide: ["id", "hostname", "status", "agent", ["cluster", (i) => i.cluster_id], "role", "last_seen_at", "node_id", "created_at"],
    eventIds: (i) => [i.id],
    delete: { action: "system_terminate_instance", input: (ref) => ({ instance_id: ref }), destructive: true, help: "terminate the instance (as instances terminate)" }
  },
  {
    noun: "vips",
    singular: "vip",
    ref: "<vip>",
    refHelp: "a VIP's id, or its cluster's id or name",
    list: { action: "system_sdwan_list_virtual_ips", items: (r) => r.virtual_ips },
    matches: (v, ref) => v.id === ref || v.cluster_id === ref || v.cluster_name === ref,
    nameOf: (r) => r.cluster_name ?? r.id,
    columns: [["cluster", (v) => v.cluster_name], "address_ipv4", ["holder", (v) => v.holder_hostname], "epoch", "policy"],
    wide: ["id", ["cluster", (v) => v.cluster_name], "address_ipv4", "address", ["holder", (v) => v.holder_hostname], "holder_peer_id", "epoch", "policy", ["failover holders", (v) => v.failover_holder_peer_ids]],
    describe: async (session, vip) => {
      const plan = await session.run("system_sdwan_failover_virtual_ip", { virtual_ip_id: vip.id, dry_run: true })
      return [{ title: "Failover candidates (dry run)", rows: plan.candidates, columns: ["hostname", "score", "disqualified", "peer"] }]
    },
    eventIds: (v) => [v.id]
  },
  {
    noun: "approvals",
    singular: "approval",
    ref: "<approval>",
    refHelp: "an approval's id",
    list: {
      action: "system_list_approvals",
      options: (c) => c.option("--all", "include decided ones"),
      input: (o) => (o.all === true ? {} : { status: "pending" }),
      items: (r) => r.approvals
    },
    matches: (a, ref) => a.id === ref,
    nameOf: (r) => r.id,
    columns: ["id", "status", ["cluster", (a) => a.cluster_id], "epoch", "summary"],
    wide: ["id", "kind", "status", ["cluster", (a) => a.cluster_id], "virtual_ip_id", "epoch", "created_at", "decided_at", "reason", "summary"],
    eventIds: (a) => [a.id]
  },
  {
    noun: "upgrade",
    singular: "upgrade",
    ref: "<run>",
    refHelp: "a rolling upgrade's run id",
    list: {
      action: "skill_list_runs",
      options: (c) => c.option("--status <status>", "only runs in this status: running, halted, completed or aborted"),
      input: (o) => (o.status === undefined ? {} : { status: o.status }),
      items: (r) => r.runs
    },
    matches: (run, ref) => run.run_id === ref,
    nameOf: (r) => r.run_id,
    columns: ["run_id", "status", ["batch", (r) => `${r.progress.next_batch} of ${r.progress.batches}`], ["completed", (r) => r.progress.completed], ["failed", (r) => r.progress.failed], "created_at"],
    wide: [
      "run_id",
      "skill",
      "status",
      ["batch", (r) => `${r.progress.next_batch} of ${r.progress.batches}`],
      ["upgrading", (r) => r.progress.in_flight],
      ["completed", (r) => r.progress.completed],
      ["failed", (r) => r.progress.failed],
      ["version", (r) => r.inputs?.target_version_id],
      "created_at",
      "updated_at"
    ],
    eventIds: (r) => [r.run_id]
  }
]

/** Events about an object: the newest 1,000 of the account that mention one of its ids. */
const recentEventsAbout = async (session: CliSession, ids: ReadonlyArray<string>) => {
  if (ids.length === 0) return []
  const { events } = await session.run("system_list_events", { latest: true, limit: 1000 })
  return (events as Array<Row>).filter((e) => ids.some((id) => JSON.stringify(e.data).includes(`"${id}"`))).slice(-15)
}

/** The kind's `list`, `get`, `describe` and `delete` commands, added to its command (created when missing). */
export const registerResourceCommands = (program: Command, session: CliSession) => {
  for (const kind of KINDS) {
    const parent = program.commands.find((c) => c.name() === kind.noun) ?? program.command(kind.noun).description(kind.noun)
    const scoped = (command: Command) => (kind.scope === undefined ? command : kind.scope(command))
    const format = session.format

    const listRows = async (options: Record<string, any>) => kind.list.items(await session.run(kind.list.action, kind.list.input?.(options) ?? {}))
    const getOne = async (ref: string, options: Record<string, any>): Promise<Row> => {
      if (kind.get !== undefined) return session.run(kind.get.action, kind.get.input(ref, options))
      const found = (await listRows({ ...options, all: true })).find((row) => kind.matches!(row, ref))
      if (found === undefined) {
        throw new CliError(`there is no ${kind.singular} "${ref.slice(0, 128)}"; fleetplane ${kind.noun} list shows them`, 4, `${kind.singular}_not_found`)
      }
      return found
    }
    const render = (rows: ReadonlyArray<Row>) => {
      const chosen = format()
      if (chosen === "name") return rows.map((row) => `${kind.singular}/${kind.nameOf(row)}\n`).join("")
      return chosen === "wide" ? table(rows, kind.wide) : table(rows, kind.columns)
    }

    const list = scoped(parent.command("list").alias("ls").description(`list ${kind.noun} (-o wide for more columns, --watch to follow changes)`))
    kind.list.options?.(list)
    list.option("-w, --watch", "after the list, print rows again as they change (until interrupted)").action(async (options) => {
      if (options.watch === true) return watch(session, () => listRows(options), render, kind)
      const result = await session.run(kind.list.action, kind.list.input?.(options) ?? {})
      session.print(result, () => render(kind.list.items(result)))
    })

    const get = scoped(parent.command(`get ${kind.ref}`).description(`one ${kind.singular} (${kind.refHelp}); -o yaml for every field, --watch to follow it`))
    if (kind.get !== undefined) speaks(get, { [kind.get.field]: kind.ref })
    get.option("-w, --watch", "print it again whenever it changes (until interrupted)").action(async (ref: string, options) => {
      if (options.watch === true) return watch(session, async () => [await getOne(ref, options)], render, kind)
      const object = await getOne(ref, options)
      session.print(object, () => render([object]))
    })

    const describe = scoped(parent.command(`describe ${kind.ref}`).description(`one ${kind.singular} in full, with related objects and its recent events`))
    if (kind.get !== undefined) speaks(describe, { [kind.get.field]: kind.ref })
    describe.action(async (ref: string, options) => {
      const object = await getOne(ref, options)
      const related = (await kind.describe?.(session, object, options)) ?? []
      const events = await recentEventsAbout(session, kind.eventIds?.(object) ?? [])
      session.print({ [kind.singular]: object, ...Object.fromEntries(related.map((r) => [r.title.toLowerCase(), r.rows])), events }, () => {
        const shown = new Set(related.map((r) => r.title.toLowerCase()))
        const own = Object.fromEntries(Object.entries(object).filter(([key]) => !shown.has(key) && !(key === "virtual_ips" && shown.has("virtual ips"))))
        return (
          fields(own) +
          related.map((r) => section(r.title, table(r.rows, r.columns))).join("") +
          section("Events", events.length === 0 ? "(none recently)\n" : table(events, ["seq", "at", "type", ["data", (e) => JSON.stringify(e.data)]]))
        )
      })
    })

    if (kind.delete !== undefined) {
      const remove = kind.delete
      const command = scoped(parent.command(`delete ${kind.ref}`).alias("rm").description(`${remove.help}${remove.destructive ? " (asks for confirmation)" : ""}`))
      if (remove.destructive) command.option("-y, --yes", "confirm without asking")
      speaks(command, Object.fromEntries(Object.keys(remove.input("x", { network: "x" })).map((field) => [field, field === "network_id" ? "--network" : kind.ref])))
      command.action(async (ref: string, options) => {
        const result = await session.run(remove.action, remove.input(ref, options), options)
        session.print(result, (r) => (format() === "name" ? `${kind.singular}/${ref}\n` : fields(r)))
      })
    }
  }
}

/**
 * `--watch`: print the current rows, then re-read after each event of the account (batched
 * over 250 ms) and print the rows that changed; survives a gateway restart like `events -f`.
 */
const watch = async (session: CliSession, read: () => Promise<ReadonlyArray<Row>>, render: (rows: ReadonlyArray<Row>) => string, kind: Kind) => {
  const seen = new Map<string, string>()
  let header = true
  const show = async () => {
    const rows = await read()
    const changed = rows.filter((row) => {
      const key = kind.nameOf(row) ?? JSON.stringify(row)
      const text = JSON.stringify(row)
      if (seen.get(key) === text) return false
      seen.set(key, text)
      return true
    })
    if (changed.length === 0) return
    const chosen = session.format()
    if (chosen === "json") for (const row of changed) session.io.out(`${JSON.stringify(row)}\n`)
    else if (chosen === "yaml") for (const row of changed) session.io.out(`---\n${asYaml(row)}`)
    else {
      const text = render(changed)
      // The header once, as kubectl --watch prints it.
      session.io.out(header || chosen === "name" ? text : text.split("\n").slice(1).join("\n"))
      header = false
    }
  }
  // Where the events stand before the first read: a change between that read and the stream is not missed.
  const since = await latestEventSeq(session)
  await show()
  let timer: NodeJS.Timeout | undefined
  let pending: Promise<void> = Promise.resolve()
  await followEventStream(session, since, () => {
    if (timer !== undefined) return
    timer = setTimeout(() => {
      timer = undefined
      // A failed re-read (the gateway restarting) is said and the watch goes on; the next event reads again.
      pending = pending.then(show).catch((error: unknown) => session.io.err(`error: ${(error as Error).message}\n`))
    }, 250)
  })
}
