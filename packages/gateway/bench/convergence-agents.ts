/**
 * The agents of the failover-convergence benchmark, in their own process: one WebSocket per
 * peer to 127.0.0.1 (bounded concurrency while connecting), hello with the peer's WireGuard
 * key, then like a real agent: every config push acked as applied, every VIP directive acked,
 * a heartbeat per agent every second. For each `vip_routes` push it records when it acked it
 * and the newest epoch it routes. Commands over IPC:
 *   `await-epoch {epoch}`  answers once every agent acked routes at that epoch (or newer),
 *                          with the first and last ack times; bounded by `timeoutMs`.
 *   `stop`.
 */
import { readFileSync } from "node:fs"
import { Result } from "effect"
import WebSocket from "ws"
import { decodeGatewayFrame, encodeFrame, type AgentMessage } from "@fleetplane/agent-protocol"
import { helloFrame } from "./agent-hello"
import type { ConvergenceAgentEntry } from "./convergence-server"

const [url, agentsFile] = process.argv.slice(2) as [string, string]
const entries = JSON.parse(readFileSync(agentsFile, "utf8")) as Array<ConvergenceAgentEntry>
const send = (message: unknown) => process.send!(message)

interface Agent {
  readonly entry: ConvergenceAgentEntry
  readonly socket: WebSocket
  seq: number
  /** Newest epoch among the VIP routes this agent acked, and when. */
  routesEpoch: number
  routesAckedAt: number
}

const frame = (message: AgentMessage) => encodeFrame(message)

const connect = (entry: ConvergenceAgentEntry) =>
  new Promise<Agent>((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 })
    const agent: Agent = { entry, socket, seq: 0, routesEpoch: 0, routesAckedAt: 0 }
    const timer = setTimeout(() => reject(new Error(`agent ${entry.instance_id} not welcomed within 120 s`)), 120_000)
    socket.once("open", () =>
      socket.send(
        helloFrame(entry, { capabilities: ["wireguard", "k3s"], wireguardKeys: [{ network_id: entry.network_id, public_key: entry.public_key }] })
      )
    )
    socket.on("message", (data: Buffer) => {
      const decoded = decodeGatewayFrame(data)
      if (Result.isFailure(decoded)) return
      const message = decoded.success
      switch (message.type) {
        case "welcome":
          clearTimeout(timer)
          resolve(agent)
          return
        case "config_push":
          socket.send(frame({ type: "config_ack", body: { kind: message.body.kind, key: message.body.key, version: message.body.version, status: "applied" } }))
          if (message.body.kind === "vip_routes") {
            const epoch = Math.max(0, ...message.body.payload.routes.map((r) => r.epoch))
            if (epoch >= agent.routesEpoch) {
              agent.routesEpoch = epoch
              agent.routesAckedAt = Date.now()
              checkWaiter()
            }
          }
          return
        case "vip_assign":
        case "vip_release":
          socket.send(frame({ type: "vip_ack", body: { vip_id: message.body.vip_id, epoch: message.body.epoch, held: message.type === "vip_assign" } }))
          return
      }
    })
    socket.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })

const agents: Array<Agent> = []
let waiter: { epoch: number; resolve: () => void } | undefined
const checkWaiter = () => {
  if (waiter !== undefined && agents.length === entries.length && agents.every((a) => a.routesEpoch >= waiter!.epoch)) waiter.resolve()
}

const started = Date.now()
let cursor = 0
await Promise.all(
  Array.from({ length: Math.min(128, entries.length) }, async () => {
    while (cursor < entries.length) agents.push(await connect(entries[cursor++]!))
  })
)
send({ type: "connected", connectMs: Date.now() - started, agents: agents.length })

// Heartbeats: every agent once a second, spread over the second; servers report handshakes.
let next = 0
const perTick = Math.max(1, Math.ceil(agents.length / 20))
const beating = setInterval(() => {
  for (let i = 0; i < perTick; i++) {
    const agent = agents[next++ % agents.length]!
    if (agent.socket.readyState !== WebSocket.OPEN) continue
    agent.socket.send(
      frame({
        type: "heartbeat",
        body: {
          seq: agent.seq++,
          k3s: { service: "active", node_ready: true },
          wireguard: [{ network_id: agent.entry.network_id, peers: 1, fresh_handshakes: 1 }],
          load: { cpu_ratio: 0.1, memory_ratio: 0.2 }
        }
      })
    )
  }
}, 50)

process.on("message", (message: { type: string; epoch?: number; timeoutMs?: number }) => {
  if (message.type === "await-epoch") {
    const epoch = message.epoch ?? 1
    const timer = setTimeout(() => {
      waiter = undefined
      send({ type: "converged", epoch, timedOut: true, behind: agents.filter((a) => a.routesEpoch < epoch).length })
    }, message.timeoutMs ?? 30_000)
    waiter = {
      epoch,
      resolve: () => {
        clearTimeout(timer)
        waiter = undefined
        const times = agents.map((a) => a.routesAckedAt)
        send({ type: "converged", epoch, timedOut: false, firstAckAt: Math.min(...times), lastAckAt: Math.max(...times) })
      }
    }
    checkWaiter()
  } else if (message.type === "stop") {
    clearInterval(beating)
    for (const agent of agents) agent.socket.terminate()
    process.exit(0)
  }
})
