/**
 * The server side of the failover-convergence benchmark, in its own process.
 *
 * `gateway`: a real gateway whose one SD-WAN network has N peers (each with a WireGuard key
 * and endpoint), and a 3-server cluster whose VIP lives on that network. The peers are
 * attached in one transaction and the network's WireGuard configs rendered once — setup, not
 * the figure. The orchestrator then fails the VIP over through the admin API.
 *
 * `baseline`: a bare `ws` server that answers hello and, on command, sends every socket one
 * `vip_routes` push of the same size as the gateway's and counts the acks: the floor of
 * "tell N agents something and hear back" on this machine.
 */
import { randomBytes } from "node:crypto"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Result } from "effect"
import { WebSocketServer, type WebSocket } from "ws"
import { decodeAgentFrame, encodeFrame, type GatewayMessage } from "@fleetplane/agent-protocol"
import { attachPeer, syncNetworkWireguard, Transactor, type AccountId, type InstanceId, type JoinOutcome } from "@fleetplane/sdk"
import { startGateway } from "@fleetplane/gateway"
import { seedInstances, baselineWelcomeFrame } from "./bench-fleet"

/** `gateway` on SQLite in `dir`, or on PostgreSQL when `postgres` (a URL) is given. */
const [mode, peersArg, dir, postgres] = process.argv.slice(2) as ["gateway" | "baseline", string, string, string | undefined]
const peers = Number(peersArg)
const send = (message: unknown) => process.send!(message)
const NETWORK_ID = "net_bench"

export interface ConvergenceAgentEntry {
  readonly instance_id: string
  readonly credential: string
  readonly network_id: string
  readonly public_key: string
}

const publicKey = () => randomBytes(32).toString("base64")

if (mode === "baseline") {
  const sockets = new Set<WebSocket>()
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false })
  server.on("connection", (socket) => {
    socket.on("message", (data: Buffer) => {
      const decoded = decodeAgentFrame(data)
      if (Result.isSuccess(decoded) && decoded.success.type === "hello") {
        sockets.add(socket)
        socket.send(baselineWelcomeFrame({ heartbeatIntervalMs: 1_000 }))
      }
    })
  })
  server.on("listening", () => {
    const entries: Array<ConvergenceAgentEntry> = Array.from({ length: peers }, (_, i) => ({ instance_id: `ins_${i}`, credential: "x", network_id: NETWORK_ID, public_key: publicKey() }))
    const file = join(dir, "baseline-agents.json")
    writeFileSync(file, JSON.stringify(entries))
    send({ type: "ready", url: `ws://127.0.0.1:${(server.address() as { port: number }).port}/v1/agent`, agents: file })
  })
  let version = 1
  process.on("message", (message: { type: string; epoch?: number; holderKey?: string }) => {
    if (message.type !== "broadcast") return
    // The same message a gateway sends each peer on a failover.
    version++
    const frame = encodeFrame({
      type: "config_push",
      body: {
        kind: "vip_routes",
        key: NETWORK_ID,
        version,
        payload: {
          network_id: NETWORK_ID,
          interface_name: "wg-sdwan-bench",
          routes: [{ vip_id: "vip_bench_baseline_000000000", address: "fd00:bench::100", public_key: message.holderKey ?? publicKey(), epoch: message.epoch ?? version }]
        }
      }
    } satisfies GatewayMessage)
    for (const socket of sockets) socket.send(frame)
    send({ type: "broadcasted", bytes: frame.byteLength })
  })
} else {
  const gateway = await startGateway({
    ...(postgres === undefined ? { database: join(dir, "convergence.db") } : { postgres }),
    listen: "127.0.0.1:0",
    adminListen: "127.0.0.1:0",
    logLevel: "silent",
    heartbeatIntervalMs: 1_000,
    silenceThresholdMs: 15_000
  })
  const account = await gateway.fleet.createAccount({ name: "bench" })
  const { api_key } = await gateway.fleet.createApiKey({ account_id: account.id, name: "bench", role: "admin" })
  const ops = gateway.fleet.forAccount(account.id)
  const network = await ops.actions.system_sdwan_create_network({ name: "bench", handle: "bench", pod_subnet_prefix: "10.42.0.0/16" })
  const template = await ops.actions.system_create_template({ name: "servers" })
  await ops.actions.system_assign_module_to_template({ template_id: template.id, module_name: "k3s-server", config: { vip_policy: "automatic" } })

  const setupStarted = Date.now()
  const entries: Array<ConvergenceAgentEntry> = []
  await gateway.fleet.run(
    Effect.gen(function* () {
      const { transact } = yield* Transactor
      for (const seeded of yield* seedInstances(account.id, template.id, peers, "peer")) entries.push({ ...seeded, network_id: network.id, public_key: publicKey() })
      // Every peer with its key and the endpoint its agent will connect from, then one render.
      yield* transact((ctx) =>
        Effect.gen(function* () {
          for (const entry of entries) {
            const { peer } = yield* attachPeer(ctx, account.id as AccountId, network.id, entry.instance_id)
            yield* ctx.tx.updatePeer(account.id as AccountId, peer.id, { public_key: entry.public_key, endpoint: `127.0.0.1:${network.listen_port}` })
          }
          yield* syncNetworkWireguard(ctx, account.id as AccountId, network.id as never)
        })
      )
    })
  )
  // A 3-server cluster on the network: its VIP is what fails over.
  const port = await gateway.fleet.agentPort()
  let clusterId: string | null = null
  for (const entry of entries.slice(0, 3)) {
    const identity = await gateway.fleet.run(port.authenticate(entry.instance_id, entry.credential))
    const outcome: JoinOutcome = await gateway.fleet.run(port.joinRequest(identity, { request_id: "bench", module_name: "k3s-server", target_cluster_id: clusterId }))
    if (!outcome.accepted) throw new Error(`bench join rejected: ${outcome.code}`)
    clusterId = outcome.cluster_id
    await gateway.fleet.run(port.statusReport(identity, { k3s: { service: "active", node_ready: true }, modules: [] }))
  }
  const cluster = await ops.actions.kubernetes_get_cluster({ id: clusterId! })
  const file = join(dir, "gateway-agents.json")
  writeFileSync(file, JSON.stringify(entries))
  send({
    type: "ready",
    url: gateway.agentUrl,
    adminUrl: gateway.adminUrl,
    apiKey: api_key,
    agents: file,
    vipId: cluster.virtual_ip!.id,
    servers: entries.slice(0, 3).map((e) => e.instance_id as InstanceId),
    setupMs: Date.now() - setupStarted
  })
  process.on("message", (message: { type: string }) => {
    if (message.type === "stats") send({ type: "stats", rss: process.memoryUsage().rss, sessions: gateway.sessions.size })
  })
  process.on("SIGTERM", () => void gateway.close().then(() => process.exit(0)))
}
