/**
 * Admin API throughput with agents connected (#20): a gateway with N sessions heartbeating
 * every 5 s and K clusters; C clients in this process list the clusters
 * (`POST /v1/actions/kubernetes_list_clusters`, keep-alive) as fast as answers come, for a
 * while. Baseline, same run: bare `node:http` + better-sqlite3 over the same database file,
 * answering the same request with the same rows (after the gateway stopped). Requests per
 * second and latency p50 / p99. Merges `adminThroughput` into bench-results.json.
 *
 *   BENCH_ADMIN_SESSIONS=1000  BENCH_ADMIN_CLUSTERS=20  BENCH_ADMIN_CLIENTS=16  BENCH_ADMIN_MS=10000  BENCH_ADMIN_TRIALS=3
 *
 * Each trial is a gateway (with its agents) started afresh, then its baseline; on this machine
 * the bare baseline alone moves by half from one run to the next, so the figure reported is the
 * trial with the median ratio, beside every trial's.
 *
 * BENCH_API_KEY_CACHE_MS=0 reads every request's API key from the store (the gateway's default caches it 10 s).
 * To see where the gateway's time goes: BENCH_CPU_PROF=<dir> (the server process writes a
 * .cpuprofile there) with BENCH_PROFILE=1 (the server is stopped gracefully, so it does).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { Agent, request } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { next, percentile, sleep, start } from "./processes"

const SESSIONS = Number(process.env.BENCH_ADMIN_SESSIONS ?? 1_000)
const CLUSTERS = Number(process.env.BENCH_ADMIN_CLUSTERS ?? 20)
const CLIENTS = Number(process.env.BENCH_ADMIN_CLIENTS ?? 16)
const DURATION_MS = Number(process.env.BENCH_ADMIN_MS ?? 10_000)

export interface AdminFigure {
  readonly server: "gateway" | "baseline"
  readonly requestsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly failures: number
  readonly clusters: number
}

/** C keep-alive clients posting the same request for DURATION_MS. */
const drive = async (url: string, apiKey: string | undefined): Promise<Omit<AdminFigure, "server">> => {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS })
  const target = new URL("/v1/actions/kubernetes_list_clusters", url)
  const latencies: Array<number> = []
  let failures = 0
  let clusters = 0
  const once = () =>
    new Promise<void>((resolve) => {
      const startedAt = performance.now()
      const req = request(
        target,
        { method: "POST", agent, headers: { "content-type": "application/json", ...(apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` }) } },
        (response) => {
          const chunks: Array<Buffer> = []
          response.on("data", (chunk: Buffer) => chunks.push(chunk))
          response.on("end", () => {
            latencies.push(performance.now() - startedAt)
            if (response.statusCode !== 200) failures++
            else clusters = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { clusters: Array<unknown> }).clusters.length
            resolve()
          })
        }
      )
      req.on("error", () => {
        failures++
        resolve()
      })
      req.end("{}")
    })
  const until = Date.now() + DURATION_MS
  const startedAt = Date.now()
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (Date.now() < until) await once()
    })
  )
  agent.destroy()
  return { requestsPerSecond: (latencies.length / (Date.now() - startedAt)) * 1000, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), failures, clusters }
}

const TRIALS = Math.max(1, Number(process.env.BENCH_ADMIN_TRIALS ?? 3))

export interface AdminTrial {
  readonly baseline: AdminFigure
  readonly gateway: AdminFigure
  readonly ratio: number
}

const describe = (f: AdminFigure) =>
  `admin API, ${f.server}${f.server === "gateway" ? ` with ${SESSIONS} agents connected` : ""}: ${f.requestsPerSecond.toFixed(0)} cluster lists/s (${f.clusters} clusters each), ` +
  `p50 ${f.p50Ms.toFixed(1)} ms, p99 ${f.p99Ms.toFixed(1)} ms, ${f.failures} failed, ${CLIENTS} clients`

/** Every trial, and the one with the median ratio (its baseline and gateway figures). */
export const measureAdminThroughput = async (): Promise<{ readonly median: Array<AdminFigure>; readonly trials: Array<AdminTrial> }> => {
  const trials: Array<AdminTrial> = []
  for (let i = 0; i < TRIALS; i++) {
    const [baseline, gateway] = await measureTrial()
    const trial = { baseline, gateway, ratio: gateway.requestsPerSecond / baseline.requestsPerSecond }
    trials.push(trial)
    console.log(`trial ${i + 1} of ${TRIALS}: ${describe(baseline)}; ${describe(gateway)}; gateway / baseline ${trial.ratio.toFixed(2)}`)
  }
  const median = [...trials].sort((a, b) => a.ratio - b.ratio)[Math.floor((trials.length - 1) / 2)]!
  for (const f of [median.baseline, median.gateway]) console.log(describe(f))
  console.log(
    `admin API cluster listing, gateway / baseline: ${median.ratio.toFixed(2)} (the median of ${trials.length} trials: ${trials.map((t) => t.ratio.toFixed(2)).join(", ")})`
  )
  return { median: [median.baseline, median.gateway], trials }
}

const measureTrial = async (): Promise<[AdminFigure, AdminFigure]> => {
  const dir = mkdtempSync(join(tmpdir(), "fleetplane-admin-"))
  const server = start("bench-server.ts", ["gateway", String(SESSIONS), String(CLUSTERS), dir])
  let ready: { url: string; credentials: string; adminUrl: string; apiKey: string; accountId: string; database: string }
  let gateway: AdminFigure
  try {
    ready = await next(server, "ready", 900_000)
    const load = start("load-generator.ts", [ready.url, ready.credentials, String(SESSIONS), "5000"])
    try {
      await next(load, "connected", 600_000)
      await sleep(2_000)
      gateway = { server: "gateway", ...(await drive(ready.adminUrl, ready.apiKey)) }
    } finally {
      load.kill("SIGKILL")
    }
  } finally {
    server.kill(process.env.BENCH_PROFILE ? "SIGTERM" : "SIGKILL")
  }
  await sleep(process.env.BENCH_PROFILE ? 8_000 : 1_000)
  const bare = start("admin-baseline-server.ts", [ready.database, ready.accountId])
  let baseline: AdminFigure
  try {
    const up = await next<{ url: string }>(bare, "ready", 60_000)
    baseline = { server: "baseline", ...(await drive(up.url, undefined)) }
  } finally {
    bare.kill("SIGKILL")
  }
  return [baseline, gateway]
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { median: adminThroughput, trials: adminThroughputTrials } = await measureAdminThroughput()
  const file = new URL("../bench-results.json", import.meta.url)
  const results = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {}
  writeFileSync(file, JSON.stringify({ ...results, adminThroughput, adminThroughputTrials }, null, 2))
}
