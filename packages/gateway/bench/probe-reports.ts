/**
 * R26's cost at the gateway: the same fleet of sessions heartbeating at the same rate, with
 * heartbeats that carry no VIP probe report (before R26, and every node that is no reporter)
 * and with one (a reporter of one VIP: a node reports for its own cluster's VIP only), in the
 * same run. Gateway CPU and heartbeats ingested per second, over independent trials; and the
 * encoded size of the heartbeat each way. Each side runs in its own process on 127.0.0.1.
 * Merges `probeReports` into bench-results.json.
 *
 *   BENCH_PROBE_SESSIONS=2000  BENCH_PROBE_INTERVAL_MS=1000  BENCH_PROBE_STEADY_MS=15000  BENCH_PROBE_TRIALS=3  (defaults)
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { encodeFrame, type AgentMessage } from "@fleetplane/agent-protocol"
import { next, sampleProbeReports, sleep, start } from "./processes"

const SESSIONS = Number(process.env.BENCH_PROBE_SESSIONS ?? 2_000)
const INTERVAL_MS = Number(process.env.BENCH_PROBE_INTERVAL_MS ?? 1_000)
const STEADY_MS = Number(process.env.BENCH_PROBE_STEADY_MS ?? 15_000)
const TRIALS = Number(process.env.BENCH_PROBE_TRIALS ?? 3)

interface Stats {
  cpu: { user: number; system: number }
  at: number
  heartbeats: number
}
const stats = (child: ReturnType<typeof start>) => {
  const reply = next<Stats>(child, "stats")
  child.send({ type: "stats" })
  return reply
}

export interface ProbeReportFigure {
  readonly reportsPerHeartbeat: number
  readonly heartbeatBytes: number
  readonly sessions: number
  readonly intervalMs: number
  /** Per trial: gateway CPU (% of one core) and heartbeats ingested per second. */
  readonly cpuPercent: ReadonlyArray<number>
  readonly heartbeatsPerSecond: ReadonlyArray<number>
}

/** The heartbeat a real node sends (two tunnels' handshakes), with `reports` probe reports. */
const heartbeatBytes = (reports: number) =>
  encodeFrame({
    type: "heartbeat",
    body: {
      seq: 123_456,
      k3s: { service: "active", node_ready: true },
      wireguard: [{ network_id: "net_5grc6a8qxr0z0bemm41pt3st", peers: 2, fresh_handshakes: 2 }],
      load: { cpu_ratio: 0.12, memory_ratio: 0.41 },
      ...(reports === 0 ? {} : { vip_probes: sampleProbeReports(reports) })
    }
  } satisfies AgentMessage).byteLength

const log = (line: string) => process.stderr.write(`[probe-reports] ${line}\n`)
const figures: Array<ProbeReportFigure> = [0, 1].map((reports) => ({ reportsPerHeartbeat: reports, heartbeatBytes: heartbeatBytes(reports), sessions: SESSIONS, intervalMs: INTERVAL_MS, cpuPercent: [], heartbeatsPerSecond: [] }))

// Trials alternate between the two so drift on a shared machine falls on both alike.
for (let trial = 1; trial <= TRIALS; trial++) {
  for (const figure of figures) {
    const dir = mkdtempSync(join(tmpdir(), "fleetplane-bench-probes-"))
    const server = start("bench-server.ts", ["gateway", String(SESSIONS), "0", dir])
    const ready = await next<{ url: string; credentials: string }>(server, "ready")
    const load = start("load-generator.ts", [ready.url, ready.credentials, String(SESSIONS), String(INTERVAL_MS), String(figure.reportsPerHeartbeat)])
    await next(load, "connected", 300_000)
    await sleep(2_000)
    const a = await stats(server)
    await sleep(STEADY_MS)
    const b = await stats(server)
    const wallMs = b.at - a.at
    ;(figure.cpuPercent as Array<number>).push(((b.cpu.user + b.cpu.system - (a.cpu.user + a.cpu.system)) / 1000 / wallMs) * 100)
    ;(figure.heartbeatsPerSecond as Array<number>).push(((b.heartbeats - a.heartbeats) / wallMs) * 1000)
    log(`trial ${trial}, ${figure.reportsPerHeartbeat} report(s): CPU ${figure.cpuPercent.at(-1)!.toFixed(1)}%, ${figure.heartbeatsPerSecond.at(-1)!.toFixed(0)} heartbeats/s`)
    load.send({ type: "stop" })
    server.kill("SIGTERM")
    await sleep(500)
  }
}

const file = new URL("../bench-results.json", import.meta.url)
const existing = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {}
writeFileSync(file, JSON.stringify({ ...existing, probeReports: figures }, null, 2))
for (const f of figures) log(`${f.reportsPerHeartbeat} report(s): ${f.heartbeatBytes} bytes per heartbeat, CPU ${f.cpuPercent.map((c) => c.toFixed(1)).join(" / ")}%`)
process.exit(0)
