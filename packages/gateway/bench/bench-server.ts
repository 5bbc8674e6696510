/**
 * The server side of the load benchmark, in its own process: either a real gateway (with N
 * provisioned instances and K bootstrapped clusters whose VIP holders are among them) or the
 * baseline, a bare `ws` server that only decodes frames (and answers hello so the load
 * generator runs the same script). Talks to the orchestrator over IPC.
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { writeHeapSnapshot } from "node:v8"
import { Result } from "effect"
import { Unpackr } from "msgpackr"
import { WebSocketServer } from "ws"
import { decodeAgentFrame } from "@fleetplane/agent-protocol"
// The built package, as users run it (tsx's transform of the sources adds a property to every
// closure, ~0.8 KB per session and CPU on every call, that the build does not).
import { startGateway } from "@fleetplane/gateway"
import { exposedGc } from "../src/memory-reclaim"
import { seedInstances, baselineWelcomeFrame } from "./bench-fleet"

/** `gateway-restart` reopens an existing bench database (no provisioning) on the given port. */
/** `baseline-bare` only unpacks msgpack (no structural inspection, no schema): what the protocol's checks cost. */
const [mode, sessionsArg, clustersArg, dir, portArg] = process.argv.slice(2) as ["gateway" | "gateway-restart" | "baseline" | "baseline-bare", string, string, string, string | undefined]
const sessions = Number(sessionsArg)
const clusters = Number(clustersArg)
const send = (message: unknown) => process.send!(message)

// To see what the sessions hold: `{ type: "heap-snapshot", file }` writes a V8 heap snapshot there.
process.on("message", (message: { type: string; file?: string }) => {
  if (message.type === "heap-snapshot" && message.file !== undefined) send({ type: "heap-snapshot", file: writeHeapSnapshot(message.file) })
})

/**
 * `retainedHeap` / `retainedRss`: the heap and RSS after a compacting full collection (bench
 * processes run with --expose-gc; the same collection the gateway takes after a fan-out), so
 * garbage not yet collected, and pages V8 freed but keeps, do not count as memory the sessions
 * hold. Taken only when asked (a full GC of a large heap pauses the server).
 */
const compactingGc = exposedGc()
const stats = async (withGc = false) => {
  const cpu = process.cpuUsage()
  const at = Date.now()
  const { rss, heapUsed } = process.memoryUsage()
  if (!withGc || compactingGc === undefined) return { cpu, rss, heap: heapUsed, at }
  compactingGc()
  const retainedHeap = process.memoryUsage().heapUsed
  return { cpu, rss, heap: heapUsed, at, retainedHeap, retainedRss: await settledRss() }
}

/** The figures, with what the server counted at the moment it was asked. */
const answerStats = (gc: boolean | undefined, counted: Record<string, unknown>) => void stats(gc).then((figures) => send({ type: "stats", ...figures, ...counted }))

/**
 * RSS once it stops falling: V8 gives the pages a compaction emptied back to the system from a
 * background task, so RSS read right after the collection still counts them (measured at
 * 10,000 sessions: 517 MB at once, under 300 MB a moment later).
 */
const settledRss = async () => {
  let last = process.memoryUsage.rss()
  for (let i = 0; i < 40; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250))
    const now = process.memoryUsage.rss()
    if (last - now < 2 ** 20) return now
    last = now
  }
  return last
}

if (mode === "baseline" || mode === "baseline-bare") {
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false, int64AsType: "number" })
  const decode = (data: Buffer): { type: string } | undefined => {
    if (mode === "baseline") {
      const decoded = decodeAgentFrame(data)
      return Result.isFailure(decoded) ? undefined : decoded.success
    }
    try {
      return unpackr.unpack(data) as { type: string }
    } catch {
      return undefined
    }
  }
  let heartbeats = 0
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false })
  server.on("connection", (socket) => {
    socket.on("message", (data: Buffer) => {
      const decoded = decode(data)
      if (decoded === undefined) return
      if (decoded.type === "heartbeat") heartbeats++
      else if (decoded.type === "hello") {
        socket.send(baselineWelcomeFrame())
      }
    })
  })
  server.on("listening", () => {
    const credentials = Array.from({ length: sessions }, (_, i) => ({ instance_id: `ins_${i}`, credential: "x" }))
    const file = join(dir, "baseline-credentials.json")
    writeFileSync(file, JSON.stringify(credentials))
    send({ type: "ready", url: `ws://127.0.0.1:${(server.address() as { port: number }).port}/v1/agent`, credentials: file, holders: [] })
  })
  process.on("message", (message: { type: string; gc?: boolean }) => {
    if (message.type === "stats") answerStats(message.gc, { heartbeats })
  })
} else {
  const gateway = await startGateway({
    database: join(dir, "bench.db"),
    listen: `127.0.0.1:${portArg ?? 0}`,
    adminListen: "127.0.0.1:0",
    logLevel: "silent",
    sensorIntervalMs: 100,
    ...(process.env.BENCH_API_KEY_CACHE_MS === undefined ? {} : { apiKeyCacheMs: Number(process.env.BENCH_API_KEY_CACHE_MS) })
  })
  if (mode === "gateway-restart") {
    send({ type: "ready", url: gateway.agentUrl, credentials: join(dir, "gateway-credentials.json"), holders: [] })
    process.on("message", (message: { type: string }) => {
      if (message.type === "stats") answerStats(false, { heartbeats: gateway.metrics.heartbeats.value, sessions: gateway.sessions.size })
    })
    process.on("SIGTERM", () => void gateway.close().then(() => process.exit(0)))
    await new Promise(() => undefined)
  }
  const account = await gateway.fleet.createAccount({ name: "bench" })
  const ops = gateway.fleet.forAccount(account.id)
  const network = await ops.actions.system_sdwan_create_network({ name: "bench", handle: "bench" })
  const template = await ops.actions.system_create_template({ name: "servers" })
  await ops.actions.system_assign_module_to_template({ template_id: template.id, module_name: "k3s-server" })

  // N instances in one transaction (provisioning through the actions would dominate the run).
  const credentials = await gateway.fleet.run(seedInstances(account.id, template.id, sessions, "bench"))
  // K clusters: the first K instances bootstrap one each (in-process), so their agents become VIP holders.
  const port = await gateway.fleet.agentPort()
  const holders: Array<string> = []
  for (let i = 0; i < clusters; i++) {
    const { instance_id, credential } = credentials[i]!
    await ops.actions.system_sdwan_attach_peer({ network_id: network.id, node_instance_id: instance_id })
    const identity = await gateway.fleet.run(port.authenticate(instance_id, credential))
    const outcome = await gateway.fleet.run(port.joinRequest(identity, { request_id: "bench", module_name: "k3s-server", target_cluster_id: null }))
    if (!outcome.accepted) throw new Error(`bench bootstrap rejected: ${outcome.code}`)
    await gateway.fleet.run(port.statusReport(identity, { k3s: { service: "active", node_ready: true }, modules: [] }))
    holders.push(instance_id)
  }
  const silences: Record<string, number> = {}
  await gateway.fleet.subscribeSignals((signal) => {
    if (signal._tag !== "EventsAppended") return
    for (const event of signal.events) {
      if (event.type === "sdwan.vip_holder_silent") {
        silences[String(event.data.instance_id)] = Date.now()
        if (process.env.BENCH_DEBUG) console.error("silent", event.data.silent_for_ms, event.data.last_heartbeat_at, new Date().toISOString())
      }
    }
  })
  const file = join(dir, "gateway-credentials.json")
  writeFileSync(file, JSON.stringify(credentials))
  // For the admin API benchmark: where to send requests, and a key that may.
  const { api_key } = await gateway.fleet.createApiKey({ account_id: account.id, name: "bench", role: "admin" })
  send({ type: "ready", url: gateway.agentUrl, credentials: file, holders, adminUrl: gateway.adminUrl, apiKey: api_key, accountId: account.id, database: join(dir, "bench.db") })
  process.on("message", (message: { type: string; gc?: boolean }) => {
    if (message.type === "stats") answerStats(message.gc, { heartbeats: gateway.metrics.heartbeats.value, sessions: gateway.sessions.size, silences })
  })
  // A graceful stop: agents are told 1001 and reconnect (the reconnect-storm figure).
  process.on("SIGTERM", () => void gateway.close().then(() => process.exit(0)))
}
