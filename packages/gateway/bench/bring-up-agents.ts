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
import { decodeGatewayFrame, encodeFrame, PeerSetAssembler, type AgentMessage, type PeerEntry } from "@fleetplane/agent-protocol"
import { ackEveryConfigPush, helloFrame } from "./agent-hello"
import type { BringUpAgentEntry } from "./bring-up-server"
import { percentile } from "./processes"

const [urlsArg, agentsFile, timeoutArg] = process.argv.slice(2) as [string, string, string]
/** One gateway's URL, or several (comma-separated): agents are spread over them in turn; the canary and the late joiner use the first. */
const urls = urlsArg.split(",")
const url = urls[0]!
/** How long the configured network rests before the late joiner connects. */
const SETTLE_MS = Number(process.env.BENCH_JOIN_SETTLE_MS ?? 30_000)
const all = JSON.parse(readFileSync(agentsFile, "utf8")) as Array<BringUpAgentEntry>
const entries = all.filter((e) => e.canary !== true && e.late !== true)
const canaryEntry = all.find((e) => e.canary === true)!
const lateEntry = all.find((e) => e.late === true)!
const send = (message: unknown) => process.send!(message)
const frame = (message: AgentMessage) => encodeFrame(message)
const others = entries.length - 1
/** Peer ids interned once for the whole process (every agent sees the same few thousand). */
const peerIndex = new Map<string, number>()
const PEER_CAPACITY = all.length + 16
const indexOf = (peerId: string) => {
  let index = peerIndex.get(peerId)
  if (index === undefined) {
    index = peerIndex.size
    if (index >= PEER_CAPACITY) throw new Error(`more peer ids than agents (${PEER_CAPACITY})`)
    peerIndex.set(peerId, index)
  }
  return index
}

let configured = 0
let bytes = 0
let wireguardBytes = 0
let wireguardPushes = 0
let dropped = 0
/** Deltas that did not start at the agent's version (each is acked `peer_set_out_of_sync`; the gateway resends the full set). */
let outOfStep = 0
/** One agent's complete peer set as a single full push, encoded: "each peer's entry once" for one agent (the minimum is this × N). */
let fullSetBytes = 0
const started = Date.now()
/** Phase 2: one peer joining the configured network; how many agents list it, and the phase's figures. */
const join = { startedAt: 0, bytesAtStart: 0, wireguardBytesAtStart: 0, wireguardPushesAtStart: 0, lagsAtStart: 0, listing: 0, ms: 0, bytes: 0, lagP99Ms: 0, lagMaxMs: 0, done: false }

const bringUpLags = () => (atConfigured === undefined ? lags : lags.slice(0, atConfigured.lags))

const finish = (type: "done" | "timeout") => {
  clearInterval(pinging)
  send({
    type,
    join: join.done ? { ms: join.ms, bytes: join.bytes, lagP99Ms: join.lagP99Ms, lagMaxMs: join.lagMaxMs } : null,
    ms: (configuredAt || Date.now()) - started,
    configuredAt,
    settleMs: SETTLE_MS,
    configured,
    // The bring-up's own figures: what arrived before the late joiner connected.
    bytes: atConfigured?.bytes ?? bytes,
    wireguardBytes: atConfigured?.wireguardBytes ?? wireguardBytes,
    wireguardPushes: atConfigured?.wireguardPushes ?? wireguardPushes,
    dropped,
    outOfStep,
    fullSetBytes,
    lagP50Ms: percentile(bringUpLags(), 50),
    lagP99Ms: percentile(bringUpLags(), 99),
    lagMaxMs: Math.max(0, ...bringUpLags())
  })
}

const connect = (entry: BringUpAgentEntry, gatewayUrl: string) =>
  new Promise<WebSocket>((resolve, reject) => {
    const socket = new WebSocket(gatewayUrl, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 })
    let complete = false
    let listsLate = false
    let hasLate = false
    let seq = 0
    // The peer set as an agent keeps it, as a bitmap over the process's interned peer ids:
    // thousands of agents share this process (string sets of 4,000 × 4,000 ran it out of memory).
    const parts = new PeerSetAssembler()
    const have = new Uint8Array(PEER_CAPACITY)
    let held = 0
    let peerVersion: number | undefined
    // The first agent also keeps the entries themselves, to size the minimum.
    const kept = entry === entries[0] ? new Map<string, PeerEntry>() : undefined
    // As long as the whole run may take: with thousands of agents, this process itself is busy decoding.
    const timer = setTimeout(() => reject(new Error(`agent ${entry.instance_id} not welcomed within ${timeoutArg} ms`)), Number(timeoutArg))
    socket.once("open", () =>
      socket.send(
        helloFrame(entry, { capabilities: ["wireguard"], wireguardKeys: [{ network_id: entry.network_id, public_key: entry.public_key, endpoint: entry.endpoint }] })
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
      if (message.body.kind === "wireguard") {
        wireguardBytes += data.byteLength
        wireguardPushes++
      }
      const push = parts.accept(message.body)
      if (push === undefined) return
      if (push.kind !== "wireguard") {
        socket.send(frame({ type: "config_ack", body: { kind: push.kind, key: push.key, version: push.version, status: "applied" } }))
        return
      }
      const change = push.payload.peers
      if (!change.full && change.from_version !== peerVersion) {
        outOfStep++
        socket.send(frame({ type: "config_ack", body: { kind: push.kind, key: push.key, version: push.version, status: "failed", error: { code: "peer_set_out_of_sync", message: "bench" } } }))
        return
      }
      if (change.full) {
        have.fill(0)
        held = 0
        kept?.clear()
      }
      for (const id of change.removed) {
        const index = indexOf(id)
        if (have[index] === 1) held--
        have[index] = 0
        kept?.delete(id)
      }
      for (const upsert of change.upserts) {
        const index = indexOf(upsert.peer_id)
        if (have[index] === 0) held++
        have[index] = 1
        kept?.set(upsert.peer_id, upsert)
        if (upsert.public_key === lateEntry.public_key) hasLate = true
      }
      peerVersion = change.version
      socket.send(frame({ type: "config_ack", body: { kind: push.kind, key: push.key, version: push.version, status: "applied" } }))
      const listed = held - have[indexOf(push.payload.self.peer_id)]!
      if (!complete && listed >= others) {
        complete = true
        configured++
        if (kept !== undefined) {
          const full = { ...push, payload: { ...push.payload, peers: { from_version: 0, version: change.version, full: true, upserts: [...kept.values()], removed: [] } } }
          fullSetBytes = encodeFrame({ type: "config_push", body: full }).byteLength
        }
        // The join is measured on a settled network (as it happens in a running fleet), not in the bring-up's wake.
        if (configured === entries.length) {
          configuredAt = Date.now()
          atConfigured = { bytes, wireguardBytes, wireguardPushes, lags: lags.length }
          setTimeout(startJoin, SETTLE_MS)
        }
      }
      if (join.startedAt > 0 && !listsLate && hasLate) {
        listsLate = true
        join.listing++
        if (join.listing === entries.length) finishJoin()
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

let configuredAt = 0
/** The bring-up's own figures, taken when the last agent was configured. */
let atConfigured: { bytes: number; wireguardBytes: number; wireguardPushes: number; lags: number } | undefined
/** Every agent configured: the late joiner connects with its fresh key and endpoint. */
const startJoin = () => {
  join.startedAt = Date.now()
  join.bytesAtStart = bytes
  join.wireguardBytesAtStart = wireguardBytes
  join.wireguardPushesAtStart = wireguardPushes
  join.lagsAtStart = lags.length
  const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 })
  socket.once("open", () =>
    socket.send(
      helloFrame(lateEntry, { capabilities: ["wireguard"], wireguardKeys: [{ network_id: lateEntry.network_id, public_key: lateEntry.public_key, endpoint: lateEntry.endpoint }] })
    )
  )
  ackEveryConfigPush(socket)
}
const finishJoin = () => {
  const during = lags.slice(join.lagsAtStart)
  Object.assign(join, { ms: Date.now() - join.startedAt, bytes: bytes - join.bytesAtStart, lagP99Ms: percentile(during, 99), lagMaxMs: Math.max(0, ...during), done: true })
  finish("done")
}

// The canary: one more agent session pinging every 100 ms; a pong's delay is the server's event-loop lag.
const lags: Array<number> = []
const canary = new WebSocket(url, { perMessageDeflate: false })
const pingsSentAt: Array<number> = []
canary.once("open", () =>
  canary.send(
    helloFrame(canaryEntry, { agentVersion: "canary" })
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
    while (cursor < entries.length) {
      const index = cursor++
      await connect(entries[index]!, urls[index % urls.length]!)
    }
  })
)
process.on("message", (message: { type: string }) => {
  if (message.type === "stop") process.exit(0)
})
