/**
 * The server side of the first bring-up benchmark (#20), in its own process.
 *
 * `gateway`: a real gateway whose network has N peers provisioned and attached the way an
 * operator does it (actions, not seeded rows) but with no WireGuard key or endpoint yet: each
 * agent brings its own on first contact, from its own address, as on real nodes.
 *
 * `baseline`: a bare `ws` server that welcomes each agent and, once all N said hello, sends
 * each one the network's full peer set (what a gateway's pushes add up to: every peer's entry),
 * once; for the late joiner, each other peer gets that one entry. The floor of "every peer gets
 * every other peer" on this machine.
 *
 * Both answer `loop` requests with their own event loop's delay since the last `loop-reset`
 * (`monitorEventLoopDelay`): the canary's round trips also wait on the agents' process, this
 * does not. With a fourth argument, a PostgreSQL URL, the gateway keeps its state there (the
 * shared store of several gateways) instead of a SQLite file; with BENCH_BRINGUP_GATEWAYS=N
 * as well, N gateways on that database in this one process (the first, started first, leads:
 * it publishes, and the others hear of it by NOTIFY), their URLs all given to the agents.
 */
import { randomBytes } from "node:crypto"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { Result } from "effect"
import { WebSocketServer, type WebSocket } from "ws"
import { decodeAgentFrame, encodeFrame, splitPeerSetPush, type ConfigPushBody, type PeerEntry, type PeerSetChange } from "@fleetplane/agent-protocol"
import { startGateway } from "@fleetplane/gateway"
import { baselineWelcomeFrame } from "./bench-fleet"

const [mode, peersArg, dir, postgresUrl] = process.argv.slice(2) as ["gateway" | "baseline", string, string, string | undefined]
const peers = Number(peersArg)
const send = (message: unknown) => process.send!(message)

/** This process's event-loop delay, answered on `loop` and restarted on `loop-reset`. */
const loopDelay = monitorEventLoopDelay({ resolution: 10 })
loopDelay.enable()
process.on("message", (message: { type: string }) => {
  if (message.type === "loop-reset") loopDelay.reset()
  if (message.type === "loop") send({ type: "loop", p99Ms: loopDelay.percentile(99) / 1e6, maxMs: loopDelay.max / 1e6 })
})

export interface BringUpAgentEntry {
  readonly instance_id: string
  readonly credential: string
  readonly network_id: string
  readonly public_key: string
  /** A distinct address per agent: a fresh endpoint, as each real node has its own. */
  readonly endpoint: string
  /** The canary: a session that only pings (its round trips measure the server's event-loop lag). */
  readonly canary?: boolean
  /** The late joiner: attached from the start, it connects once the others are configured (one peer joining a large network). */
  readonly late?: boolean
}

const entryFor = (i: number, instanceId: string, credential: string, networkId: string): BringUpAgentEntry => ({
  instance_id: instanceId,
  credential,
  network_id: networkId,
  public_key: randomBytes(32).toString("base64"),
  endpoint: `198.18.${i >> 8}.${i & 255}:51820`,
  ...(i === peers ? { canary: true } : {}),
  ...(i === peers + 1 ? { late: true } : {})
})

if (mode === "baseline") {
  const all = Array.from({ length: peers + 2 }, (_, i) => entryFor(i, `ins_${i}`, "x", "net_bench"))
  const entries = all.slice(0, peers)
  const sockets = new Map<string, WebSocket>()
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 })
  const entryOf = (e: BringUpAgentEntry, i: number): PeerEntry => ({
    peer_id: `peer_${i}`,
    label: `peer-${i}`,
    public_key: e.public_key,
    endpoint: e.endpoint,
    allowed_ips: [`fd00:bench::${(i + 1).toString(16)}/128`, `100.64.${(i + 1) >> 8}.${(i + 1) & 255}/32`]
  })
  const peerEntries = entries.map(entryOf)
  const pushTo = (socket: WebSocket | undefined, index: number, peers: PeerSetChange) => {
    const push: ConfigPushBody = {
      kind: "wireguard",
      key: "net_bench",
      version: peers.version,
      payload: { network_id: "net_bench", interface_name: "wg-sdwan-bench", listen_port: 51820, self: { peer_id: `peer_${index}`, label: `peer-${index}`, addresses: peerEntries[index]!.allowed_ips }, peers }
    }
    for (const part of splitPeerSetPush(push)) socket?.send(encodeFrame({ type: "config_push", body: part }))
  }
  server.on("connection", (socket) => {
    socket.on("message", (data: Buffer) => {
      const decoded = decodeAgentFrame(data)
      if (Result.isFailure(decoded) || decoded.success.type !== "hello") return
      const instanceId = decoded.success.body.instance_id
      socket.send(baselineWelcomeFrame({ maxFrameBytes: 64 << 20 }))
      if (instanceId === all[peers]!.instance_id) return
      if (instanceId === all[peers + 1]!.instance_id) {
        // One peer joining: the floor is each other peer receiving that one peer's entry.
        const late = entryOf(all[peers + 1]!, peers + 1)
        for (const [index, entry] of entries.entries()) pushTo(sockets.get(entry.instance_id), index, { from_version: 1, version: 2, full: false, upserts: [late], removed: [] })
        return
      }
      sockets.set(instanceId, socket)
      if (sockets.size < entries.length) return
      // Everyone is here: each gets the whole peer set, once.
      for (const [index, entry] of entries.entries()) pushTo(sockets.get(entry.instance_id), index, { from_version: 0, version: 1, full: true, upserts: peerEntries, removed: [] })
    })
  })
  server.on("listening", () => {
    const file = join(dir, "baseline-agents.json")
    writeFileSync(file, JSON.stringify(all))
    send({ type: "ready", url: `ws://127.0.0.1:${(server.address() as { port: number }).port}/v1/agent`, agents: file })
  })
  process.on("message", (message: { type: string }) => {
    if (message.type === "stats") send({ type: "stats", rss: process.memoryUsage().rss })
  })
} else {
  const gateway = await startGateway({ ...(postgresUrl === undefined ? { database: join(dir, "bring-up.db") } : { postgres: postgresUrl }), listen: "127.0.0.1:0", adminListen: "127.0.0.1:0", logLevel: "silent", heartbeatIntervalMs: 5_000, silenceThresholdMs: 15_000, maxFrameBytes: 64 * 1024 * 1024 })
  const account = await gateway.fleet.createAccount({ name: "bench" })
  const ops = gateway.fleet.forAccount(account.id)
  const network = await ops.actions.system_sdwan_create_network({ name: "bench", handle: "bench", pod_subnet_prefix: "10.42.0.0/16" })
  const template = await ops.actions.system_create_template({ name: "workers" })
  await ops.actions.system_assign_module_to_template({ template_id: template.id, module_name: "k3s-agent" })
  const entries: Array<BringUpAgentEntry> = []
  for (let i = 0; i <= peers + 1; i++) {
    const node = await ops.actions.system_create_node({ hostname: i === peers ? "canary" : i === peers + 1 ? "late-joiner" : `peer-${i}`, node_template_id: template.id })
    const instance = await ops.actions.system_provision_instance({ node_id: node.id })
    // The canary is not a peer: it only measures.
    if (i !== peers) await ops.actions.system_sdwan_attach_peer({ network_id: network.id, node_instance_id: instance.id })
    entries.push(entryFor(i, instance.id, instance.agent_credential, network.id))
  }
  // The attaches' render (keyless peers) happens before the clock starts.
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  const others =
    postgresUrl === undefined
      ? []
      : await Promise.all(
          Array.from({ length: Number(process.env.BENCH_BRINGUP_GATEWAYS ?? 1) - 1 }, () =>
            startGateway({ postgres: postgresUrl, listen: "127.0.0.1:0", adminListen: "127.0.0.1:0", logLevel: "silent", heartbeatIntervalMs: 5_000, silenceThresholdMs: 15_000, maxFrameBytes: 64 * 1024 * 1024 })
          )
        )
  const file = join(dir, "gateway-agents.json")
  writeFileSync(file, JSON.stringify(entries))
  send({ type: "ready", url: [gateway, ...others].map((g) => g.agentUrl).join(","), agents: file })
  process.on("message", (message: { type: string }) => {
    if (message.type === "stats") send({ type: "stats", rss: process.memoryUsage().rss, cpu: process.cpuUsage() })
  })
  process.on("SIGTERM", () => void Promise.all([gateway, ...others].map((g) => g.close())).then(() => process.exit(0)))
}
