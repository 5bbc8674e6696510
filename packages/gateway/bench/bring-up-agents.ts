/**
 * The agents of the first bring-up benchmark (#20), in their own process: N sockets connect
 * for the first time (128 at a time), each with its own fresh WireGuard key and endpoint in its
 * hello, then act like agents: every push acked, a heartbeat every 5 s. Measured here, from the
 * first connect: when every agent holds a WireGuard config listing all N-1 others, the bytes
 * received (all frames, and the WireGuard pushes alone), sessions dropped, and a canary — one
 * more socket pinging the server every 100 ms — whose round trips are the server's event-loop
 * lag as an agent sees it. Answers `done` over IPC (or `timeout` after `timeoutMs`).
 */
import { readFileSync } from "node:fs"
import { Result } from "effect"
import WebSocket from "ws"
import { decodeGatewayFrame, encodeFrame, PROTOCOL_VERSION, type AgentMessage } from "@fleetplane/agent-protocol"
import type { BringUpAgentEntry } from "./bring-up-server"
import { percentile } from "./processes"

const [url, agentsFile, timeoutArg] = process.argv.slice(2) as [string, string, string]
const all = JSON.parse(readFileSync(agentsFile, "utf8")) as Array<BringUpAgentEntry>
const entries = all.filter((e) => e.canary !== true)
const canaryEntry = all.find((e) => e.canary === true)!
const send = (message: unknown) => process.send!(message)
const frame = (message: AgentMessage) => encodeFrame(message)
const others = entries.length - 1

let configured = 0
let bytes = 0
let wireguardBytes = 0
let wireguardPushes = 0
let dropped = 0
let lastConfigBytes = 0
const started = Date.now()

const finish = (type: "done" | "timeout") => {
  clearInterval(pinging)
  send({
    type,
    ms: Date.now() - started,
    configured,
    bytes,
    wireguardBytes,
    wireguardPushes,
    dropped,
    lastConfigBytes,
    lagP50Ms: percentile(lags, 50),
    lagP99Ms: percentile(lags, 99),
    lagMaxMs: Math.max(0, ...lags)
  })
}

const connect = (entry: BringUpAgentEntry) =>
  new Promise<WebSocket>((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 })
    let complete = false
    let seq = 0
    const timer = setTimeout(() => reject(new Error(`agent ${entry.instance_id} not welcomed within 120 s`)), 120_000)
    socket.once("open", () =>
      socket.send(
        frame({
          type: "hello",
          body: {
            instance_id: entry.instance_id,
            credential: entry.credential,
            agent_version: "bench",
            protocol_versions: [PROTOCOL_VERSION],
            capabilities: ["wireguard"],
            wireguard_keys: [{ network_id: entry.network_id, public_key: entry.public_key, endpoint: entry.endpoint }],
            applied: [],
            held_vips: []
          }
        })
      )
    )
    socket.on("message", (data: Buffer) => {
      bytes += data.byteLength
      const decoded = decodeGatewayFrame(data)
      if (Result.isFailure(decoded)) return
      const message = decoded.success
      if (message.type === "welcome") {
        clearTimeout(timer)
        resolve(socket)
        setInterval(() => {
          if (socket.readyState !== WebSocket.OPEN) return
          socket.send(frame({ type: "heartbeat", body: { seq: seq++, k3s: { service: "inactive", node_ready: false }, wireguard: [], load: { cpu_ratio: 0.1, memory_ratio: 0.2 } } }))
        }, 5_000).unref()
        return
      }
      if (message.type !== "config_push") return
      socket.send(frame({ type: "config_ack", body: { kind: message.body.kind, key: message.body.key, version: message.body.version, status: "applied" } }))
      if (message.body.kind !== "wireguard") return
      wireguardBytes += data.byteLength
      wireguardPushes++
      const content = (message.body.payload as { content: string }).content
      const listed = content.split("[Peer]").length - 1
      if (!complete && listed >= others) {
        complete = true
        configured++
        lastConfigBytes = data.byteLength
        if (configured === entries.length) finish("done")
      }
    })
    socket.on("close", () => {
      if (configured < entries.length) dropped++
    })
    socket.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })

// The canary: one more agent session pinging every 100 ms; a pong's delay is the server's event-loop lag.
const lags: Array<number> = []
const canary = new WebSocket(url, { perMessageDeflate: false })
const pingsSentAt: Array<number> = []
canary.once("open", () =>
  canary.send(
    frame({
      type: "hello",
      body: { instance_id: canaryEntry.instance_id, credential: canaryEntry.credential, agent_version: "canary", protocol_versions: [PROTOCOL_VERSION], capabilities: [], wireguard_keys: [], applied: [], held_vips: [] }
    })
  )
)
canary.on("pong", () => lags.push(Date.now() - (pingsSentAt.shift() ?? Date.now())))
const pinging = setInterval(() => {
  if (canary.readyState !== WebSocket.OPEN) return
  pingsSentAt.push(Date.now())
  canary.ping()
}, 100)
canary.on("error", () => undefined)

setTimeout(() => finish("timeout"), Number(timeoutArg)).unref()
let cursor = 0
await Promise.all(
  Array.from({ length: Math.min(128, entries.length) }, async () => {
    while (cursor < entries.length) await connect(entries[cursor++]!)
  })
)
process.on("message", (message: { type: string }) => {
  if (message.type === "stop") process.exit(0)
})
