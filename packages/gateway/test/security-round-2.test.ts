/**
 * Security, round 2: each test is an attack that got through before, tried again against a
 * real gateway.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { CloseCode } from "@fleetplane/agent-protocol"
import { createLogger, type Gateway } from "../src/index"
import { INITIAL_CREDIT_BYTES, TerminalCloseCode } from "../src/terminal/terminal-bridge"
import { adminClient, quietGateway, setupAccount, tempDatabase } from "./support/gateway-harness"
import { TestAgent } from "./support/test-agent"

let gateway: Gateway | undefined
const sockets: Array<{ close: () => void }> = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close()
  await gateway?.close()
  gateway = undefined
})

/** An agent offering terminals, and an operator's terminal open on it. */
const openTerminal = async (g: Gateway) => {
  const account = await setupAccount(g)
  const node = await account.provision("edge-1", account.workerTemplateId)
  const agent = await TestAgent.connect(g.agentUrl)
  sockets.push(agent)
  agent.hello(node.instanceId, node.credential, { capabilities: ["terminal"] })
  await agent.message("welcome")
  const operator = new WebSocket(`${g.adminUrl.replace("http", "ws")}/v1/instances/${node.instanceId}/terminal`, { headers: { authorization: `Bearer ${account.apiKey}` } })
  sockets.push(operator)
  const closed = new Promise<{ code: number; reason: string }>((resolve) => operator.on("close", (code, reason) => resolve({ code, reason: reason.toString() })))
  let received = 0
  operator.on("message", (data: Buffer, isBinary: boolean) => {
    if (isBinary) received += data.length
  })
  await new Promise((resolve, reject) => operator.once("open", resolve).once("error", reject))
  const open = await agent.message("terminal_open")
  return { account, agent, operator, closed, channel: open.body.channel_id, received: () => received }
}

describe("security round 2", () => {
  it("an agent that sends 48 MiB of terminal output on 256 KiB of credit loses the channel, is counted, and no more than its credit is relayed", async () => {
    gateway = await quietGateway()
    const { agent, operator, closed, channel, received } = await openTerminal(gateway)
    // The operator stops reading: no credit comes back.
    ;(operator as unknown as { _socket: { pause: () => void; resume: () => void } })._socket.pause()
    const chunk = new Uint8Array(64 * 1024).fill(0x61)
    for (let sent = 0; sent < 48 * 1024 * 1024 && agent.closed === undefined; sent += chunk.length) {
      agent.send({ type: "terminal_data", body: { channel_id: channel, data: chunk } })
      if (sent % (4 * 1024 * 1024) === 0) await new Promise((resolve) => setTimeout(resolve, 1))
    }
    const told = await agent.message("terminal_close", (m) => m.body.channel_id === channel)
    expect(told.body.reason).toContain("credit")
    ;(operator as unknown as { _socket: { resume: () => void } })._socket.resume()
    expect((await closed).code).toBe(TerminalCloseCode.CreditExceeded)
    expect(received()).toBeLessThanOrEqual(INITIAL_CREDIT_BYTES)
    expect(gateway.metrics.terminalCreditViolations.value).toBe(1)
    // The agent's session itself is unharmed.
    expect(agent.closed).toBeUndefined()
  }, 30_000)

  it("40 sockets opened at once and 40 bad hellos get a handful of credential checks; the rest are told 4008", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const node = await account.provision("s1", account.serverTemplateId)
    const agents = await Promise.all(Array.from({ length: 40 }, () => TestAgent.connect(gateway!.agentUrl)))
    sockets.push(...agents)
    for (const agent of agents) agent.hello(node.instanceId, "fpa_guess")
    const codes = await Promise.all(agents.map(async (agent) => (await agent.waitClosed(10_000)).code))
    const checked = codes.filter((code) => code === CloseCode.AuthenticationFailed).length
    // The free allowance (5) plus the checks already running when it ran out (4 at a time).
    expect(checked).toBeLessThanOrEqual(9)
    expect(codes.filter((code) => code === CloseCode.RateLimited).length).toBe(40 - checked)
    expect(gateway.metrics.authFailures.value).toBe(checked)
  }, 30_000)

  it("a terminal_close whose reason is 100 × é closes the operator's terminal (reasons are cut by UTF-8 bytes)", async () => {
    gateway = await quietGateway()
    const { agent, closed, channel } = await openTerminal(gateway)
    agent.send({ type: "terminal_close", body: { channel_id: channel, reason: "é".repeat(100) } })
    const result = await Promise.race([closed, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 3_000))])
    expect(result?.code).toBe(TerminalCloseCode.ClosedByAgent)
    expect(Buffer.byteLength(result!.reason)).toBeLessThanOrEqual(123)
    expect(result!.reason).toMatch(/^é+$/)
  })

  it("the database holding CA keys and join tokens, and its -wal and -shm, are readable by their owner only", async () => {
    const database = tempDatabase()
    gateway = await quietGateway({ database })
    await setupAccount(gateway)
    for (const file of [database, `${database}-wal`, `${database}-shm`]) expect(statSync(file).mode & 0o777).toBe(0o600)
  })

  it("an oversized admin request gets 413 with a JSON error, not a dropped connection", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const response = await fetch(`${gateway.adminUrl}/v1/actions/system_create_template`, {
      method: "POST",
      headers: { authorization: `Bearer ${account.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "x".repeat(2 * 1024 * 1024) })
    })
    expect(response.status).toBe(413)
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("body_too_large")
  })

  it("guessing API keys from one address is slowed down: after a few failures, 429 with Retry-After", async () => {
    gateway = await quietGateway()
    await setupAccount(gateway)
    const statuses: Array<number> = []
    for (let i = 0; i < 12; i++) statuses.push((await adminClient(gateway, `fpk_guess${i}`).get("/v1/actions")).status)
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401])
    expect(statuses.at(-1)).toBe(429)
  })

  it("the admin API can serve https, and a port listening beyond loopback without TLS is warned about", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fleetplane-admin-tls-"))
    const certFile = join(dir, "tls.crt")
    const keyFile = join(dir, "tls.key")
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" })
    const lines: Array<string> = []
    gateway = await quietGateway({ adminTls: { certFile, keyFile }, listen: "0.0.0.0:0", logger: createLogger("warn", (line) => lines.push(line)) })
    expect(gateway.adminUrl.startsWith("https://")).toBe(true)
    const health = await new Promise<number>((resolve, reject) => {
      import("node:https").then(({ get }) => get(`${gateway!.adminUrl}/healthz`, { ca: readFileSync(certFile) }, (res) => resolve(res.statusCode ?? 0)).on("error", reject))
    })
    expect(health).toBe(200)
    const warnings = lines.map((line) => JSON.parse(line) as { event: string; port?: string })
    expect(warnings.filter((w) => w.event === "gateway.listening_without_tls").map((w) => w.port)).toEqual(["agent"])
  })

  it("roles: a read key lists but can change nothing and open no terminal; an operate key cannot decommission", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const node = await account.provision("edge-1", account.workerTemplateId)
    const read = adminClient(gateway, (await gateway.fleet.createApiKey({ account_id: account.accountId, name: "viewer", role: "read" })).api_key)
    const operate = adminClient(gateway, (await gateway.fleet.createApiKey({ account_id: account.accountId, name: "ops", role: "operate" })).api_key)
    expect((await read.action("kubernetes_list_clusters")).status).toBe(200)
    const refused = await read.action("system_create_template", { name: "nope" })
    expect(refused.status).toBe(403)
    expect(refused.body.error.code).toBe("forbidden_for_role")
    expect((await operate.action("system_create_template", { name: "fine" })).status).toBe(200)
    expect((await operate.action("kubernetes_decommission_cluster", { cluster_id: "clu_x" })).status).toBe(403)
    expect((await operate.action("kubernetes_get_kubeconfig", { cluster_id: "clu_x" })).status).toBe(403)
    const terminal = new WebSocket(`${gateway.adminUrl.replace("http", "ws")}/v1/instances/${node.instanceId}/terminal`, {
      headers: { authorization: `Bearer ${(await gateway.fleet.createApiKey({ account_id: account.accountId, name: "v2", role: "read" })).api_key}` }
    })
    const status = await new Promise<number>((resolve) => terminal.on("unexpected-response", (_request, response) => resolve(response.statusCode ?? 0)))
    expect(status).toBe(403)
  })

  it("guessing API keys through terminal upgrades is throttled like any admin request", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const node = await account.provision("edge-1", account.workerTemplateId)
    const statuses: Array<number> = []
    for (let i = 0; i < 12; i++) {
      const socket = new WebSocket(`${gateway.adminUrl.replace("http", "ws")}/v1/instances/${node.instanceId}/terminal`, { headers: { authorization: `Bearer fpk_guess${i}` } })
      statuses.push(await new Promise<number>((resolve) => socket.on("unexpected-response", (_request, response) => resolve(response.statusCode ?? 0)).on("error", () => resolve(0))))
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401])
    expect(statuses.at(-1)).toBe(429)
    // The failures count on the other route too: it is one door.
    expect((await adminClient(gateway, "fpk_guess_again").get("/v1/actions")).status).toBe(429)
  })

  it("revoking an API key ends the event streams and terminals opened with it", async () => {
    gateway = await quietGateway({ apiKeyRecheckIntervalMs: 50 })
    const { account, agent, closed, channel } = await openTerminal(gateway)
    const stream = await fetch(`${gateway.adminUrl}/v1/events`, { headers: { authorization: `Bearer ${account.apiKey}` } })
    expect(stream.status).toBe(200)
    const text = stream.text()

    await gateway.fleet.revokeApiKey({ account_id: account.accountId, api_key_id: account.apiKeyId })
    // The stream says why and ends; the terminal closes on both sides.
    expect(await text).toContain("api_key_revoked")
    expect((await closed).code).toBe(TerminalCloseCode.KeyRevoked)
    const told = await agent.message("terminal_close", (m) => m.body.channel_id === channel)
    expect(told.body.reason).toContain("revoked")
    // And the key opens nothing new.
    expect((await adminClient(gateway, account.apiKey).get("/v1/actions")).status).toBe(401)
  })
})
