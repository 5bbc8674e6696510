/**
 * Silence detection over independent trials (#20): N sessions heartbeating every 5 s, K of them
 * VIP holders (one cluster each). Each holder is silenced at its own random moment within a
 * window (its socket stays open, as with a hung node); from its last heartbeat, the threshold
 * (15 s) plus the time until the gateway's `sdwan.vip_holder_silent` event is its detection
 * latency. Reports p50 / p99 / max over the K trials and how many were missed. Merges
 * `silenceTrials` into bench-results.json.
 *
 *   BENCH_SILENCE_SESSIONS=10000  BENCH_SILENCE_HOLDERS=50  BENCH_SILENCE_WINDOW_MS=30000
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { next, percentile, sleep, start } from "./processes"

const SESSIONS = Number(process.env.BENCH_SILENCE_SESSIONS ?? 10_000)
const HOLDERS = Number(process.env.BENCH_SILENCE_HOLDERS ?? 50)
const WINDOW_MS = Number(process.env.BENCH_SILENCE_WINDOW_MS ?? 30_000)
const SILENCE_THRESHOLD_MS = 15_000

export const measureSilenceTrials = async () => {
  const dir = mkdtempSync(join(tmpdir(), "fleetplane-silence-"))
  const server = start("bench-server.ts", ["gateway", String(SESSIONS), String(HOLDERS), dir])
  try {
    const ready = await next<{ url: string; credentials: string; holders: Array<string> }>(server, "ready", 900_000)
    const load = start("load-generator.ts", [ready.url, ready.credentials, String(SESSIONS), "5000"])
    try {
      await next(load, "connected", 600_000)
      await sleep(10_000)
      const lastHeartbeat: Record<string, number> = {}
      load.on("message", (message: { type: string; last?: Record<string, number> }) => {
        if (message.type === "silenced") Object.assign(lastHeartbeat, message.last)
      })
      // Each holder at its own random moment in the window.
      for (const holder of ready.holders) setTimeout(() => load.send({ type: "silence", instances: [holder] }), Math.random() * WINDOW_MS)
      await sleep(WINDOW_MS + SILENCE_THRESHOLD_MS + 5_000)
      const reply = next<{ silences?: Record<string, number> }>(server, "stats")
      server.send({ type: "stats" })
      const detected = (await reply).silences ?? {}
      const latencies = Object.entries(lastHeartbeat).flatMap(([id, at]) => (detected[id] === undefined ? [] : [detected[id]! - (at + SILENCE_THRESHOLD_MS)]))
      const figure = {
        sessions: SESSIONS,
        trials: ready.holders.length,
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
        maxMs: Math.max(...latencies),
        minMs: Math.min(...latencies),
        missed: ready.holders.length - latencies.length,
        thresholdMs: SILENCE_THRESHOLD_MS
      }
      console.log(
        `silence detection, ${SESSIONS} sessions, ${figure.trials} holders silenced at random moments: after the ${SILENCE_THRESHOLD_MS} ms threshold ` +
          `p50 ${figure.p50Ms} ms, p99 ${figure.p99Ms} ms, max ${figure.maxMs} ms, min ${figure.minMs} ms; missed ${figure.missed}`
      )
      return figure
    } finally {
      load.kill("SIGKILL")
    }
  } finally {
    server.kill("SIGKILL")
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const silenceTrials = await measureSilenceTrials()
  const file = new URL("../bench-results.json", import.meta.url)
  const results = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {}
  writeFileSync(file, JSON.stringify({ ...results, silenceTrials }, null, 2))
}
