/**
 * Gateway load benchmark: sessions (CPU, RSS, memory per session, time to connect) at
 * 1,000 / 5,000 / 10,000 agents heartbeating every 5 s, heartbeat ingest under a flood, and
 * silence-detection latency with every session connected — each beside a bare `ws` server
 * that only decodes frames, measured in the same run. The gateway, the baseline and the load
 * generator each run in their own process on 127.0.0.1. Then failover convergence on a
 * 1,000-peer network (bench/convergence.ts). Writes bench-results.json.
 *
 *   BENCH_SESSIONS=1000,5000,10000  BENCH_SETTLE_MS=12000  BENCH_STEADY_MS=10000  BENCH_PEERS=1000  BENCH_FAILOVERS=10  (defaults)
 */
import type { ChildProcess } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import { measureBaselineConvergence, measureGatewayConvergence, type ConvergenceFigure } from "./convergence"
import { describeAcrossGateways, measureAcrossGateways, type AcrossGatewaysFigures } from "./multi-gateway"
import { next, percentile, sleep, start } from "./processes"
// @ts-expect-error: a plain-JS script shared with the tests' globalSetup
import { startPostgres } from "../../../scripts/throwaway-postgres.mjs"

const SESSION_COUNTS = (process.env.BENCH_SESSIONS ?? "1000,5000,10000").split(",").map(Number)
const STEADY_MS = Number(process.env.BENCH_STEADY_MS ?? 10_000)
/**
 * From the last connect to the steady window: past the gateway's memory reclaim after the burst
 * of hellos (it looks every 5 s and collects once a look finds the burst over, ~270 ms of CPU at
 * 10,000 sessions), so the window's CPU and RSS are the fleet at rest, not the reconnect.
 */
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 12_000)
const FLOOD_MS = Number(process.env.BENCH_FLOOD_MS ?? 5_000)
const HOLDERS = Number(process.env.BENCH_HOLDERS ?? 20)
const SILENCE_THRESHOLD_MS = 15_000
const PEERS = Number(process.env.BENCH_PEERS ?? 1_000)
const FAILOVERS = Number(process.env.BENCH_FAILOVERS ?? 10)

interface Stats {
  cpu: { user: number; system: number }
  rss: number
  heap: number
  /** Heap after a full collection (only when asked for). */
  retainedHeap?: number
  /** RSS after that collection. */
  retainedRss?: number
  at: number
  heartbeats: number
  silences?: Record<string, number>
}
const stats = (child: ChildProcess, gc = false) => {
  const reply = next<Stats>(child, "stats")
  child.send({ type: "stats", gc })
  return reply
}

export interface SessionFigure {
  readonly mode: "gateway" | "baseline"
  readonly sessions: number
  readonly connectMs: number
  readonly cpuPercent: number
  readonly rssMb: number
  readonly bytesPerSession: number
  /** Heap growth per session after a full collection: what the sessions hold, without uncollected garbage. */
  readonly retainedBytesPerSession: number | null
  /** RSS growth per session, both measured after a compacting collection (pages V8 freed are given back). */
  readonly retainedRssPerSession: number | null
  readonly heartbeatsPerSecond: number
}

const results: {
  sessions: Array<SessionFigure>
  ingest: Array<{ mode: string; heartbeatsPerSecond: number }>
  silence?: { sessions: number; holders: number; p50Ms: number; p99Ms: number; maxMs: number; thresholdMs: number; missed: number }
  reconnect?: { sessions: number; allBackMs: number; gatewayStartMs: number; peakRssMb: number; attempts: number }
  convergence: Array<ConvergenceFigure>
  acrossGateways?: AcrossGatewaysFigures
} = { sessions: [], ingest: [], convergence: [] }

const max = Math.max(...SESSION_COUNTS)
for (const sessions of SESSION_COUNTS) {
  for (const mode of ["baseline", "gateway"] as const) {
    const dir = mkdtempSync(join(tmpdir(), `fleetplane-bench-${mode}-`))
    const holders = mode === "gateway" && sessions === max ? Math.min(HOLDERS, sessions) : 0
    const server = start("bench-server.ts", [mode, String(sessions), String(holders), dir])
    const ready = await next<{ url: string; credentials: string; holders: Array<string> }>(server, "ready")
    const idle = await stats(server, true)
    const load = start("load-generator.ts", [ready.url, ready.credentials, String(sessions), "5000"])
    const connected = await next<{ connectMs: number }>(load, "connected", 300_000)
    await sleep(SETTLE_MS)
    const a = await stats(server)
    await sleep(STEADY_MS)
    const b = await stats(server)
    const retained = await stats(server, true)
    const wallMs = b.at - a.at
    const cpuMicros = b.cpu.user + b.cpu.system - (a.cpu.user + a.cpu.system)
    results.sessions.push({
      mode,
      sessions,
      connectMs: connected.connectMs,
      cpuPercent: (cpuMicros / 1000 / wallMs) * 100,
      rssMb: b.rss / 1024 / 1024,
      bytesPerSession: (b.rss - idle.rss) / sessions,
      retainedBytesPerSession: retained.retainedHeap === undefined || idle.retainedHeap === undefined ? null : (retained.retainedHeap - idle.retainedHeap) / sessions,
      retainedRssPerSession: retained.retainedRss === undefined || idle.retainedRss === undefined ? null : (retained.retainedRss - idle.retainedRss) / sessions,
      heartbeatsPerSecond: ((b.heartbeats - a.heartbeats) / wallMs) * 1000
    })
    if (sessions === max) {
      const before = await stats(server)
      const flooded = next<{ sent: number }>(load, "flooded", FLOOD_MS + 60_000)
      load.send({ type: "flood", durationMs: FLOOD_MS, sockets: Math.min(200, sessions) })
      await flooded
      await sleep(500)
      const after = await stats(server)
      results.ingest.push({ mode, heartbeatsPerSecond: ((after.heartbeats - before.heartbeats) / (after.at - before.at)) * 1000 })
      if (mode === "gateway" && ready.holders.length > 0) {
        const silenced = next<{ last: Record<string, number> }>(load, "silenced")
        load.send({ type: "silence", instances: ready.holders })
        const { last } = await silenced
        await sleep(SILENCE_THRESHOLD_MS + 3_000)
        const detected = (await stats(server)).silences ?? {}
        const latencies = Object.entries(last).flatMap(([id, at]) => (detected[id] === undefined ? [] : [detected[id]! - (at + SILENCE_THRESHOLD_MS)]))
        results.silence = {
          sessions,
          holders: ready.holders.length,
          p50Ms: percentile(latencies, 50),
          p99Ms: percentile(latencies, 99),
          maxMs: Math.max(...latencies),
          thresholdMs: SILENCE_THRESHOLD_MS,
          missed: ready.holders.length - latencies.length
        }
      }
    }
    if (mode === "gateway" && sessions === max) {
      // Reconnect storm: a graceful gateway restart on the same database and port.
      const armed = next(load, "ready-for-restart")
      load.send({ type: "expect-restart" })
      await armed
      const reconnected = next<{ ms: number; attempts: number }>(load, "reconnected", 300_000)
      const exited = new Promise((resolve) => server.once("exit", resolve))
      server.kill("SIGTERM")
      await exited
      const restartAt = Date.now()
      const port = new URL(ready.url).port
      const restarted = start("bench-server.ts", ["gateway-restart", String(sessions), "0", dir, port])
      await next(restarted, "ready")
      const gatewayStartMs = Date.now() - restartAt
      let peakRss = 0
      let done = false
      const sampling = (async () => {
        while (!done) {
          peakRss = Math.max(peakRss, (await stats(restarted)).rss)
          await sleep(250)
        }
      })()
      const back = await reconnected
      done = true
      await sampling
      results.reconnect = { sessions, allBackMs: back.ms, gatewayStartMs, peakRssMb: peakRss / 1024 / 1024, attempts: back.attempts }
      load.send({ type: "stop" })
      restarted.kill("SIGTERM")
      await sleep(500)
      continue
    }
    load.send({ type: "stop" })
    server.kill("SIGTERM")
    await sleep(500)
  }
}

// BENCH_SESSIONS_ONLY=1: the sessions figures alone (memory per session at 10,000: minutes, not the whole run).
if (process.env.BENCH_SESSIONS_ONLY === undefined) {
  // Failover convergence on a network of PEERS peers, beside the bare-ws fan-out baseline.
  // A pause first: the 10,000-agent processes of the storm above take a moment to go away.
  await sleep(5_000)
  results.convergence.push(await measureGatewayConvergence(PEERS, FAILOVERS))
  results.convergence.push(await measureBaselineConvergence(PEERS, FAILOVERS))
  // The same on PostgreSQL (a throwaway local server): what several gateways sharing a database pay.
  const postgres = await startPostgres()
  try {
    results.convergence.push(await measureGatewayConvergence(PEERS, FAILOVERS, { postgres: postgres.url }))
    // Several gateways on that PostgreSQL: silence error, cross-gateway pushes, recovery (#22).
    results.acrossGateways = await measureAcrossGateways(postgres.url)
  } finally {
    postgres.stop()
  }
}

const row = (cells: Array<string | number>) => cells.map(String).join(" | ")
console.log(`\n@fleetplane/gateway load (Node ${process.version}, ${cpus().length} cores)\n`)
console.log(row(["sessions", "server", "connect all (s)", "CPU %", "RSS (MB)", "KB/session", "retained heap KB/session", "RSS after collection KB/session", "heartbeats/s"]))
for (const s of results.sessions) {
  console.log(row([s.sessions, s.mode, (s.connectMs / 1000).toFixed(1), s.cpuPercent.toFixed(1), s.rssMb.toFixed(0), (s.bytesPerSession / 1024).toFixed(1), s.retainedBytesPerSession === null ? "n/a" : (s.retainedBytesPerSession / 1024).toFixed(1), s.retainedRssPerSession === null ? "n/a" : (s.retainedRssPerSession / 1024).toFixed(1), s.heartbeatsPerSecond.toFixed(0)]))
}
for (const i of results.ingest) console.log(`heartbeat ingest (${i.mode}): ${i.heartbeatsPerSecond.toFixed(0)}/s`)
if (results.silence) {
  const s = results.silence
  console.log(`silence detection with ${s.sessions} sessions, ${s.holders} holders: p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms over the ${s.thresholdMs} ms threshold (target p99 <= 250 ms); missed ${s.missed}`)
}
if (results.reconnect) {
  const r = results.reconnect
  console.log(`reconnect storm: ${r.sessions} agents all back ${r.allBackMs} ms after the old gateway said 1001 (restart took ${r.gatewayStartMs} ms), ${r.attempts} attempts, peak RSS ${r.peakRssMb.toFixed(0)} MB`)
}
for (const c of results.convergence) {
  console.log(`failover convergence (${c.mode}${c.mode === "gateway" ? ` on ${c.store}` : ""}), ${c.peers} peers, ${c.failovers} failovers: p50 ${c.p50Ms} ms, p99 ${c.p99Ms} ms (target < 2000 ms)${c.mode === "gateway" ? `; promotion committed after p50 ${c.decisionP50Ms} ms` : ""}${c.timedOut > 0 ? `; ${c.timedOut} timed out` : ""}`)
}
if (results.acrossGateways !== undefined) console.log(describeAcrossGateways(results.acrossGateways))
const resultsFile = new URL("../bench-results.json", import.meta.url)
// Sessions alone replace only the sessions figures of an earlier full run.
const earlier = process.env.BENCH_SESSIONS_ONLY !== undefined && existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, "utf8")) as Record<string, unknown>) : {}
const fresh = process.env.BENCH_SESSIONS_ONLY !== undefined ? { sessions: results.sessions, ingest: results.ingest } : results
writeFileSync(resultsFile, JSON.stringify({ ...earlier, node: process.version, cores: cpus().length, ...fresh }, null, 2))
