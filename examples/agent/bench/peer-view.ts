/**
 * R26 on real interfaces (the lab of lab/runbook-lab.ts: wireguard-go in network namespaces,
 * the reference agent in its real mode, the `automatic` policy, three servers and two workers),
 * with the peers' view on and off (`vipProbeReporters: 0`, the behaviour before R26) in the
 * same run:
 *
 * - false failovers: 30% packet loss (nftables, both directions) on the VIP holder's link to
 *   the gateway for BENCH_PEERVIEW_LOSS_MS (10 minutes). The loss follows the VIP: when it
 *   moves, the new holder's link is the lossy one. The holder stays up the whole time, so every
 *   promotion is a false failover. Both labs run side by side, so they share the machine's load.
 *   A worker asks the VIP who answers every second: the failed asks are the VIP's downtime.
 * - a hung API server: the holder's k3s stand-in stopped (SIGSTOP: the process is there, the
 *   kernel accepts connections, nothing answers) while its agent heartbeats; the time to
 *   `sdwan.vip_unreachable` and to the VIP answering from every other node. With the peers'
 *   view off nothing notices; the trial gives up after BENCH_PEERVIEW_HANG_BOUND_MS.
 *
 * Settings: heartbeats every 500 ms, silence after 1.5 s, probes every 1 s. A canary measures
 * event-loop lag in this process (it hosts both gateways). Merges `peerView` into bench-results.json.
 *
 *   BENCH_PEERVIEW_LOSS_MS=600000  BENCH_PEERVIEW_HANGS=5  BENCH_PEERVIEW_HANG_BOUND_MS=20000  (defaults)
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { eventually, startRunbookLab, type RunbookLab } from "../lab/runbook-lab"
import { requireNetworkLab } from "../lab/network-lab"

const LOSS_MS = Number(process.env.BENCH_PEERVIEW_LOSS_MS ?? 600_000)
const LOSS_PERCENT = 30
const HANGS = Number(process.env.BENCH_PEERVIEW_HANGS ?? 5)
const HANG_BOUND_MS = Number(process.env.BENCH_PEERVIEW_HANG_BOUND_MS ?? 20_000)
const TIMING = { heartbeatIntervalMs: 500, silenceThresholdMs: 1_500, vipProbeIntervalMs: 1_000 }

const log = (line: string) => process.stderr.write(`[peer-view] ${line}\n`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

export interface LossFigure {
  readonly mode: "peer view" | "heartbeats only"
  readonly minutes: number
  readonly lossPercent: number
  /** Promotions while the holder was up: every one is false. */
  readonly falseFailovers: number
  readonly silentEvents: number
  readonly gatewayUnreachableEvents: number
  /** Seconds in which a worker's ask of the VIP got no answer. */
  readonly vipDownSeconds: number
  readonly asks: number
}

export interface HangFigure {
  readonly mode: "peer view" | "heartbeats only"
  readonly trials: number
  /** Trials in which the VIP moved within the bound. */
  readonly recovered: number
  readonly detectedMs: ReadonlyArray<number>
  readonly answeringMs: ReadonlyArray<number>
  readonly detectedP50Ms: number | null
  readonly answeringP50Ms: number | null
  readonly answeringMaxMs: number | null
  readonly boundMs: number
}

const lastSeq = async (runbook: RunbookLab) => {
  let seq = 0
  for (;;) {
    const page = (await runbook.ops.actions.system_list_events({ since: seq, limit: 1000 })).events
    if (page.length === 0) return seq
    seq = page.at(-1)!.seq
  }
}
const eventsSince = async (runbook: RunbookLab, since: number) => {
  const all = []
  let seq = since
  for (;;) {
    const page = (await runbook.ops.actions.system_list_events({ since: seq, limit: 1000 })).events
    if (page.length === 0) return all
    all.push(...page)
    seq = page.at(-1)!.seq
  }
}

const holderOf = async (runbook: RunbookLab) => {
  const observer = runbook.clusterMembers("k3s-prod-worker")[0]!
  const name = await eventually(() => runbook.vipAnswer(observer, runbook.prod.vip, 1_000), "the VIP answering", 60_000)
  return runbook.members.get(name)!
}

const measureLoss = async (runbook: RunbookLab, mode: LossFigure["mode"]): Promise<LossFigure> => {
  const since = await lastSeq(runbook)
  const observer = runbook.clusterMembers("k3s-prod-worker")[0]!
  let lossy = await holderOf(runbook)
  await runbook.lab.dropPackets(lossy.node, runbook.lab.hostAddress, LOSS_PERCENT)
  let asks = 0
  let down = 0
  const until = Date.now() + LOSS_MS
  try {
    while (Date.now() < until) {
      const started = Date.now()
      const answer = await runbook.vipAnswer(observer, runbook.prod.vip, 900)
      asks++
      if (answer === undefined) down++
      else if (answer !== lossy.node.name) {
        // The VIP moved: the loss follows it to the new holder.
        await runbook.lab.stopDropping(lossy.node)
        lossy = runbook.members.get(answer)!
        await runbook.lab.dropPackets(lossy.node, runbook.lab.hostAddress, LOSS_PERCENT)
      }
      await sleep(Math.max(0, 1_000 - (Date.now() - started)))
    }
  } finally {
    await runbook.lab.stopDropping(lossy.node)
  }
  const events = await eventsSince(runbook, since)
  const count = (type: string) => events.filter((e) => e.type === type).length
  const figure: LossFigure = {
    mode,
    minutes: LOSS_MS / 60_000,
    lossPercent: LOSS_PERCENT,
    falseFailovers: count("sdwan.vip_failover_promoted"),
    silentEvents: count("sdwan.vip_holder_silent"),
    gatewayUnreachableEvents: count("sdwan.vip_holder_gateway_unreachable"),
    vipDownSeconds: down,
    asks
  }
  log(`${mode}: ${JSON.stringify(figure)}`)
  return figure
}

/** Until every other node hears the same holder, not `hung`, on the API port; ms from `since`. */
const untilMoved = async (runbook: RunbookLab, hung: string, since: number) => {
  const observers = runbook.clusterMembers("k3s-prod").filter((m) => m.node.name !== hung)
  while (performance.now() - since < HANG_BOUND_MS) {
    const answers = await Promise.all(observers.map((m) => runbook.vipAnswer(m, runbook.prod.vip, 300)))
    if (answers[0] !== undefined && answers[0] !== hung && answers.every((a) => a === answers[0])) return performance.now() - since
    await sleep(50)
  }
  return undefined
}

const measureHangs = async (runbook: RunbookLab, mode: HangFigure["mode"], trials: number): Promise<HangFigure> => {
  const detected: Array<number> = []
  const answering: Array<number> = []
  for (let trial = 1; trial <= trials; trial++) {
    const holder = await holderOf(runbook)
    const since = await lastSeq(runbook)
    const pid = readFileSync(join(holder.node.root, "run", "k3s-stand-in.pid"), "utf8").trim()
    const hungAt = performance.now()
    const hungAtWall = Date.now()
    await holder.node.exec(["kill", "-STOP", pid])
    let moved: number | undefined
    try {
      moved = await untilMoved(runbook, holder.node.name, hungAt)
    } finally {
      await holder.node.exec(["kill", "-CONT", pid])
    }
    const event = (await eventsSince(runbook, since)).find((e) => e.type === "sdwan.vip_unreachable")
    if (event !== undefined) detected.push(Date.parse(event.at) - hungAtWall)
    if (moved !== undefined) answering.push(moved)
    log(`${mode} hang ${trial}/${trials} on ${holder.node.name}: ${moved === undefined ? `not moved within ${HANG_BOUND_MS} ms` : `moved after ${Math.round(moved)} ms`}${event === undefined ? "" : `, sdwan.vip_unreachable after ${Date.parse(event.at) - hungAtWall} ms`}`)
    // Settle: the released holder's API server answers again before the next trial.
    await sleep(3_000)
  }
  return {
    mode,
    trials,
    recovered: answering.length,
    detectedMs: detected,
    answeringMs: answering.map(Math.round),
    detectedP50Ms: percentile(detected, 50),
    answeringP50Ms: percentile(answering, 50),
    answeringMaxMs: answering.length === 0 ? null : Math.round(Math.max(...answering)),
    boundMs: HANG_BOUND_MS
  }
}

requireNetworkLab()
const lag = monitorEventLoopDelay({ resolution: 10 })
log("bringing up two labs: the peers' view on, and off")
const withView = await startRunbookLab({ ...TIMING, staging: false, labId: `${process.pid % 10000}` })
const without = await startRunbookLab({ ...TIMING, staging: false, labId: `${(process.pid + 2) % 10000}`, vipProbeReporters: 0 })
let loss: Array<LossFigure> = []
let hangs: Array<HangFigure> = []
try {
  lag.enable()
  log(`${LOSS_PERCENT}% loss on the holder's gateway link for ${LOSS_MS / 1000} s, both labs at once`)
  loss = await Promise.all([measureLoss(withView, "peer view"), measureLoss(without, "heartbeats only")])
  lag.disable()
  hangs = [await measureHangs(withView, "peer view", HANGS), await measureHangs(without, "heartbeats only", Math.min(HANGS, 2))]
} finally {
  await withView.close()
  await without.close()
}

const file = new URL("../bench-results.json", import.meta.url)
const existing = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {}
writeFileSync(file, JSON.stringify({ ...existing, peerView: { timing: TIMING, loopLagP99Ms: lag.percentile(99) / 1e6, loss, hangs } }, null, 2) + "\n")
process.exit(0)
