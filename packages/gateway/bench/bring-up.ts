/**
 * First bring-up of a network with fresh endpoints (#20): N agents connect for the first time,
 * each with a new WireGuard key and its own endpoint, to a gateway whose network has them
 * provisioned and attached. Measured from the first connect until every agent holds a config
 * listing all N-1 others: time, bytes received (against the minimum: each agent's complete peer
 * set once, as one full push), sessions dropped, gateway peak RSS and CPU, and a canary agent's ping round trips (the
 * gateway's event-loop lag). Then one more peer joins the configured network (fresh key and
 * endpoint): time until every other peer lists it, bytes, canary lag. Beside it, in the same
 * run: a bare `ws` server sending each agent the full peer set once, as soon as all are
 * connected, and each one the joiner's entry alone when it joins. Gateway, baseline and agents are separate
 * processes on 127.0.0.1. Merges `bringUp` into bench-results.json.
 *
 * The server's own event-loop delay over the same window (p99, max) is reported beside the
 * canary's, which also waits on the agents' process.
 *
 *   BENCH_BRINGUP_PEERS=250,500,1000  BENCH_BRINGUP_TIMEOUT_MS=300000  (defaults)
 *   BENCH_BRINGUP_STORE=postgres  the gateway on a throwaway PostgreSQL (the shared store of several
 *     gateways; a fresh server for each figure) instead of SQLite; merged as `bringUpPostgres`
 *   BENCH_BRINGUP_GATEWAYS=2  with postgres: that many gateways on the one database (in one process),
 *     the agents spread over them in turn; merged as `bringUpPostgres2Gateways`
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { next, sleep, start } from "./processes"
// @ts-expect-error -- a plain .mjs script without types
import { startPostgres } from "../../../scripts/throwaway-postgres.mjs"

const PEER_COUNTS = (process.env.BENCH_BRINGUP_PEERS ?? "250,500,1000").split(",").map(Number)
const TIMEOUT_MS = Number(process.env.BENCH_BRINGUP_TIMEOUT_MS ?? 300_000)
const STORE: "sqlite" | "postgres" = process.env.BENCH_BRINGUP_STORE === "postgres" ? "postgres" : "sqlite"
const GATEWAYS = STORE === "postgres" ? Number(process.env.BENCH_BRINGUP_GATEWAYS ?? 1) : 1

export interface BringUpFigure {
  readonly mode: "gateway" | "baseline"
  /** Where the gateway keeps its state (the baseline keeps none). */
  readonly store: "sqlite" | "postgres"
  /** Gateways on that store, in one process, the agents spread over them. */
  readonly gateways: number
  readonly peers: number
  readonly completed: boolean
  readonly seconds: number
  readonly configured: number
  readonly megabytes: number
  readonly wireguardMegabytes: number
  readonly wireguardPushes: number
  /** Each agent's final config once: what "every peer gets every other peer" cannot go below. */
  readonly minimumMegabytes: number
  readonly dropped: number
  /** Deltas that did not start at an agent's version (each costs a full resend). */
  readonly outOfStep: number
  readonly peakRssMb: number
  /** Before any agent connected, and after the configured network rested (the moment the joiner connects): does memory come back? */
  readonly rssBeforeMb: number
  readonly rssRestedMb: number | null
  readonly restedSeconds: number
  /** With the sessions still open, 30 s after the one-peer join's fan-out reached everyone (compare with `rssRestedMb`, just before it). */
  readonly rssAfterJoinMb: number | null
  readonly cpuSeconds: number | null
  readonly lagP50Ms: number
  readonly lagP99Ms: number
  readonly lagMaxMs: number
  /** The server process's own event-loop delay from the first connect until the joiner is everywhere. */
  readonly serverLoopP99Ms: number
  readonly serverLoopMaxMs: number
  /** Then one more peer joins (fresh key and endpoint): until every other peer lists it. */
  readonly join: { readonly seconds: number; readonly megabytes: number; readonly lagP99Ms: number; readonly lagMaxMs: number } | null
}

interface Outcome {
  readonly type: "done" | "timeout"
  readonly ms: number
  readonly configuredAt: number
  readonly settleMs: number
  readonly configured: number
  readonly bytes: number
  readonly wireguardBytes: number
  readonly wireguardPushes: number
  readonly dropped: number
  readonly fullSetBytes: number
  readonly outOfStep: number
  readonly lagP50Ms: number
  readonly lagP99Ms: number
  readonly lagMaxMs: number
  readonly join: { readonly ms: number; readonly bytes: number; readonly lagP99Ms: number; readonly lagMaxMs: number } | null
}

/** Memory is read again this long after the join reached every peer (the #20 target: back within 30 s). */
const AFTER_JOIN_MS = 30_000

const measure = async (mode: BringUpFigure["mode"], peers: number): Promise<BringUpFigure> => {
  const dir = mkdtempSync(join(tmpdir(), "fleetplane-bring-up-"))
  const postgres = mode === "gateway" && STORE === "postgres" ? ((await startPostgres()) as { url: string; stop: () => void }) : undefined
  const server = start("bring-up-server.ts", [mode, String(peers), dir, ...(postgres === undefined ? [] : [postgres.url])])
  try {
    const ready = await next<{ url: string; agents: string }>(server, "ready", 600_000)
    let peakRss = 0
    const rssSamples: Array<{ at: number; rss: number }> = []
    let cpuAtStart: { user: number; system: number } | undefined
    let cpuAtEnd: { user: number; system: number } | undefined
    const sample = async () => {
      const stats = await next<{ rss: number; cpu?: { user: number; system: number } }>(server, "stats", 30_000).catch(() => undefined)
      if (stats !== undefined) {
        peakRss = Math.max(peakRss, stats.rss)
        rssSamples.push({ at: Date.now(), rss: stats.rss })
        cpuAtStart ??= stats.cpu
        cpuAtEnd = stats.cpu
      }
    }
    server.send({ type: "stats" })
    await sample()
    server.send({ type: "loop-reset" })
    const agents = start("bring-up-agents.ts", [ready.url, ready.agents, String(TIMEOUT_MS)])
    // The agents answer `done`, or `timeout` after TIMEOUT_MS.
    const outcome = new Promise<Outcome>((resolve, reject) => {
      agents.on("message", (message: Outcome) => (message.type === "done" || message.type === "timeout" ? resolve(message) : undefined))
      agents.on("exit", (code) => (code !== 0 && code !== null ? reject(new Error(`the bring-up agents exited with ${code}`)) : undefined))
    })
    let finished = false
    void outcome.finally(() => (finished = true))
    while (!finished) {
      await sleep(500)
      server.send({ type: "stats" })
      await sample()
    }
    const result = await outcome
    server.send({ type: "loop" })
    const loop = await next<{ p99Ms: number; maxMs: number }>(server, "loop", 30_000)
    // Sessions still open: where memory settles 30 s after the join's fan-out.
    let rssAfterJoin: number | null = null
    if (result.join !== null) {
      await sleep(AFTER_JOIN_MS)
      server.send({ type: "stats" })
      await sample()
      rssAfterJoin = rssSamples.at(-1)!.rss
    }
    agents.kill("SIGKILL")
    return {
      mode,
      store: STORE,
      gateways: mode === "gateway" ? GATEWAYS : 1,
      peers,
      completed: result.type === "done",
      seconds: result.ms / 1000,
      configured: result.configured,
      megabytes: result.bytes / 2 ** 20,
      wireguardMegabytes: result.wireguardBytes / 2 ** 20,
      wireguardPushes: result.wireguardPushes,
      minimumMegabytes: (result.fullSetBytes * peers) / 2 ** 20,
      outOfStep: result.outOfStep,
      dropped: result.dropped,
      peakRssMb: peakRss / 2 ** 20,
      rssBeforeMb: (rssSamples[0]?.rss ?? 0) / 2 ** 20,
      rssRestedMb: (() => {
        // The last sample before the joiner connected, the rest after the last agent was configured.
        const rested = rssSamples.filter((s) => result.configuredAt > 0 && s.at <= result.configuredAt + result.settleMs).at(-1)
        return rested === undefined ? null : rested.rss / 2 ** 20
      })(),
      restedSeconds: result.settleMs / 1000,
      rssAfterJoinMb: rssAfterJoin === null ? null : rssAfterJoin / 2 ** 20,
      cpuSeconds: cpuAtStart === undefined || cpuAtEnd === undefined ? null : (cpuAtEnd.user + cpuAtEnd.system - cpuAtStart.user - cpuAtStart.system) / 1e6,
      lagP50Ms: result.lagP50Ms,
      lagP99Ms: result.lagP99Ms,
      lagMaxMs: result.lagMaxMs,
      serverLoopP99Ms: loop.p99Ms,
      serverLoopMaxMs: loop.maxMs,
      join: result.join === null ? null : { seconds: result.join.ms / 1000, megabytes: result.join.bytes / 2 ** 20, lagP99Ms: result.join.lagP99Ms, lagMaxMs: result.join.lagMaxMs }
    }
  } finally {
    server.kill("SIGKILL")
    postgres?.stop()
  }
}

export const measureBringUp = async (): Promise<Array<BringUpFigure>> => {
  const figures: Array<BringUpFigure> = []
  for (const peers of PEER_COUNTS) {
    // BENCH_BRINGUP_MODES=gateway: the gateway alone (the baseline does not depend on the store).
    for (const mode of (process.env.BENCH_BRINGUP_MODES ?? "baseline,gateway").split(",") as Array<BringUpFigure["mode"]>) {
      const f = await measure(mode, peers)
      console.log(
        `bring-up, ${peers} peers, ${mode}${mode === "gateway" ? `${GATEWAYS > 1 ? ` x${GATEWAYS}` : ""} on ${STORE === "postgres" ? "PostgreSQL" : "SQLite"}` : ""}: ${f.completed ? "all configured" : `TIMED OUT (${f.configured} configured)`} in ${f.seconds.toFixed(1)} s, ` +
          `${f.megabytes.toFixed(1)} MB received (WireGuard ${f.wireguardMegabytes.toFixed(1)} MB in ${f.wireguardPushes} pushes; minimum ${f.minimumMegabytes.toFixed(1)} MB), ` +
          `${f.dropped} dropped, ${f.outOfStep} out of step, RSS ${f.rssBeforeMb.toFixed(0)} MB before, peak ${f.peakRssMb.toFixed(0)} MB, ${f.rssRestedMb === null ? "n/a" : f.rssRestedMb.toFixed(0)} MB ${f.restedSeconds} s after, ${f.rssAfterJoinMb === null ? "n/a" : f.rssAfterJoinMb.toFixed(0)} MB ${AFTER_JOIN_MS / 1000} s after the join${f.cpuSeconds === null ? "" : `, ${f.cpuSeconds.toFixed(1)} CPU-s`}, canary lag p50 ${f.lagP50Ms} ms p99 ${f.lagP99Ms} ms max ${f.lagMaxMs} ms, server loop delay p99 ${f.serverLoopP99Ms.toFixed(0)} ms max ${f.serverLoopMaxMs.toFixed(0)} ms; ` +
          (f.join === null ? "the late joiner was not listed by everyone" : `then one peer joining: every other peer has it after ${f.join.seconds.toFixed(2)} s, ${f.join.megabytes.toFixed(1)} MB sent, canary p99 ${f.join.lagP99Ms} ms max ${f.join.lagMaxMs} ms`)
      )
      figures.push(f)
    }
  }
  return figures
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bringUp = await measureBringUp()
  const file = new URL("../bench-results.json", import.meta.url)
  const results = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {}
  writeFileSync(file, JSON.stringify({ ...results, [STORE === "postgres" ? (GATEWAYS > 1 ? `bringUpPostgres${GATEWAYS}Gateways` : "bringUpPostgres") : "bringUp"]: bringUp }, null, 2))
}
