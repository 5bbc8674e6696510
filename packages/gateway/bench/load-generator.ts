/**
 * The load generator, in its own process: opens one WebSocket per agent to 127.0.0.1
 * (bounded concurrency while connecting), authenticates, then heartbeats each agent every
 * 5 s (spread over the interval). Commands over IPC: `flood` (heartbeats as fast as the
 * sockets take them, for a while), `rate` (heartbeats at a fixed rate, spread over 10 ms
 * ticks, for a while), `silence` (stop some agents' heartbeats, keep sockets
 * open), `stop`. Every loop is bounded in count and time.
 */
import { readFileSync } from "node:fs"
import WebSocket from "ws"
import { encodeFrame, type AgentMessage } from "@fleetplane/agent-protocol"
import { sampleProbeReports } from "./processes"
import { helloFrame } from "./agent-hello"

const [url, credentialsFile, countArg, intervalArg, probeReportsArg] = process.argv.slice(2) as [string, string, string, string, string | undefined]
const credentials = (JSON.parse(readFileSync(credentialsFile, "utf8")) as Array<{ instance_id: string; credential: string }>).slice(0, Number(countArg))
const interval = Number(intervalArg ?? 5_000)
const send = (message: unknown) => process.send!(message)

interface Agent {
  readonly instanceId: string
  /** The pod CIDR Kubernetes gave the node: fixed per agent. */
  readonly podCidr: string
  socket: WebSocket
  seq: number
  silent: boolean
  lastHeartbeatAt: number
}

/** R26: how many VIP probe reports each heartbeat carries (a reporter of that many VIPs). */
const probeReports = Number(probeReportsArg ?? 0)

/**
 * What a running node reports (the reference agent's `nodeState`): its k3s version and pod CIDR,
 * one WireGuard interface's tunnel counts, and a load that moves from beat to beat. Until
 * 2026-12-04 the bench sent `k3s: { service, node_ready }`, no interface and a constant load.
 */
const heartbeatFrame = (agent: Agent) =>
  encodeFrame({
    type: "heartbeat",
    body: {
      seq: agent.seq++,
      k3s: { service: "active", node_ready: true, version: "v1.31.4+k3s1", pod_cidr: agent.podCidr },
      wireguard: [{ network_id: "net_bench0000000000000000000", peers: 3, fresh_handshakes: 3 }],
      load: { cpu_ratio: Math.round(Math.random() * 100) / 100, memory_ratio: 0.2 },
      ...(probeReports === 0 ? {} : { vip_probes: sampleProbeReports(probeReports) })
    }
  } satisfies AgentMessage)

/** After a gateway restart: reconnect with capped exponential backoff and full jitter. */
let storm: { startedAt: number; pending: Set<string>; attempts: number } | undefined
const backoffDelay = (attempt: number) => Math.floor(Math.random() * Math.min(10_000, 250 * 2 ** attempt))

const reconnectLater = (entry: { instance_id: string; credential: string }, agent: Agent, attempt: number) => {
  setTimeout(() => {
    if (storm === undefined) return
    storm.attempts++
    connect(entry, agent)
      .then(() => {
        storm?.pending.delete(entry.instance_id)
        if (storm !== undefined && storm.pending.size === 0) send({ type: "reconnected", ms: Date.now() - storm.startedAt, attempts: storm.attempts })
      })
      .catch(() => reconnectLater(entry, agent, attempt + 1))
  }, backoffDelay(attempt))
}

let agentsMade = 0
const connect = (entry: { instance_id: string; credential: string }, existing?: Agent) =>
  new Promise<Agent>((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false })
    const agent: Agent = existing ?? { instanceId: entry.instance_id, podCidr: `10.42.${agentsMade++ % 256}.0/24`, socket, seq: 0, silent: false, lastHeartbeatAt: 0 }
    agent.socket = socket
    socket.once("close", () => {
      // Only a socket that was welcomed counts as dropped; failed attempts retry from the catch.
      if (storm !== undefined && agent.socket === socket && welcomed) {
        storm.pending.add(entry.instance_id)
        reconnectLater(entry, agent, 0)
      }
    })
    let welcomed = false
    const timer = setTimeout(() => reject(new Error(`agent ${entry.instance_id} not welcomed within 60 s`)), 60_000)
    socket.once("open", () =>
      socket.send(
        helloFrame(entry)
      )
    )
    socket.once("message", () => {
      clearTimeout(timer)
      welcomed = true
      resolve(agent)
    })
    socket.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })

const started = Date.now()
const agents: Array<Agent> = []
const CONCURRENCY = 256
let next = 0
await Promise.all(
  Array.from({ length: Math.min(CONCURRENCY, credentials.length) }, async () => {
    while (next < credentials.length) agents.push(await connect(credentials[next++]!))
  })
)
const connectMs = Date.now() - started

// Steady heartbeats: each agent every `interval`, spread evenly so load is flat.
const byInstance = new Map(agents.map((agent) => [agent.instanceId, agent]))

let cursor = 0
const perTick = Math.max(1, Math.ceil(agents.length / (interval / 50)))
const steady = setInterval(() => {
  for (let i = 0; i < perTick && agents.length > 0; i++) {
    const agent = agents[cursor++ % agents.length]!
    if (agent.silent || agent.socket.readyState !== WebSocket.OPEN) continue
    agent.socket.send(heartbeatFrame(agent))
    agent.lastHeartbeatAt = Date.now()
  }
}, 50)

send({ type: "connected", connectMs, sessions: agents.length })

process.on("message", async (message: { type: string; durationMs?: number; sockets?: number; instances?: Array<string> }) => {
  if (message.type === "flood") {
    // As many heartbeats as the sockets take, on a subset of agents, for a bounded time.
    const until = Date.now() + (message.durationMs ?? 5_000)
    // The last agents flood (the first ones may be VIP holders whose silence is measured next).
    const flooders = agents.slice(-(message.sockets ?? 100))
    let sent = 0
    while (Date.now() < until) {
      for (const agent of flooders) {
        if (agent.socket.bufferedAmount > 64 * 1024) continue
        agent.socket.send(heartbeatFrame(agent))
        agent.lastHeartbeatAt = Date.now()
        sent++
      }
      await new Promise((resolve) => setImmediate(resolve))
    }
    send({ type: "flooded", sent })
  } else if (message.type === "rate") {
    // A fixed number of heartbeats per second, spread over 10 ms ticks and over every agent.
    const rated = message as unknown as { perSecond: number; durationMs: number }
    const perTick = rated.perSecond / 100
    const startedAt = Date.now()
    let owed = 0
    let sent = 0
    let turn = 0
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        if (Date.now() - startedAt >= rated.durationMs) {
          clearInterval(tick)
          resolve()
          return
        }
        // Catch up on ticks the timer missed, so the rate is what was asked.
        owed = (rated.perSecond * (Date.now() - startedAt)) / 1000 - sent
        for (let i = 0; i < Math.min(owed, perTick * 4); i++) {
          const agent = agents[turn++ % agents.length]!
          if (agent.socket.readyState !== WebSocket.OPEN || agent.socket.bufferedAmount > 64 * 1024) continue
          agent.socket.send(heartbeatFrame(agent))
          agent.lastHeartbeatAt = Date.now()
          sent++
        }
      }, 10)
    })
    send({ type: "rated", sent, ms: Date.now() - startedAt })
  } else if (message.type === "silence") {
    const last: Record<string, number> = {}
    for (const id of message.instances ?? []) {
      const agent = byInstance.get(id)
      if (agent === undefined) continue
      agent.silent = true
      last[id] = agent.lastHeartbeatAt
    }
    send({ type: "silenced", last })
  } else if (message.type === "expect-restart") {
    // The orchestrator is about to restart the gateway: every dropped agent reconnects.
    storm = { startedAt: Date.now(), pending: new Set(), attempts: 0 }
    send({ type: "ready-for-restart" })
  } else if (message.type === "stop") {
    storm = undefined
    clearInterval(steady)
    for (const agent of agents) agent.socket.terminate()
    process.exit(0)
  }
})
