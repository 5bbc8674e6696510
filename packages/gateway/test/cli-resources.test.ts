/**
 * The operator's read, delete and wait verbs at kubectl grade, against a real gateway with
 * simulated agents: every kind lists, gets and describes by name, in every output format;
 * deletes say what to do; waits follow a cluster coming up and time out with exit 8; --watch
 * prints a node turning not-ready; errors name the flags typed; an https admin API signed by
 * a private CA is reached with --ca-file.
 */
import { execFileSync, spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { parse } from "yaml"
import { Command } from "commander"
import type { Gateway } from "../src/index"
import { runFleetplane } from "./support/cli-harness"
import { inCliWords, speaks } from "../src/cli/cli-words"
import { quietGateway, setupAccount } from "./support/gateway-harness"
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

/** A gateway with a cluster of one server (k3s-prod-server-1, VIP holder), a connected worker, and a spare node. */
const fleetWithCluster = async () => {
  gateway = await quietGateway({ database: ":memory:" })
  const setup = await setupAccount(gateway, { vipPolicy: "automatic" })
  const env = { FLEETPLANE_URL: gateway.adminUrl, FLEETPLANE_API_KEY: setup.apiKey, FLEETPLANE_CONFIG: join(mkdtempSync(join(tmpdir(), "fp-cfg-")), "config.yaml") }
  const server = await setup.provision("k3s-prod-server-1", setup.serverTemplateId)
  const worker = await setup.provision("edge-worker-1", setup.workerTemplateId)
  await setup.admin.action("system_create_node", { hostname: "spare-1", node_template_id: setup.workerTemplateId })
  const s1 = await TestAgent.connect(gateway.agentUrl)
  const w1 = await TestAgent.connect(gateway.agentUrl)
  agents.push(s1, w1)
  s1.hello(server.instanceId, server.credential, { wireguard_keys: [{ network_id: setup.networkId, public_key: s1.keys.publicKey, endpoint: "198.51.100.1:51820" }] })
  w1.hello(worker.instanceId, worker.credential, { wireguard_keys: [{ network_id: setup.networkId, public_key: w1.keys.publicKey, endpoint: "198.51.100.2:51820" }] })
  await s1.message("welcome")
  await w1.message("welcome")
  return { setup, env, server, worker, s1, w1 }
}

describe("errors in the operator's words", () => {
  it("turns input fields into the command's flags, actions into CLI commands, and drops rule numbers", () => {
    const command = new Command("start").option("--batch-pct <pct>")
    speaks(command, { template_id: "--template" })
    expect(inCliWords("batch_pct must be 1-100 for template_id tpl_1 (R19); see skill_run_status", command)).toBe(
      "--batch-pct must be 1-100 for --template tpl_1; see `fleetplane upgrade status <run>`"
    )
    // Words that are neither stay as they are (codes, values).
    expect(inCliWords("instance_holds_vip: 10.0.0.0/8 (R4, R6)", undefined)).toBe("instance_holds_vip: 10.0.0.0/8")
  })
})

describe("fleetplane read, delete and wait verbs", () => {
  it("lists, gets and describes every kind by name, with names and hostnames in tables, -o wide|json|yaml|name", async () => {
    const { env, s1, setup } = await fleetWithCluster()
    s1.send({ type: "join_request", body: { request_id: "r1", module_name: "k3s-server", target_cluster_id: null } })
    await s1.message("join_accepted")
    s1.send({ type: "status_report", body: { k3s: { service: "active", node_ready: true }, modules: [] } })
    expect((await cli(["clusters", "wait", "k3s-prod-server-1", "--timeout", "20s"], env)).code).toBe(0)

    const clusters = await cli(["clusters", "list"], env)
    expect(clusters.out.split("\n")[0]).toMatch(/^NAME\s+STATUS\s+VERSION/)
    expect(clusters.out).toMatch(/k3s-prod-server-1\s+active/)
    expect(clusters.out).not.toContain("clu_") // ids only in -o wide
    expect((await cli(["-o", "wide", "clusters", "list"], env)).out).toMatch(/^ID\s+NAME/)
    const one = await cli(["clusters", "get", "k3s-prod-server-1"], env)
    expect(one.out).toMatch(/k3s-prod-server-1\s+active\s+\S+\s+1\s+k3s-prod-server-1/) // nodes 1, VIP on the server
    const yaml = parse((await cli(["-o", "yaml", "clusters", "get", "k3s-prod-server-1"], env)).out)
    expect(yaml).toMatchObject({ name: "k3s-prod-server-1", status: "active", node_count: 1, virtual_ip: { holder_hostname: "k3s-prod-server-1" } })
    expect((await cli(["-o", "name", "clusters", "list"], env)).out).toBe("cluster/k3s-prod-server-1\n")

    // describe: the object, related objects, recent events — nested values as YAML, not one-line JSON.
    const described = (await cli(["clusters", "describe", "k3s-prod-server-1"], env)).out
    expect(described).toMatch(/^name: k3s-prod-server-1$/m)
    expect(described).toMatch(/^virtual_ip:\n {2}id: vip_/m)
    expect(described).toMatch(/\nNodes:\n {2}HOSTNAME\s+ROLE\s+STATUS[^\n]*\n {2}k3s-prod-server-1\s+control-plane/)
    expect(described).toMatch(/\nEvents:\n[\s\S]*kubernetes\.cluster_created/)

    // Every other kind, by the name an operator knows.
    expect((await cli(["templates", "list"], env)).out).toMatch(/servers\s+k3s-server\s+1\n[\s\S]*workers\s+k3s-agent\s+2/)
    expect((await cli(["templates", "describe", "workers"], env)).out).toMatch(/Nodes:\n[\s\S]*edge-worker-1[\s\S]*spare-1/)
    expect((await cli(["nodes", "list", "--template", "workers"], env)).out).toMatch(/edge-worker-1\s+workers\s+ins_[\s\S]*spare-1\s+workers\s+-/)
    expect((await cli(["nodes", "describe", "edge-worker-1"], env)).out).toMatch(/Instances:\n {2}ID\s+STATUS[^\n]*\n {2}ins_\S+\s+running/)
    expect((await cli(["instances", "list"], env)).out).toMatch(/k3s-prod-server-1\s+running\s+connected\s+clu_\S+\s+control-plane/)
    const instance = parse((await cli(["-o", "yaml", "instances", "get", "edge-worker-1"], env)).out)
    expect(instance).toMatchObject({ hostname: "edge-worker-1", agent: "connected" })
    expect(instance.configs.map((c: { kind: string }) => c.kind)).toContain("wireguard")
    expect((await cli(["networks", "get", "prod"], env)).out).toMatch(/prod\s+prod\s+wg-sdwan-prod\s+\S+\s+10\.42\.0\.0\/16\s+2/)
    expect((await cli(["networks", "describe", "prod"], env)).out).toMatch(/Peers:[\s\S]*k3s-prod-server-1[\s\S]*198\.51\.100\.1:51820\s+\S+\s+holder/)
    expect((await cli(["peers", "list", "--network", "prod"], env)).out).toMatch(/edge-worker-1\s+100\.64\.\d+\.\d+\s+198\.51\.100\.2:51820/)
    expect((await cli(["-o", "name", "peers", "list", "--network", "prod"], env)).out).toBe("peer/k3s-prod-server-1\npeer/edge-worker-1\n")
    expect((await cli(["vips", "list"], env)).out).toMatch(/k3s-prod-server-1\s+100\.64\.\d+\.\d+\s+k3s-prod-server-1\s+1\s+automatic/)
    expect((await cli(["vips", "describe", "k3s-prod-server-1"], env)).out).toMatch(/Failover candidates \(dry run\):/)
    // -o json is the admin API's answer, unchanged, for scripts.
    const json = JSON.parse((await cli(["-o", "json", "nodes", "list"], env)).out)
    expect(json.nodes.map((n: { hostname: string }) => n.hostname)).toEqual(["k3s-prod-server-1", "edge-worker-1", "spare-1"])
    // Not found: exit 4 and how to find the right name.
    const missing = await cli(["vips", "get", "nope"], env)
    expect(missing.code).toBe(4)
    expect(missing.err).toContain("fleetplane vips list")
    expect(setup.networkId).toMatch(/^net_/)
  }, 30_000)

  it("deletes what nothing uses, and says what to do otherwise; destructive deletes ask first", async () => {
    const { env } = await fleetWithCluster()
    expect((await cli(["templates", "create", "--name", "wrokers"], env)).code).toBe(0)
    expect((await cli(["-o", "name", "templates", "delete", "wrokers"], env)).out).toBe("template/wrokers\n")
    const inUse = await cli(["templates", "delete", "workers"], env)
    expect(inUse.code).toBe(6)
    expect(inUse.err).toContain("delete those nodes first")
    expect((await cli(["nodes", "delete", "spare-1"], env)).code).toBe(0)
    const provisioned = await cli(["nodes", "rm", "edge-worker-1"], env)
    expect(provisioned.err).toMatch(/running instance ins_\S+; terminate it first/)
    // A destructive delete without a terminal to ask on: nothing happens without --yes.
    const detach = await cli(["peers", "delete", "edge-worker-1", "--network", "prod"], env)
    expect(detach.code).toBe(7)
    expect(detach.err).toMatch(/detach instance ins_\S+ .* from network "prod"[\s\S]*re-run with --yes/)
    expect((await cli(["peers", "delete", "edge-worker-1", "--network", "prod", "--yes"], env)).code).toBe(0)
    expect((await cli(["-o", "name", "peers", "list", "--network", "prod"], env)).out).toBe("peer/k3s-prod-server-1\n")
  }, 30_000)

  it("errors name the flags and commands the operator typed, not the SDK's fields, actions or rule numbers", async () => {
    const { env, s1 } = await fleetWithCluster()
    const upgrade = await cli(["upgrade", "start", "--template", "workers", "--module", "k3s-agent", "--version", "v1.31.1+k3s1", "--batch-pct", "0"], env)
    expect(upgrade.code).toBe(2)
    expect(upgrade.err).toContain("--batch-pct")
    expect(upgrade.err).not.toContain("batch_pct")
    const assign = await cli(["templates", "assign", "--template", "workers", "--module", "k3s-agent", "--target-cluster", "nowhere"], env)
    expect(assign.code).toBe(4)
    expect(assign.err).toContain('there is no cluster "nowhere"')
    expect(assign.err).not.toMatch(/target_cluster_id|kubernetes_list_clusters/)
    const network = await cli(["networks", "create", "--name", "x", "--handle", "x", "--pod-prefix", "10.42.0.0/16"], env)
    expect(network.code).toBe(5)
    expect(network.err).toContain("--pod-prefix")
    expect(network.err).not.toContain("pod_subnet_prefix")
    // An action named in a hint is the CLI command that does it.
    s1.send({ type: "join_request", body: { request_id: "r1", module_name: "k3s-server", target_cluster_id: null } })
    await s1.message("join_accepted")
    const terminate = await cli(["instances", "terminate", "k3s-prod-server-1", "--yes"], env)
    expect(terminate.code).toBe(6)
    expect(terminate.err).toContain("fail the VIP over first (`fleetplane failover <vip>`)")
    // With -o json the error stays machine-readable: its stable code beside the message.
    const asJson = await cli(["-o", "json", "clusters", "get", "nowhere"], env)
    expect(JSON.parse(asJson.err).error.code).toBe("cluster_not_found")
  }, 30_000)

  it("waits: a cluster coming up, a node joining and ready, a failover taken by the new holder; a wait that times out exits 8 saying what it last saw", async () => {
    const { env, s1, setup } = await fleetWithCluster()
    const timedOut = await cli(["clusters", "wait", "k3s-prod-server-1", "--timeout", "1s"], env)
    expect(timedOut.code).toBe(8)
    expect(timedOut.err).toMatch(/timed out after 1s waiting for cluster k3s-prod-server-1 to be active; last seen: not created yet/)
    // Plain progress lines when stderr is not a terminal.
    const waiting = cli(["clusters", "wait", "k3s-prod-server-1", "--timeout", "20s"], env)
    await new Promise((resolve) => setTimeout(resolve, 300))
    s1.send({ type: "join_request", body: { request_id: "r1", module_name: "k3s-server", target_cluster_id: null } })
    await s1.message("join_accepted")
    s1.send({ type: "status_report", body: { k3s: { service: "active", node_ready: true }, modules: [] } })
    const came = await waiting
    expect(came.code).toBe(0)
    expect(came.err).toMatch(/cluster k3s-prod-server-1 to be active: not created yet[\s\S]*\n.*: active, 1 node\(s\), VIP on k3s-prod-server-1\n/)
    // Ready: k3s reported ready and the agent heartbeating.
    s1.heartbeat([setup.networkId])
    expect((await cli(["instances", "wait", "k3s-prod-server-1", "--for", "ready", "--timeout", "10s"], env)).code).toBe(0)

    // A second server joins; a failover with --wait returns once the new holder's agent applied the VIP routes.
    const second = await setup.provision("k3s-prod-server-2", setup.serverTemplateId)
    const s2 = await TestAgent.connect(gateway!.agentUrl)
    agents.push(s2)
    s2.hello(second.instanceId, second.credential, { wireguard_keys: [{ network_id: setup.networkId, public_key: s2.keys.publicKey, endpoint: "198.51.100.3:51820" }] })
    await s2.message("welcome")
    const clusterId = JSON.parse((await cli(["-o", "json", "clusters", "get", "k3s-prod-server-1"], env)).out).id
    s2.send({ type: "join_request", body: { request_id: "r2", module_name: "k3s-server", target_cluster_id: clusterId } })
    await s2.until((agent) => agent.received.some((m) => m.type === "join_accepted" || m.type === "join_rejected"), 5000, "a join answer")
    const rejected = s2.received.find((m) => m.type === "join_rejected")
    if (rejected !== undefined) throw new Error(JSON.stringify(rejected))
    s2.send({ type: "status_report", body: { k3s: { service: "active", node_ready: true }, modules: [] } })
    s2.heartbeat([setup.networkId])
    expect((await cli(["instances", "wait", "k3s-prod-server-2", "--timeout", "10s"], env)).code).toBe(0)
    const beats = setInterval(() => {
      s1.heartbeat([setup.networkId])
      s2.heartbeat([setup.networkId])
    }, 200)
    try {
      // The promotion is recorded at once, but the new holder's agent has not applied it: the wait says so.
      const unapplied = await cli(["failover", "k3s-prod-server-1", "--yes", "--wait", "--timeout", "1s"], env)
      expect(unapplied.code).toBe(8)
      expect(unapplied.err).toMatch(/waiting for k3s-prod-server-2 to take the VIP; last seen: told, not applied yet \(agent connected\)/)
      // Back to the first server, whose agent applies what it is sent.
      const acker = setInterval(() => s1.ackAll(), 100)
      try {
        const failover = await cli(["failover", "k3s-prod-server-1", "--yes", "--wait", "--timeout", "10s"], env)
        expect(failover.code, failover.err).toBe(0)
        expect(failover.err).toMatch(/k3s-prod-server-1 to take the VIP: (told, not applied yet[^\n]*\n[^\n]*: )?taken/)
        expect(failover.out).toMatch(/current_holder_hostname: k3s-prod-server-1/)
      } finally {
        clearInterval(acker)
      }
    } finally {
      clearInterval(beats)
    }
  }, 40_000)

  it("--watch prints a node turning not-ready without being asked again (a real process, stopped by a signal)", async () => {
    const { env, s1 } = await fleetWithCluster()
    s1.send({ type: "join_request", body: { request_id: "r1", module_name: "k3s-server", target_cluster_id: null } })
    await s1.message("join_accepted")
    s1.send({ type: "status_report", body: { k3s: { service: "active", node_ready: true }, modules: [] } })
    expect((await cli(["instances", "wait", "k3s-prod-server-1", "--timeout", "10s"], env)).code).toBe(0)
    const watcher = spawn(process.execPath, [join(__dirname, "..", "bin", "fleetplane.js"), "instances", "list", "--watch"], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    watcher.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()))
    try {
      const until = async (pattern: RegExp) => {
        for (let i = 0; i < 200 && !pattern.test(out); i++) await new Promise((resolve) => setTimeout(resolve, 50))
        expect(out).toMatch(pattern)
      }
      await until(/k3s-prod-server-1\s+running\s+connected/)
      s1.close()
      // The change is printed as a row under the same header, not as a new table.
      await until(/k3s-prod-server-1\s+running\s+disconnected/)
      expect(out.match(/^HOSTNAME/gm)).toHaveLength(1)
    } finally {
      watcher.kill("SIGTERM")
    }
  }, 30_000)

  it("reaches an https admin API signed by a private CA with --ca-file (or a context's ca-file), and refuses it without", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fp-ca-"))
    const certFile = join(dir, "admin.pem")
    const keyFile = join(dir, "admin.key")
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
      { stdio: "ignore" }
    )
    gateway = await quietGateway({ database: ":memory:", adminTls: { certFile, keyFile } })
    const account = await gateway.fleet.createAccount({ name: "acme" })
    const setup = { apiKey: (await gateway.fleet.createApiKey({ account_id: account.id, name: "ops", role: "admin" })).api_key }
    const env = { FLEETPLANE_URL: gateway.adminUrl, FLEETPLANE_API_KEY: setup.apiKey, FLEETPLANE_CONFIG: join(dir, "config.yaml") }
    expect(gateway.adminUrl).toMatch(/^https:/)
    const refused = await cli(["networks", "list"], env)
    expect(refused.code).toBe(10)
    expect(refused.err).toMatch(/self-signed certificate\); pass --ca-file/)
    expect((await cli(["--ca-file", certFile, "networks", "create", "--name", "prod", "--handle", "prod"], env)).code).toBe(0)
    expect((await cli(["--ca-file", certFile, "-o", "name", "networks", "list"], env)).out).toBe("network/prod\n")
    expect((await cli(["config", "set-context", "edge", "--url", gateway.adminUrl, "--api-key", setup.apiKey, "--ca-file", certFile], { FLEETPLANE_CONFIG: env.FLEETPLANE_CONFIG })).code).toBe(0)
    expect((await cli(["-o", "name", "networks", "list"], { FLEETPLANE_CONFIG: env.FLEETPLANE_CONFIG })).out).toBe("network/prod\n")
    const unreadable = await cli(["--ca-file", join(dir, "missing.pem"), "networks", "list"], env)
    expect(unreadable.code).toBe(2)
    expect(unreadable.err).toContain("cannot read the CA file")
  }, 30_000)
})
