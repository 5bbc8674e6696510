/**
 * One peer joining a large network (#20): N agents hold the network's peer set (resumed
 * sessions); one more peer connects for the first time with a fresh key and endpoint. Measured:
 * from its hello until every other peer holds its entry, the bytes sent meanwhile, and a canary
 * agent's ping round trips (the server's event-loop lag) over the join — at least 3 s from the
 * joiner's hello. Then a second joiner, as soon as every peer has the first (a change right after
 * another, as under churn): the same time for it, which shows what the first publish's spacing
 * holds it back; the canary runs here, in a process of its own, so the agents' own work does
 * not count as the server's lag. Beside it, in the same run:
 * a bare `ws` server sending each agent the joiner's entry alone. Separate processes on
 * 127.0.0.1. Merges `largeJoin` into bench-results.json.
 *
 *   BENCH_JOIN_PEERS=1000,10000  BENCH_JOIN_TRIALS=3  (defaults)
 *   BENCH_LOG_LEVEL=info  the gateway's log on stdout (e.g. when `gateway.memory_reclaimed` ran)
 */
import type { ChildProcess } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { LargeJoinReady } from "./large-join-server"
import WebSocket from "ws"
import { helloFrame } from "./agent-hello"
import type { LargeJoinAgent } from "./large-join-server"
import { next, percentile, sleep, start } from "./processes"

const PEER_COUNTS = (process.env.BENCH_JOIN_PEERS ?? "1000,10000").split(",").map(Number)
const TRIALS = Number(process.env.BENCH_JOIN_TRIALS ?? 3)

export interface LargeJoinFigure {
  readonly mode: "gateway" | "baseline"
  readonly peers: number
  readonly trial: number
  readonly completed: boolean
  readonly seconds: number
  /** The second joiner, connecting as soon as every peer has the first: until every peer has it too. */
  readonly nextCompleted: boolean
  readonly nextSeconds: number
  readonly megabytes: number
  readonly lagP99Ms: number
  readonly lagMaxMs: number
  /** Canary round trips over both joins (at least 3 s from the first joiner's hello). */
  readonly lagSamples: number
  /** The server's CPU time (user + system) from the first joiner's hello until every peer has the second. */
  readonly cpuSeconds: number
  readonly outOfStep: number
  readonly dropped: number
  readonly setupSeconds: number
}

interface Outcome {
  readonly type: "done" | "timeout"
  readonly joiner: number
  readonly listing: number
  readonly ms: number
  readonly bytes: number
  readonly outOfStep: number
  readonly dropped: number
}

/** The canary is read over at least this long from the joiner's hello, so a quick join still has samples. */
const LAG_WINDOW_MS = 3_000

/**
 * How often the canary pings. Every 20 ms, as in the ingest benchmark: a ping every 100 ms saw a
 * 50 ms stall only when one happened to be sent inside it (half the time), and its ~30 pings over
 * the window made p99 the maximum.
 */
const CANARY_INTERVAL_MS = 20

/** One more agent session, pinging every CANARY_INTERVAL_MS: a pong's delay is the server's event-loop lag. */
const startCanary = async (url: string, agent: LargeJoinAgent) => {
  const lags: Array<{ at: number; ms: number }> = []
  const socket = new WebSocket(url, { perMessageDeflate: false })
  const sentAt: Array<number> = []
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => {
      socket.send(helloFrame(agent, { agentVersion: "canary" }))
      resolve()
    })
    socket.once("error", reject)
  })
  socket.on("pong", () => {
    const now = Date.now()
    lags.push({ at: now, ms: now - (sentAt.shift() ?? now) })
  })
  const timer = setInterval(() => {
    if (socket.readyState !== WebSocket.OPEN) return
    sentAt.push(Date.now())
    socket.ping()
  }, CANARY_INTERVAL_MS)
  return {
    since: (at: number) => lags.filter((lag) => lag.at >= at).map((lag) => lag.ms),
    stop: () => {
      clearInterval(timer)
      socket.terminate()
    }
  }
}

/** The server process's CPU time so far, in microseconds. */
const serverCpu = async (server: ChildProcess) => {
  const stats = next<{ cpu: { user: number; system: number } }>(server, "stats", 30_000)
  server.send({ type: "stats" })
  const { cpu } = await stats
  return cpu.user + cpu.system
}

const measure = async (mode: LargeJoinFigure["mode"], peers: number, trial: number): Promise<LargeJoinFigure> => {
  const dir = mkdtempSync(join(tmpdir(), "fleetplane-large-join-"))
  const server = start("large-join-server.ts", [mode, String(peers), dir])
  try {
    const ready = await next<LargeJoinReady>(server, "ready", 900_000)
    const roster = JSON.parse(readFileSync(ready.agents, "utf8")) as Array<LargeJoinAgent>
    const agents = start("large-join-agents.ts", [ready.url, ready.agents, String(ready.wireguardVersion), String(ready.peerVersion), "600000"])
    const canary = await startCanary(ready.url, roster.find((agent) => agent.role === "canary")!)
    try {
      await next(agents, "connected", 600_000)
      const joiners = roster.filter((agent) => agent.role === "joiner").length
      const outcomes: Array<Outcome> = []
      const finished = new Promise<void>((resolve) =>
        agents.on("message", (m: Outcome) => {
          if (m.type !== "done" && m.type !== "timeout") return
          outcomes.push(m)
          if (m.type === "timeout" || outcomes.length === joiners) resolve()
        })
      )
      await next(agents, "joining", 60_000)
      const joinedAt = Date.now()
      const cpuAtStart = await serverCpu(server)
      await finished
      const cpuSeconds = ((await serverCpu(server)) - cpuAtStart) / 1e6
      await sleep(Math.max(0, joinedAt + LAG_WINDOW_MS - Date.now()))
      const during = canary.since(joinedAt)
      const [result, after] = [outcomes[0]!, outcomes[1]]
      const last = outcomes.at(-1)!
      return {
        mode,
        peers,
        trial,
        completed: result.type === "done",
        seconds: result.ms / 1000,
        nextCompleted: after?.type === "done",
        nextSeconds: (after?.ms ?? Number.NaN) / 1000,
        megabytes: result.bytes / 2 ** 20,
        lagP99Ms: percentile(during, 99),
        lagMaxMs: Math.max(0, ...during),
        lagSamples: during.length,
        cpuSeconds,
        outOfStep: last.outOfStep,
        dropped: last.dropped,
        setupSeconds: ready.setupMs / 1000
      }
    } finally {
      canary.stop()
      agents.kill("SIGKILL")
    }
  } finally {
    server.kill(process.env.BENCH_CPU_PROF === undefined ? "SIGKILL" : "SIGTERM")
  }
}

export const measureLargeJoin = async (): Promise<Array<LargeJoinFigure>> => {
  const figures: Array<LargeJoinFigure> = []
  for (const peers of PEER_COUNTS) {
    for (let trial = 1; trial <= TRIALS; trial++) {
      for (const mode of ["baseline", "gateway"] as const) {
        const f = await measure(mode, peers, trial)
        console.log(
          `one peer joining ${peers} peers, ${mode}, trial ${trial}: ${f.completed ? "every other peer has it" : "TIMED OUT"} after ${f.seconds.toFixed(2)} s, ` +
            `${f.megabytes.toFixed(2)} MB sent; the next joiner right after: ${f.nextCompleted ? `every other peer has it after ${f.nextSeconds.toFixed(2)} s` : "TIMED OUT"}; server ${f.cpuSeconds.toFixed(2)} CPU-s over both, canary lag p99 ${f.lagP99Ms} ms max ${f.lagMaxMs} ms (${f.lagSamples} pings), ${f.outOfStep} out of step, ${f.dropped} dropped (setup ${f.setupSeconds.toFixed(0)} s)`
        )
        figures.push(f)
      }
    }
  }
  return figures
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const largeJoin = await measureLargeJoin()
  const file = new URL("../bench-results.json", import.meta.url)
  const results = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {}
  writeFileSync(file, JSON.stringify({ ...results, largeJoin }, null, 2))
}
