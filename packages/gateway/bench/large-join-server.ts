/**
 * The server side of the large-network join benchmark (#20), in its own process.
 *
 * `gateway`: a real gateway whose network has N peers with keys and endpoints, published once
 * (setup, not the figure), and two more peers attached without a key: the joiners. The N agents
 * connect as agents that already hold the network's peer set (resumed sessions, as after a
 * gateway restart), so no peer set travels until a joiner reports its key.
 *
 * `baseline`: a bare `ws` server that welcomes every agent and, when a joiner says hello,
 * sends each other agent a `wireguard` push carrying that joiner's entry alone: the floor of
 * "every peer learns of one new peer" on this machine.
 */
import { randomBytes } from "node:crypto"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Result } from "effect"
import { WebSocketServer, type WebSocket } from "ws"
import { decodeAgentFrame, encodeFrame, type ConfigPushBody } from "@fleetplane/agent-protocol"
import { attachPeer, syncNetworkWireguard, Transactor, type AccountId, type AgentIdentity } from "@fleetplane/sdk"
import { startGateway } from "@fleetplane/gateway"
import { seedInstances, baselineWelcomeFrame } from "./bench-fleet"

const [mode, peersArg, dir] = process.argv.slice(2) as ["gateway" | "baseline", string, string]
const peers = Number(peersArg)
const send = (message: unknown) => process.send!(message)
// Both servers answer `stats` alike: their memory and CPU time so far.
process.on("message", (message: { type: string }) => {
  if (message.type === "stats") send({ type: "stats", rss: process.memoryUsage().rss, cpu: process.cpuUsage() })
})

export interface LargeJoinAgent {
  readonly instance_id: string
  readonly credential: string
  readonly network_id: string
  readonly public_key: string
  readonly endpoint: string
  readonly role: "peer" | "canary" | "joiner"
}

export interface LargeJoinReady {
  readonly url: string
  readonly agents: string
  /** What every peer's agent holds already: the `wireguard` config version and the peer-set version. */
  readonly wireguardVersion: number
  readonly peerVersion: number
  readonly setupMs: number
}

const agentOf = (i: number, instanceId: string, credential: string, networkId: string, role: LargeJoinAgent["role"]): LargeJoinAgent => ({
  instance_id: instanceId,
  credential,
  network_id: networkId,
  public_key: randomBytes(32).toString("base64"),
  endpoint: `198.18.${i >> 8}.${i & 255}:51820`,
  role
})
/** Joiners, one after the other: the second connects as soon as every peer has the first (a network under churn). */
const JOINERS = 2
const roleOf = (i: number): LargeJoinAgent["role"] => (i === peers ? "canary" : i > peers ? "joiner" : "peer")

if (mode === "baseline") {
  const agents = Array.from({ length: peers + 1 + JOINERS }, (_, i) => agentOf(i, `ins_${i}`, "x", "net_bench", roleOf(i)))
  const joiners = new Map(agents.filter((agent) => agent.role === "joiner").map((agent) => [agent.instance_id, agent]))
  let version = 1
  const sockets = new Map<string, WebSocket>()
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false })
  server.on("connection", (socket) => {
    socket.on("message", (data: Buffer) => {
      const decoded = decodeAgentFrame(data)
      if (Result.isFailure(decoded) || decoded.success.type !== "hello") return
      const instanceId = decoded.success.body.instance_id
      socket.send(baselineWelcomeFrame())
      const joiner = joiners.get(instanceId)
      if (joiner === undefined) {
        if (roleOf(Number(instanceId.slice(4))) === "peer") sockets.set(instanceId, socket)
        return
      }
      version++
      const entry = { peer_id: `peer_${instanceId}`, label: instanceId, public_key: joiner.public_key, endpoint: joiner.endpoint, allowed_ips: [`fd00:bench::${version.toString(16)}/128`, `100.64.255.${version}/32`] }
      for (const [id, other] of sockets) {
        const push: ConfigPushBody = {
          kind: "wireguard",
          key: "net_bench",
          version,
          payload: {
            network_id: "net_bench",
            interface_name: "wg-sdwan-bench",
            listen_port: 51820,
            self: { peer_id: `peer_${id}`, label: id, addresses: ["fd00:bench::1/128", "100.64.0.1/32"] },
            peers: { from_version: version - 1, version, full: false, upserts: [entry], removed: [] }
          }
        }
        other.send(encodeFrame({ type: "config_push", body: push }))
      }
    })
  })
  server.on("listening", () => {
    const file = join(dir, "baseline-agents.json")
    writeFileSync(file, JSON.stringify(agents))
    send({ type: "ready", url: `ws://127.0.0.1:${(server.address() as { port: number }).port}/v1/agent`, agents: file, wireguardVersion: 1, peerVersion: 1, setupMs: 0 } satisfies LargeJoinReady & { type: string })
  })
} else {
  const setupStarted = Date.now()
  const gateway = await startGateway({ database: join(dir, "large-join.db"), listen: "127.0.0.1:0", adminListen: "127.0.0.1:0", logLevel: (process.env.BENCH_LOG_LEVEL ?? "silent") as "silent", heartbeatIntervalMs: 5_000, silenceThresholdMs: 15_000 })
  const account = await gateway.fleet.createAccount({ name: "bench" })
  const ops = gateway.fleet.forAccount(account.id)
  // A /16 of IPv4 overlay addresses: the default /20 holds 4,094 peers.
  const network = await ops.actions.system_sdwan_create_network({ name: "bench", handle: "bench", pod_subnet_prefix: "10.42.0.0/16", overlay_ipv4_prefix: "100.64.0.0/16" })
  const template = await ops.actions.system_create_template({ name: "workers" })
  const agents: Array<LargeJoinAgent> = []
  await gateway.fleet.run(
    Effect.gen(function* () {
      const { transact } = yield* Transactor
      for (const [i, seeded] of (yield* seedInstances(account.id, template.id, peers + 1 + JOINERS, "peer")).entries()) agents.push(agentOf(i, seeded.instance_id, seeded.credential, network.id, roleOf(i)))
      // The N peers with their keys and endpoints, and the joiners without a key yet; one publish.
      yield* transact((ctx) =>
        Effect.gen(function* () {
          for (const agent of agents) {
            if (agent.role === "canary") continue
            const { peer } = yield* attachPeer(ctx, account.id as AccountId, network.id, agent.instance_id)
            if (agent.role === "peer") yield* ctx.tx.updatePeer(account.id as AccountId, peer.id, { public_key: agent.public_key, endpoint: agent.endpoint })
          }
          yield* syncNetworkWireguard(ctx, account.id as AccountId, network.id as never)
        })
      )
    })
  )
  const port = await gateway.fleet.agentPort()
  const first = agents[0]!
  const identity: AgentIdentity = await gateway.fleet.run(port.authenticate(first.instance_id, first.credential))
  const held = (await gateway.fleet.run(port.pendingPushes(identity, []))).find((push) => push.kind === "wireguard")!
  if (held.kind !== "wireguard") throw new Error("no wireguard config")
  const file = join(dir, "gateway-agents.json")
  writeFileSync(file, JSON.stringify(agents))
  send({ type: "ready", url: gateway.agentUrl, agents: file, wireguardVersion: held.version, peerVersion: held.payload.peers.version, setupMs: Date.now() - setupStarted } satisfies LargeJoinReady & { type: string })
  // A graceful stop, so a CPU profile (BENCH_CPU_PROF) gets written.
  process.on("SIGTERM", () => void gateway.close().then(() => process.exit(0)))
}
