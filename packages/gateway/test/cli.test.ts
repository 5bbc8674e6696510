import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { execFile, spawn } from "node:child_process"
import { createServer, type AddressInfo } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import type { Gateway } from "../src/index"
import { runFleetplane } from "./support/cli-harness"
import { quietGateway, tempDatabase } from "./support/gateway-harness"
import { TestAgent } from "./support/test-agent"

let gateway: Gateway | undefined
const agents: Array<TestAgent> = []
afterEach(async () => {
  for (const agent of agents.splice(0)) agent.close()
  await gateway?.close()
  gateway = undefined
})

/** Runs `fleetplane ...args` in-process and returns its exit code and output. */
const cli = runFleetplane

const poll = async (check: () => Promise<boolean>, what: string) => {
  for (let i = 0; i < 100; i++) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe("fleetplane CLI", () => {
  it("completes commands, subcommands and options in bash, from the command definitions", async () => {
    const script = await cli(["completion", "bash"])
    expect(script.code).toBe(0)
    const file = join(mkdtempSync(join(tmpdir(), "fleetplane-completion-")), "fleetplane.bash")
    writeFileSync(file, script.out)
    /** What bash offers for the words typed so far (the last one being completed). */
    const complete = (...words: Array<string>) =>
      new Promise<Array<string>>((resolve, reject) =>
        execFile(
          "bash",
          ["-c", `source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _fleetplane; printf '%s\\n' "\${COMPREPLY[@]}"`, file, "fleetplane", ...words],
          (error, stdout, stderr) => (error ? reject(new Error(stderr || error.message)) : resolve(stdout.split("\n").filter((line) => line !== "")))
        )
      )
    expect(await complete("up")).toEqual(["upgrade"])
    expect(await complete("upgrade", "")).toEqual(expect.arrayContaining(["start", "list", "status", "resume", "abort"]))
    expect(await complete("upgrade", "start", "--d")).toEqual(["--dry-run"])
    // An option's value is not taken for a command: this still completes the upgrade's subcommands.
    expect(await complete("--url", "http://gw:7080", "upgrade", "st")).toEqual(["start", "status"])
    expect(await complete("clusters", "")).toContain("list")
    expect(await complete("completion", "")).toEqual(expect.arrayContaining(["--help"]))
    const zsh = await cli(["completion", "zsh"])
    expect(zsh.out).toContain("bashcompinit")
    expect(zsh.out).toContain("complete -o default -F _fleetplane fleetplane")
    const fish = await cli(["completion", "fish"])
    expect(fish.out).toContain("complete -c fleetplane -n '__fish_seen_subcommand_from upgrade; and not __fish_seen_subcommand_from start status wait resume abort list get describe' -a list")
    expect((await cli(["completion", "tcsh"])).code).toBe(2)
  })

  it("ships a command reference (CLI.md) that is exactly what the command definitions generate", async () => {
    const generated = await cli(["reference"])
    expect(generated.code).toBe(0)
    const committed = readFileSync(join(__dirname, "..", "CLI.md"), "utf8")
    // On a difference: node packages/gateway/bin/fleetplane.js reference > packages/gateway/CLI.md
    expect(committed, "CLI.md is stale: regenerate it with `fleetplane reference > packages/gateway/CLI.md`").toBe(generated.out)
    for (const command of ["fleetplane clusters describe", "fleetplane instances wait", "fleetplane peers delete", "fleetplane upgrade wait"]) expect(committed).toContain(`\`${command}\``)
  })

  it("documents every command in --help", async () => {
    const help = await cli(["--help"])
    expect(help.code).toBe(0)
    for (const command of ["gateway", "account", "apikey", "networks", "templates", "nodes", "instances", "peers", "vips", "clusters", "kubeconfig", "failover", "approvals", "events", "upgrade", "action", "mcp"]) {
      expect(help.out).toContain(command)
    }
    const version = await cli(["--version"])
    expect(version.code).toBe(0)
    expect(version.out.trim()).toBe(JSON.parse(readFileSync(join(__dirname, "..", "package.json"), "utf8")).version)
    // A subcommand's own --version (the upgrade's target) is not taken for the program's.
    const upgrade = await cli(["--url", "http://127.0.0.1:1", "--api-key", "fp_test", "upgrade", "start", "--template", "t", "--module", "m", "--version", "v-k3s-1.31.0"])
    expect(upgrade.out).not.toContain(version.out.trim())
    expect(upgrade.err).toMatch(/127\.0\.0\.1:1|ECONNREFUSED|reach/i)
    const instances = await cli(["instances", "--help"])
    for (const sub of ["provision", "rotate-credential", "terminate"]) expect(instances.out).toContain(sub)
    const clusters = await cli(["clusters", "--help"])
    for (const sub of ["list", "get", "nodes", "decommission", "rotate-token"]) expect(clusters.out).toContain(sub)
  })

  it("a gateway that cannot take its port exits non-zero with the reason, instead of hanging", async () => {
    const holder = createServer()
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve))
    const port = (holder.address() as AddressInfo).port
    try {
      const started = Date.now()
      const result = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
        execFile(process.execPath, [join(__dirname, "..", "bin", "fleetplane.js"), "gateway", "--db", tempDatabase(), "--listen", `127.0.0.1:${port}`, "--admin-listen", "127.0.0.1:0", "--log-level", "error"], { timeout: 30_000 }, (error, _stdout, stderr) =>
          resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stderr })
        )
      )
      expect(result.code).toBe(1)
      expect(result.stderr).toContain(`cannot listen for agents on 127.0.0.1:${port}: the address is already in use`)
      expect(Date.now() - started).toBeLessThan(25_000)
    } finally {
      holder.close()
    }
  }, 30_000) // a CLI start-up under a loaded machine can pass the default 5 s; the bound that matters is the 25 s above

  it("refuses to create a database by accident: a missing --db file is an error unless --create-db says so", async () => {
    const database = join(mkdtempSync(join(tmpdir(), "fleetplane-cli-")), "typo.db")
    const refused = await cli(["account", "create", "--name", "acme", "--db", database])
    expect(refused.code).toBe(2)
    expect(refused.err).toContain(`no database at ${database}`)
    expect(refused.err).toContain("--create-db")
    expect((await cli(["apikey", "create", "--account", "acc_x", "--role", "read", "--db", database])).code).toBe(2)
    const created = await cli(["--json", "account", "create", "--name", "acme", "--db", database, "--create-db"])
    expect(created.code).toBe(0)
    expect(created.json().id).toMatch(/^acc_/)
  })

  it("events says when it stopped at a full page, and how to read on", async () => {
    gateway = await quietGateway()
    const account = await gateway.fleet.createAccount({ name: "busy" })
    const { api_key } = await gateway.fleet.createApiKey({ account_id: account.id, name: "k", role: "read" })
    const ops = gateway.fleet.forAccount(account.id)
    for (let i = 0; i < 1_001; i++) await ops.actions.system_create_template({ name: `t${i}` })
    const env = { FLEETPLANE_URL: gateway.adminUrl, FLEETPLANE_API_KEY: api_key }
    const first = await cli(["events"], env)
    expect(first.out.trim().split("\n")).toHaveLength(1_000)
    const hint = first.err.match(/fleetplane events --since (\d+)/)
    expect(hint).not.toBeNull()
    const rest = await cli(["events", "--since", hint![1]!], env)
    expect(rest.out).toContain("\"t1000\"") // the 1,001st template is on the next page
    expect(rest.err).toBe("")
  }, 30_000)

  it("events filters by type and cluster, and --follow resumes after a gateway restart where it left off", async () => {
    const database = tempDatabase()
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as AddressInfo
        probe.close(() => resolve(port))
      })
    })
    gateway = await quietGateway({ database, adminListen: `127.0.0.1:${port}` })
    const account = await gateway.fleet.createAccount({ name: "watched" })
    const { api_key } = await gateway.fleet.createApiKey({ account_id: account.id, name: "k", role: "read" })
    await gateway.fleet.forAccount(account.id).actions.system_sdwan_create_network({ name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
    await gateway.fleet.forAccount(account.id).actions.system_create_template({ name: "before" })
    const env = { FLEETPLANE_URL: gateway.adminUrl, FLEETPLANE_API_KEY: api_key }

    const templates = await cli(["events", "--type", "system.template_created"], env)
    expect(templates.out.trim().split("\n")).toHaveLength(1)
    expect((await cli(["events", "--type", "sdwan"], env)).out).toContain("sdwan.network_created")
    expect((await cli(["events", "--type", "sdwan"], env)).out).not.toContain("system.template_created")
    const unknownCluster = await cli(["events", "--cluster", "nowhere"], env)
    expect(unknownCluster.code).toBe(4)
    // --since: a sequence number, a duration ago, or a time.
    expect((await cli(["events", "--since", "1h", "--type", "system.template_created"], env)).out).toContain("system.template_created")
    expect((await cli(["events", "--since", new Date(Date.now() + 60_000).toISOString()], env)).out).toBe("")
    const badSince = await cli(["events", "--since", "yesterday-ish"], env)
    expect(badSince.code).toBe(2)
    expect(badSince.err).toContain("--since takes a sequence number")

    const follower = spawn(process.execPath, [join(__dirname, "..", "bin", "fleetplane.js"), "events", "--follow", "--type", "system.template_created"], { env: { ...process.env, ...env } })
    let out = ""
    let err = ""
    follower.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()))
    follower.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()))
    try {
      await poll(async () => out.includes('"before"'), "the follower to print the existing event")
      await gateway.close()
      gateway = await quietGateway({ database, adminListen: `127.0.0.1:${port}` })
      await gateway.fleet.forAccount(account.id).actions.system_create_template({ name: "after" })
      await poll(async () => out.includes('"after"'), "the follower to resume on the restarted gateway")
      expect(err).toMatch(/reconnecting from event \d+/)
      // Resumed where it left off: nothing printed twice.
      expect(out.match(/"before"/g)).toHaveLength(1)
    } finally {
      follower.kill()
    }
  }, 30_000)

  it("contexts: named gateways and keys in a 0600 config file; flags and environment override them", async () => {
    gateway = await quietGateway()
    const account = await gateway.fleet.createAccount({ name: "ctx" })
    const { api_key } = await gateway.fleet.createApiKey({ account_id: account.id, name: "k", role: "operate" })
    await gateway.fleet.forAccount(account.id).actions.system_create_template({ name: "seen-through-context" })
    const dir = mkdtempSync(join(tmpdir(), "fleetplane-config-"))
    const keyFile = join(dir, "ops.key")
    writeFileSync(keyFile, `${api_key}\n`, { mode: 0o600 })
    const env = { FLEETPLANE_CONFIG: join(dir, "config.yaml") }

    expect((await cli(["config", "get-contexts"], env)).out).toContain("no contexts yet")
    expect((await cli(["config", "set-context", "edge", "--url", gateway.adminUrl, "--api-key-file", keyFile], env)).code).toBe(0)
    expect((await cli(["config", "set-context", "elsewhere", "--url", "http://127.0.0.1:1", "--api-key", "fpk_other"], env)).code).toBe(0)
    expect(statSync(env.FLEETPLANE_CONFIG).mode & 0o777).toBe(0o600)
    // The first context became current; commands reach its gateway with its key, no flags or environment.
    expect((await cli(["config", "current-context"], env)).out.trim()).toBe("edge")
    const throughContext = await cli(["action", "kubernetes_list_clusters"], env)
    expect(throughContext.err).toBe("")
    expect(throughContext.code).toBe(0)
    const listed = await cli(["--json", "config", "get-contexts"], env)
    expect(listed.json()).toEqual([
      { current: "*", name: "edge", url: gateway.adminUrl, "api-key": keyFile, "ca-file": "-" },
      { current: "", name: "elsewhere", url: "http://127.0.0.1:1", "api-key": "(in the config file)", "ca-file": "-" }
    ])
    expect(listed.out).not.toContain("fpk_other")

    // --context picks another; FLEETPLANE_URL / --url override the context's.
    expect((await cli(["--context", "elsewhere", "action", "kubernetes_list_clusters"], env)).code).toBe(10)
    expect((await cli(["--context", "elsewhere", "--url", gateway.adminUrl, "--api-key", api_key, "action", "kubernetes_list_clusters"], env)).code).toBe(0)
    expect((await cli(["action", "kubernetes_list_clusters"], { ...env, FLEETPLANE_URL: "http://127.0.0.1:1" })).code).toBe(10)
    const missing = await cli(["--context", "nowhere", "action", "kubernetes_list_clusters"], env)
    expect(missing.code).toBe(4)
    expect(missing.err).toContain("fleetplane config get-contexts")

    expect((await cli(["config", "use-context", "elsewhere"], env)).code).toBe(0)
    expect((await cli(["config", "current-context"], env)).out.trim()).toBe("elsewhere")
    expect((await cli(["config", "delete-context", "elsewhere"], env)).code).toBe(0)
    expect((await cli(["config", "current-context"], env)).code).toBe(4)
    // A broken config file is reported with its path, not a stack trace.
    writeFileSync(env.FLEETPLANE_CONFIG, "contexts: [unclosed")
    const broken = await cli(["config", "get-contexts"], env)
    expect(broken.code).toBe(2)
    expect(broken.err).toContain("not valid YAML")
  })

  it("refuses a malformed duration flag with usage, before starting anything", async () => {
    for (const flag of ["--heartbeat-interval", "--liveness-sync", "--lease-retry"]) {
      const result = await cli(["gateway", "--db", tempDatabase(), flag, "abc"])
      expect(result.code).toBe(2)
      expect(result.err).toContain(`${flag} <ms>' argument 'abc' is invalid`)
      expect(result.err).toContain("milliseconds")
    }
  })

  it("drives the runbook's phases through the admin API with --json, with the runbook's result shapes", async () => {
    const database = tempDatabase()
    gateway = await quietGateway({ database })
    const account = (await cli(["--json", "account", "create", "--name", "acme", "--db", database])).json()
    expect(account.id).toMatch(/^acc_/)
    const key = (await cli(["--json", "apikey", "create", "--account", account.id, "--role", "admin", "--db", database])).json()
    const env = { FLEETPLANE_URL: gateway.adminUrl, FLEETPLANE_API_KEY: key.api_key }
    const j = async (...args: Array<string>) => {
      const result = await cli(["--json", ...args], env)
      if (result.code !== 0) throw new Error(`fleetplane ${args.join(" ")} exited ${result.code}: ${result.err}`)
      return result.json()
    }

    const network = await j("networks", "create", "--name", "prod", "--handle", "prod", "--pod-prefix", "10.42.0.0/16")
    expect(network).toMatchObject({ handle: "prod", interface_name: "wg-sdwan-prod", pod_subnet_prefix: "10.42.0.0/16", warnings: [] })
    expect((await j("networks", "list")).networks.map((n: { id: string }) => n.id)).toEqual([network.id])
    const template = await j("templates", "create", "--name", "k3s-prod-server")
    await j("templates", "assign", "--template", template.id, "--module", "k3s-server")
    const servers = []
    for (const hostname of ["k3s-prod-server-1", "k3s-prod-server-2"]) {
      const node = await j("nodes", "create", "--hostname", hostname, "--template", template.id)
      const instance = await j("instances", "provision", "--node", node.id)
      expect(instance.agent_credential).toMatch(/^fpa_/)
      await j("peers", "attach", "--network", network.id, "--instance", instance.id)
      servers.push(instance)
    }

    // Phase 1: the first server's agent bootstraps the cluster.
    const s1 = await TestAgent.connect(gateway.agentUrl)
    agents.push(s1)
    s1.hello(servers[0].id, servers[0].agent_credential, { wireguard_keys: [{ network_id: network.id, public_key: s1.keys.publicKey }] })
    s1.send({ type: "join_request", body: { request_id: "r1", module_name: "k3s-server", target_cluster_id: null } })
    const accepted = await s1.message("join_accepted")
    s1.send({ type: "status_report", body: { k3s: { service: "active", node_ready: true }, modules: [] } })
    await poll(async () => (await j("clusters", "list")).clusters[0]?.status === "active", "cluster active")
    const { clusters } = await j("clusters", "list")
    expect(Object.keys(clusters[0])).toEqual(expect.arrayContaining(["id", "name", "flavor", "status", "api_endpoint"]))
    expect(clusters[0]).toMatchObject({ id: accepted.body.cluster_id, name: "k3s-prod-server-1", flavor: "k3s", status: "active" })

    // Phase 4: the second server joins with the target.
    const s2 = await TestAgent.connect(gateway.agentUrl)
    agents.push(s2)
    s2.hello(servers[1].id, servers[1].agent_credential, { wireguard_keys: [{ network_id: network.id, public_key: s2.keys.publicKey }] })
    s2.send({ type: "join_request", body: { request_id: "r2", module_name: "k3s-server", target_cluster_id: accepted.body.cluster_id } })
    await s2.message("join_accepted")
    s2.send({ type: "status_report", body: { k3s: { service: "active", node_ready: true }, modules: [] } })
    const heartbeats = setInterval(() => [s1, s2].forEach((a) => a.heartbeat([network.id])), 100)
    try {
      await poll(async () => (await j("clusters", "nodes", accepted.body.cluster_id)).nodes.every((n: { status: string }) => n.status === "ready"), "nodes ready")
      const { nodes } = await j("clusters", "nodes", accepted.body.cluster_id)
      expect(nodes.map((n: { role: string; status: string }) => [n.role, n.status])).toEqual([
        ["control-plane", "ready"],
        ["control-plane", "ready"]
      ])
      const cluster = await j("clusters", "get", accepted.body.cluster_id)
      const plan = await j("failover", cluster.virtual_ip.id, "--dry-run")
      expect(plan).toMatchObject({ resolved: false, dry_run: true, current_holder: cluster.virtual_ip.holder_peer_id })
      expect(plan.candidates).toHaveLength(1)
      expect(plan.candidates[0].score).toBeGreaterThan(0)

      // A destructive command without --yes and without a terminal is refused with exit code 7.
      const refused = await cli(["failover", cluster.virtual_ip.id], env)
      expect(refused.code).toBe(7)
      expect(refused.err).toContain("--yes")
      const moved = await j("failover", cluster.virtual_ip.id, "--yes")
      expect(moved).toMatchObject({ resolved: true, dry_run: false, epoch: 2 })
    } finally {
      clearInterval(heartbeats)
    }

    // A lost agent credential: a new one, delivered over the agent's live session.
    const rotated = await j("instances", "rotate-credential", servers[1].id, "--grace-hours", "2")
    expect(rotated).toMatchObject({ instance_id: servers[1].id, hostname: "k3s-prod-server-2", delivery: "pushed to the connected agent" })
    const credentialPush = await s2.until((a) => a.pushes("agent_credential")[0], 5_000, "the rotated credential")
    expect((credentialPush.payload as { credential: string }).credential).toBe(rotated.agent_credential)

    // Phase 5: the kubeconfig written with mode 0600.
    const out = join(mkdtempSync(join(tmpdir(), "fleetplane-cli-")), "k3s-prod.yaml")
    const written = await j("kubeconfig", "get", accepted.body.cluster_id, "--out", out)
    expect(written.api_endpoint).toBe(clusters[0].api_endpoint)
    expect(statSync(out).mode & 0o777).toBe(0o600)

    // Phase 6: decommission; the instances keep running.
    const decommissioned = await j("clusters", "decommission", accepted.body.cluster_id, "--yes")
    expect(decommissioned).toMatchObject({ status: "decommissioned", instances_terminated: 0 })
    expect((await j("clusters", "list")).clusters).toEqual([])
    expect((await j("clusters", "list", "--all")).clusters).toHaveLength(1)
    const events = (await cli(["events"], env)).out
    expect(events).toContain("kubernetes.cluster_decommissioned")
  }, 30_000)

  it("a key of account A cannot see account B's cluster; errors exit with the category's code", async () => {
    const database = tempDatabase()
    gateway = await quietGateway({ database })
    const a = (await cli(["--json", "account", "create", "--name", "a", "--db", database])).json()
    const b = (await cli(["--json", "account", "create", "--name", "b", "--db", database])).json()
    const keyA = (await cli(["--json", "apikey", "create", "--account", a.id, "--role", "admin", "--db", database])).json().api_key
    const keyB = (await cli(["--json", "apikey", "create", "--account", b.id, "--role", "admin", "--db", database])).json().api_key
    const envA = { FLEETPLANE_URL: gateway.adminUrl, FLEETPLANE_API_KEY: keyA }
    const envB = { FLEETPLANE_URL: gateway.adminUrl, FLEETPLANE_API_KEY: keyB }
    const network = JSON.parse((await cli(["--json", "networks", "create", "--name", "n", "--handle", "n"], envA)).out)
    const seen = await cli(["--json", "action", "system_sdwan_attach_peer", JSON.stringify({ network_id: network.id, node_instance_id: "ins_x" })], envB)
    expect(seen.code).toBe(4)
    expect(JSON.parse(seen.err).error.code).toBe("network_not_found")
    const invalid = await cli(["networks", "create", "--name", "x", "--handle", "waytoolong"], envA)
    expect(invalid.code).toBe(2)
    expect(invalid.err).toContain("handle")
    const noKey = await cli(["clusters", "list"], { FLEETPLANE_URL: gateway.adminUrl })
    expect(noKey.code).toBe(3)
    const unreachable = await cli(["clusters", "list"], { FLEETPLANE_URL: "http://127.0.0.1:9", FLEETPLANE_API_KEY: keyA })
    expect(unreachable.code).toBe(10)
    // A revoked key is refused from then on.
    const keyAId = (await cli(["--json", "apikey", "create", "--account", a.id, "--name", "temp", "--role", "read", "--db", database])).json()
    expect((await cli(["clusters", "list"], { ...envA, FLEETPLANE_API_KEY: keyAId.api_key })).code).toBe(0)
    expect((await cli(["apikey", "revoke", "--account", a.id, "--id", keyAId.id, "--db", database])).code).toBe(0)
    expect((await cli(["clusters", "list"], { ...envA, FLEETPLANE_API_KEY: keyAId.api_key })).code).toBe(3)
  })
})
