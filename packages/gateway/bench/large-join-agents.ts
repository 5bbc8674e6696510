/**
 * The agents of the large-network join benchmark (#20), in their own process: N agents connect
 * (128 at a time) holding the network's peer set already (their hello lists the `wireguard`
 * version and peer-set version they have), and after a short rest the first joiner connects with
 * a fresh key and endpoint; as soon as every one of the N agents holds its entry, the next joiner
 * connects (a network under churn: a change right after another). Measured per joiner: from its
 * hello until every one of the N agents holds its entry, and the bytes received meanwhile. Tells
 * the orchestrator when each join starts (`joining`) and ends (`done`): its canary, in a process
 * of its own, reads the lag.
 */
import { readFileSync } from "node:fs"
import { Result } from "effect"
import WebSocket from "ws"
import { decodeGatewayFrame, encodeFrame, PeerSetAssembler, PROTOCOL_VERSION, type AgentMessage } from "@fleetplane/agent-protocol"
import { ackEveryConfigPush } from "./agent-hello"
import type { LargeJoinAgent } from "./large-join-server"

const [url, agentsFile, wireguardVersion, peerVersion, timeoutArg] = process.argv.slice(2) as [string, string, string, string, string]
/**
 * From the last session connected to the first joiner: the network at rest. Past the gateway's
 * one compacting collection after a fleet reconnects (src/memory-reclaim.ts: at the first check,
 * every 5 s, that finds the burst quiet; a ~0.3-0.5 s pause at 10,000 sessions), which at 5 s
 * fell into some trials' joins and added its pause to them.
 */
const REST_MS = 12_000
const all = JSON.parse(readFileSync(agentsFile, "utf8")) as Array<LargeJoinAgent>
const peers = all.filter((a) => a.role === "peer")
const joiners = all.filter((a) => a.role === "joiner")
const send = (message: unknown) => process.send!(message)
const frame = (message: AgentMessage) => encodeFrame(message)

const helloOf = (agent: LargeJoinAgent, resumed: boolean) =>
  frame({
    type: "hello",
    body: {
      instance_id: agent.instance_id,
      credential: agent.credential,
      agent_version: "bench",
      protocol_versions: [PROTOCOL_VERSION],
      capabilities: ["wireguard"],
      wireguard_keys: agent.role === "canary" ? [] : [{ network_id: agent.network_id, public_key: agent.public_key, endpoint: agent.endpoint }],
      applied: resumed ? [{ kind: "wireguard", key: agent.network_id, version: Number(wireguardVersion) }] : [],
      held_vips: [],
      ...(resumed ? { peer_versions: [{ network_id: agent.network_id, version: Number(peerVersion) }] } : {})
    }
  })

let bytes = 0
let outOfStep = 0
let dropped = 0
let joinStartedAt = 0
let bytesAtStart = 0
let welcomed = 0
/** Per joiner: how many of the N agents hold its entry, and a promise settled when all do. */
const listing = joiners.map(() => 0)
const everywhere = joiners.map(() => {
  let resolve = () => {}
  const promise = new Promise<void>((settle) => (resolve = settle))
  return { promise, resolve }
})
let current = 0

const finish = (type: "done" | "timeout") =>
  send({ type, joiner: current, peers: peers.length, listing: listing[current], ms: Date.now() - joinStartedAt, bytes: bytes - bytesAtStart, outOfStep, dropped })

const connect = (agent: LargeJoinAgent) =>
  new Promise<void>((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 })
    const parts = new PeerSetAssembler()
    const lists = joiners.map(() => false)
    let have = Number(peerVersion)
    let seq = 0
    const timer = setTimeout(() => reject(new Error(`agent ${agent.instance_id} not welcomed within 120 s`)), 120_000)
    socket.once("open", () => socket.send(helloOf(agent, true)))
    socket.on("message", (data: Buffer) => {
      bytes += data.byteLength
      const decoded = decodeGatewayFrame(data)
      if (Result.isFailure(decoded)) return
      const message = decoded.success
      if (message.type === "welcome") {
        clearTimeout(timer)
        welcomed++
        resolve()
        setInterval(() => {
          if (socket.readyState === WebSocket.OPEN) socket.send(frame({ type: "heartbeat", body: { seq: seq++, k3s: { service: "inactive", node_ready: false }, wireguard: [], load: { cpu_ratio: 0.1, memory_ratio: 0.2 } } }))
        }, 5_000).unref()
        return
      }
      if (message.type !== "config_push") return
      const push = parts.accept(message.body)
      if (push === undefined) return
      socket.send(frame({ type: "config_ack", body: { kind: push.kind, key: push.key, version: push.version, status: "applied" } }))
      if (push.kind !== "wireguard") return
      // A delta must start at the version this agent holds.
      if (!push.payload.peers.full && push.payload.peers.from_version !== have) outOfStep++
      have = push.payload.peers.version
      for (const [k, joiner] of joiners.entries()) {
        if (lists[k] || !push.payload.peers.upserts.some((entry) => entry.public_key === joiner.public_key)) continue
        lists[k] = true
        if (++listing[k]! === peers.length) everywhere[k]!.resolve()
      }
    })
    socket.on("close", () => dropped++)
    socket.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })

setTimeout(() => finish("timeout"), Number(timeoutArg)).unref()
let cursor = 0
await Promise.all(
  Array.from({ length: Math.min(128, peers.length) }, async () => {
    while (cursor < peers.length) await connect(peers[cursor++]!)
  })
)
send({ type: "connected", sessions: welcomed })
await new Promise((resolve) => setTimeout(resolve, REST_MS))
// Each joiner: a fresh key and endpoint on first contact; the next as soon as the one before is everywhere.
for (const [k, joiner] of joiners.entries()) {
  current = k
  send({ type: "joining", joiner: k })
  joinStartedAt = Date.now()
  bytesAtStart = bytes
  const late = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 })
  late.once("open", () => late.send(helloOf(joiner, false)))
  ackEveryConfigPush(late)
  await everywhere[k]!.promise
  finish("done")
}
