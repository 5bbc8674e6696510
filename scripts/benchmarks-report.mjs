#!/usr/bin/env node
// Collects every package's bench-results.json into BENCHMARKS-latest.md (a table per area, each
// figure beside its same-run baseline and SPEC §9 target) and benchmarks.json (the raw results).
// BENCHMARKS.md is the curated record (dated sections, what was tried, the limits found): a run
// never rewrites it; what a run shows is carried there by hand, with its date and command.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { cpus, totalmem } from "node:os"
import { join } from "node:path"

const root = join(import.meta.dirname, "..")
const read = (pkg) => {
  const file = join(root, "packages", pkg, "bench-results.json")
  return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : undefined
}
/** A section: its introduction, then a table (header cells, alignment cells, one cell list per row). */
const section = (intro, header, align, rows) => ["", intro, "", `| ${header.join(" | ")} |`, `| ${align.join(" | ")} |`, ...rows.map((cells) => `| ${cells.join(" | ")} |`)]
const fmt = (value, digits = 1) => (typeof value === "number" && Number.isFinite(value) ? value.toLocaleString("en-US", { maximumFractionDigits: digits }) : "n/a")

const raw = {}
for (const pkg of readdirSync(join(root, "packages"))) {
  const results = read(pkg)
  if (results !== undefined) raw[pkg] = results
}
// The data-plane benchmark lives beside the reference agent (it drives real nodes).
const agentResults = join(root, "examples", "agent", "bench-results.json")
if (existsSync(agentResults)) raw.agent = JSON.parse(readFileSync(agentResults, "utf8"))

const lines = [
  "# Benchmarks: the latest run",
  "",
  "Written by `npm run bench` (scripts/benchmarks-report.mjs); the record of what was measured when, what was tried and the limits found is BENCHMARKS.md.",
  "",
  `Measured by \`pnpm bench\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model ?? "unknown CPU"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}.`,
  "Every figure stands beside a baseline measured in the same run. Raw results: `benchmarks.json`.",
  ""
]

const gateway = raw.gateway
if (gateway !== undefined) {
  lines.push("## Agent sessions (gateway vs a bare `ws` server that only decodes frames)", "", "Each agent heartbeats every 5 s; load generator, gateway and baseline are separate processes on 127.0.0.1.", "")
  lines.push("| sessions | server | time to connect all | CPU (% of one core) | RSS | RSS per session | retained heap per session | RSS per session after a compacting collection | heartbeats/s |", "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
  const kb = (bytes) => (bytes === null || bytes === undefined ? "n/a" : `${fmt(bytes / 1024)} KB`)
  for (const s of gateway.sessions ?? []) {
    lines.push(`| ${fmt(s.sessions, 0)} | ${s.mode} | ${fmt(s.connectMs / 1000)} s | ${fmt(s.cpuPercent)} | ${fmt(s.rssMb, 0)} MB | ${kb(s.bytesPerSession)} | ${kb(s.retainedBytesPerSession)} | ${kb(s.retainedRssPerSession)} | ${fmt(s.heartbeatsPerSecond, 0)} |`)
  }
  lines.push("", "RSS per session: RSS growth over the idle server while heartbeating (garbage and pages V8 keeps included); the last two after a compacting full collection, RSS once it settles. Target (#20): at most 1.5x the baseline's at 10,000 sessions.")
  const byMode = (mode) => (gateway.ingest ?? []).find((i) => i.mode === mode)?.heartbeatsPerSecond
  lines.push("", `**Heartbeat ingest, flood** (200 sockets sending as fast as they can; throughput with no latency bound): gateway ${fmt(byMode("gateway"), 0)}/s, baseline ${fmt(byMode("baseline"), 0)}/s (ratio ${fmt(byMode("gateway") / byMode("baseline"), 2)}). When the two are equal, the limit is the load generator sharing the same cores, not the server.`)
  if (gateway.silence !== undefined) {
    const s = gateway.silence
    lines.push("", `**Silence detection** with ${fmt(s.sessions, 0)} sessions connected, ${s.holders} VIP holders silenced: p50 ${fmt(s.p50Ms, 0)} ms, p99 ${fmt(s.p99Ms, 0)} ms after the ${fmt(s.thresholdMs, 0)} ms threshold — target p99 ≤ 250 ms: **${s.p99Ms <= 250 ? "met" : "missed"}**${s.missed > 0 ? `; ${s.missed} not detected` : ""}.`)
  }
  if (gateway.reconnect !== undefined) {
    const r = gateway.reconnect
    lines.push(
      "",
      `**Reconnect storm**: after a graceful restart of the gateway (same database and port), all ${fmt(r.sessions, 0)} agents were back and resumed ${fmt(r.allBackMs / 1000)} s after the old gateway said \`1001 going away\` (the new one took ${fmt(r.gatewayStartMs / 1000)} s to start; agents back off with full jitter up to 10 s, ${fmt(r.attempts, 0)} attempts in all); peak gateway RSS ${fmt(r.peakRssMb, 0)} MB.`
    )
  }
  // SQLite figures, then PostgreSQL ones (`BENCH_BRINGUP_STORE=postgres`), then two gateways on it (`pnpm bench:bring-up:gateways`), when those runs were made.
  const bringUps = [gateway.bringUp, gateway.bringUpPostgres, gateway.bringUpPostgres2Gateways].flatMap((figures) => (Array.isArray(figures) ? figures : []))
  if (bringUps.length > 0) {
    const rss = (b) => `${fmt(b.rssBeforeMb, 0)} / ${fmt(b.peakRssMb, 0)} / ${b.rssRestedMb == null ? "n/a" : fmt(b.rssRestedMb, 0)} / ${b.rssAfterJoinMb == null ? "n/a" : fmt(b.rssAfterJoinMb, 0)} MB`
    lines.push(
      ...section(
        "**First bring-up with fresh endpoints** (#20, `pnpm bench:bring-up`): N agents connect for the first time, each with a new WireGuard key and its own endpoint, to a gateway whose network has them attached; from the first connect until every agent holds a peer set listing all N-1 others (pushes are peer-set deltas; the bench agents apply them). Minimum bytes: each agent's complete peer set once, as one full push. A canary agent pings the server every 100 ms (it shares the agents' process); the server's own event-loop delay is measured inside it. RSS before any agent connected, at its peak, and after the configured network rested. Then **one more peer joins**: until every other peer lists it. Baseline, same run: a bare `ws` server sending each agent the full set once, when all are connected, and each one the joiner's entry alone.",
        ["peers", "server", "all configured", "received", "WireGuard pushes", "minimum", "out of step", "dropped", "RSS before / peak / rested / 30 s after the join", "CPU", "canary lag p50 / p99 / max", "server loop delay p99 / max", "one peer joining: all have it", "its bytes"],
        ["---:", "---", ...Array(12).fill("---:")],
        bringUps.map((b) => [
          fmt(b.peers, 0),
          b.mode === "gateway" ? `${(b.gateways ?? 1) > 1 ? `${b.gateways} gateways` : "gateway"} (${b.store === "postgres" ? "PostgreSQL" : "SQLite"})` : b.mode,
          b.completed ? `${fmt(b.seconds)} s` : `not within ${fmt(b.seconds, 0)} s (${fmt(b.configured, 0)} configured)`,
          `${fmt(b.megabytes)} MB`,
          `${fmt(b.wireguardPushes, 0)} (${fmt(b.wireguardMegabytes)} MB)`,
          `${fmt(b.minimumMegabytes)} MB`,
          fmt(b.outOfStep, 0),
          fmt(b.dropped, 0),
          rss(b),
          b.cpuSeconds === null ? "n/a" : `${fmt(b.cpuSeconds)} s`,
          `${fmt(b.lagP50Ms, 0)} / ${fmt(b.lagP99Ms, 0)} / ${fmt(b.lagMaxMs, 0)} ms`,
          b.serverLoopP99Ms === undefined ? "n/a" : `${fmt(b.serverLoopP99Ms, 0)} / ${fmt(b.serverLoopMaxMs, 0)} ms`,
          b.join ? `${fmt(b.join.seconds, 2)} s` : "n/a",
          b.join ? `${fmt(b.join.megabytes)} MB` : ""
        ])
      )
    )
    lines.push("", "Targets (#20): 1,000 agents configured within 10 s, bytes within 3x the minimum, no session dropped, growth no faster than peers²; RSS back within 20% of its pre-fan-out level within 30 s.")
  }
  if (Array.isArray(gateway.largeJoin) && gateway.largeJoin.length > 0) {
    lines.push(
      ...section(
        "**One peer joining a large network** (#20, `pnpm bench:join`): N agents hold the network's peer set (resumed sessions); one more peer connects for the first time with a fresh key and endpoint; until every other peer holds its entry. A canary in the orchestrator's own process pings every 20 ms over at least 3 s from the joiner's hello (from 2026-12-04; every 100 ms before), and a second joiner connects as soon as every peer has the first. Baseline: a bare `ws` server sending each agent the joiner's entry alone. Independent trials, a fresh server each.",
        ["peers", "server", "trial", "every other peer has it", "bytes to the N agents", "canary lag p99 / max", "out of step", "dropped"],
        ["---:", "---", ...Array(6).fill("---:")],
        gateway.largeJoin.map((j) => [
          fmt(j.peers, 0),
          j.mode,
          j.trial,
          j.completed ? `${fmt(j.seconds, 2)} s` : "timed out",
          `${fmt(j.megabytes, 2)} MB`,
          `${fmt(j.lagP99Ms, 0)} / ${fmt(j.lagMaxMs, 0)} ms`,
          fmt(j.outOfStep, 0),
          fmt(j.dropped, 0)
        ])
      )
    )
    lines.push("", "Targets (#20): joining a 10,000-peer network in every other peer within 2 s; a 1,000-peer network within 1 s with canary p99 under 50 ms.")
  }
  if (Array.isArray(gateway.ingestAtLag) && gateway.ingestAtLag.length > 0) {
    lines.push(
      ...section(
        "**Heartbeat ingest at a latency bound** (#20, `pnpm bench:ingest`): sessions connected, heartbeats at fixed rates spread over 10 ms ticks, a canary in the orchestrator's process pinging every 20 ms.",
        ["server", "offered / s", "ingested / s", "canary p50 / p99", "server CPU per heartbeat"],
        ["---", ...Array(4).fill("---:")],
        gateway.ingestAtLag.map((i) => [
          i.mode,
          fmt(i.offeredPerSecond, 0),
          fmt(i.ingestedPerSecond, 0),
          `${fmt(i.lagP50Ms)} / ${fmt(i.lagP99Ms)} ms`,
          i.cpuMicrosPerHeartbeat === undefined ? "-" : `${fmt(i.cpuMicrosPerHeartbeat, 1)} µs`
        ])
      )
    )
    const sustained = (mode) => {
      const steps = gateway.ingestAtLag.filter((i) => i.mode === mode)
      const over = steps.findIndex((i) => i.lagP99Ms > 10)
      return (over === -1 ? steps : steps.slice(0, over)).at(-1)?.ingestedPerSecond ?? 0
    }
    lines.push("", `Every rate up to ${fmt(sustained("gateway"), 0)}/s (gateway) and ${fmt(sustained("baseline"), 0)}/s (baseline) kept the canary's p99 within 10 ms. Target (#20): at least half the baseline's rate — **${sustained("gateway") >= sustained("baseline") / 2 ? "met" : "missed"}**.`)
  }
  if (gateway.silenceTrials !== undefined) {
    const t = gateway.silenceTrials
    lines.push("", `**Silence detection over independent trials** (\`pnpm bench:silence\`): ${fmt(t.sessions, 0)} sessions, ${t.trials} VIP holders silenced at random moments; after the ${fmt(t.thresholdMs, 0)} ms threshold p50 ${fmt(t.p50Ms, 0)} ms, p99 ${fmt(t.p99Ms, 0)} ms, max ${fmt(t.maxMs, 0)} ms; ${t.missed} missed — target p99 ≤ 250 ms: **${t.p99Ms <= 250 && t.missed === 0 ? "met" : "missed"}**.`)
  }
  if (Array.isArray(gateway.adminThroughput) && gateway.adminThroughput.length === 2) {
    const [bare, gw] = [gateway.adminThroughput.find((a) => a.server === "baseline"), gateway.adminThroughput.find((a) => a.server === "gateway")]
    const trials = Array.isArray(gateway.adminThroughputTrials) ? gateway.adminThroughputTrials : []
    const trialRatios = trials.length > 1 ? ` (the median of ${trials.length} trials: ${trials.map((t) => fmt(t.ratio, 2)).join(", ")})` : ""
    lines.push(
      "",
      `**Admin API throughput with agents connected** (\`pnpm bench:admin\`): \`kubernetes_list_clusters\` (${gw.clusters} clusters), 16 keep-alive clients: gateway ${fmt(gw.requestsPerSecond, 0)}/s (p50 ${fmt(gw.p50Ms)} ms, p99 ${fmt(gw.p99Ms)} ms), baseline (bare \`node:http\` + better-sqlite3 on the same database) ${fmt(bare.requestsPerSecond, 0)}/s — ratio ${fmt(gw.requestsPerSecond / bare.requestsPerSecond, 2)}${trialRatios}; target at least 0.25: **${gw.requestsPerSecond / bare.requestsPerSecond >= 0.25 ? "met" : "missed"}**.`
    )
  }
  const convergence = gateway.convergence ?? []
  const converged = convergence.find((c) => c.mode === "gateway" && c.store !== "postgres")
  const onPostgres = convergence.find((c) => c.mode === "gateway" && c.store === "postgres")
  const floor = convergence.find((c) => c.mode === "baseline")
  if (converged !== undefined) {
    lines.push(
      "",
      `**Failover convergence** on a ${fmt(converged.peers, 0)}-peer network, ${converged.failovers} manual failovers: from the confirmed decision to the last peer's ack of its new WireGuard config (the \`vip_routes\` push that moves the VIP /128) p50 ${fmt(converged.p50Ms, 0)} ms, p99 ${fmt(converged.p99Ms, 0)} ms — target < 2,000 ms: **${converged.p99Ms < 2_000 && converged.timedOut === 0 ? "met" : "missed"}**. The promotion itself commits after p50 ${fmt(converged.decisionP50Ms, 0)} ms. Baseline: a bare \`ws\` server sending every agent one message of the same size and hearing every ack, p50 ${fmt(floor?.p50Ms, 0)} ms, p99 ${fmt(floor?.p99Ms, 0)} ms (ratio ${fmt(converged.p50Ms / (floor?.p50Ms ?? Number.NaN), 1)}). Setup, not measured: ${fmt(converged.peers, 0)} peers attached in one transaction and their configs rendered once (${fmt(converged.setupMs / 1000)} s); agents connected and received their full configs in ${fmt(converged.connectMs / 1000)} s.`
    )
  }
  if (onPostgres !== undefined) {
    lines.push(
      "",
      `**The same on PostgreSQL** (a local throwaway server, as several gateways would share): p50 ${fmt(onPostgres.p50Ms, 0)} ms, p99 ${fmt(onPostgres.p99Ms, 0)} ms — target < 2,000 ms: **${onPostgres.p99Ms < 2_000 && onPostgres.timedOut === 0 ? "met" : "missed"}**; the promotion commits after p50 ${fmt(onPostgres.decisionP50Ms, 0)} ms. Every statement is a round trip here (the promotion writes each peer's VIP routes, each ack is a transaction), where SQLite is a function call.`
    )
  }
  lines.push("")
}

const agent = raw.agent
if (agent !== undefined) {
  lines.push(
    "## Data-plane failover (real WireGuard interfaces)",
    "",
    "From the VIP holder's death (its agent killed and its WireGuard interface deleted) to the VIP answering on its API port from every other node of the cluster (times from the death; the silence and promotion columns place the gateway's decision within it): wireguard-go in network namespaces on this machine, the reference agent in its real mode on every node, the `automatic` policy, three servers and two workers. Independent trials: each kills the current holder, then brings it back as a candidate. The floor is the same VIP move done directly (`ip` and `wg set` the moment the holder dies: no detection, no gateway) in a lab of the same shape. Target: p99 within the silence threshold + 1 s.",
    "",
    "| setting | heartbeat / threshold | failovers | p50 | p99 | max | target (threshold + 1 s) | silence declared (p50 / p99) | promoted (p50 / p99) | gateway event-loop lag p99 |",
    "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"
  )
  for (const f of agent.dataPlane) {
    const target = f.silenceThresholdMs === null ? "" : `${fmt((f.silenceThresholdMs + 1000) / 1000)} s: **${f.p99Ms <= f.silenceThresholdMs + 1000 && f.timedOut === 0 ? "met" : "missed"}**`
    const timing = f.heartbeatIntervalMs === null ? "— (floor)" : `${fmt(f.heartbeatIntervalMs / 1000)} s / ${fmt(f.silenceThresholdMs / 1000)} s`
    const phase = (p50, p99) => (p50 === undefined ? "" : `${fmt(p50, 0)} / ${fmt(p99, 0)} ms`)
    lines.push(
      `| ${f.setting} | ${timing} | ${f.failovers}${f.timedOut > 0 ? ` (+${f.timedOut} timed out)` : ""} | ${fmt(f.p50Ms, 0)} ms | ${fmt(f.p99Ms, 0)} ms | ${fmt(f.maxMs, 0)} ms | ${target} | ${phase(f.detectedP50Ms, f.detectedP99Ms)} | ${phase(f.promotedP50Ms, f.promotedP99Ms)} | ${f.loopLagP99Ms === null ? "" : `${fmt(f.loopLagP99Ms)} ms`} |`
    )
  }
  lines.push("", "Documented, not measured here, at their defaults:", "")
  for (const d of agent.documented) lines.push(`- ${d.name}: about ${fmt(d.failoverMs / 1000)} s (${d.source}).`)
  lines.push("")
}

// R26: the peers' view of the VIP, on and off in the same run (examples/agent/bench/peer-view.ts).
const peerView = agent?.peerView
if (peerView !== undefined) {
  const t = peerView.timing
  lines.push(
    "## Failover decided with the peers' view (R26, real WireGuard interfaces)",
    "",
    `The same lab, two of it side by side: one with the peers' view (reporters probe the VIP every ${fmt(t.vipProbeIntervalMs / 1000)} s and report in their heartbeats), one with \`vipProbeReporters: 0\` (the behaviour before R26). Heartbeats every ${fmt(t.heartbeatIntervalMs / 1000)} s, silence after ${fmt(t.silenceThresholdMs / 1000)} s, the \`automatic\` policy.`,
    "",
    `**Packet loss on the holder's link to the gateway** (nftables, both directions; the loss follows the VIP when it moves; the holder never goes down, so every promotion is false; a worker asks the VIP who answers once a second). Event-loop lag p99 of the process hosting both gateways: ${fmt(peerView.loopLagP99Ms)} ms.`,
    "",
    "| decided by | minutes | loss | false failovers (target 0) | holder declared silent | gateway link only (no failover) | seconds the VIP did not answer |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  )
  for (const l of peerView.loss) {
    lines.push(`| ${l.mode} | ${fmt(l.minutes)} | ${l.lossPercent}% | ${l.falseFailovers}${l.mode === "peer view" ? ` (**${l.falseFailovers === 0 ? "met" : "missed"}**)` : ""} | ${l.silentEvents} | ${l.gatewayUnreachableEvents} | ${l.vipDownSeconds} of ${l.asks} |`)
  }
  lines.push(
    "",
    "**A hung API server** (the holder's k3s stand-in stopped with SIGSTOP: its process and `systemctl is-active` are fine, the kernel accepts connections, nothing answers; its agent heartbeats on). Independent trials, each on the current holder:",
    "",
    "| decided by | trials | VIP moved | `sdwan.vip_unreachable` after (p50) | VIP answering from every other node after (p50 / max) |",
    "| --- | ---: | ---: | ---: | ---: |"
  )
  for (const h of peerView.hangs) {
    const moved = h.recovered === 0 ? `never within ${fmt(h.boundMs / 1000)} s` : `${fmt(h.answeringP50Ms, 0)} / ${fmt(h.answeringMaxMs, 0)} ms`
    lines.push(`| ${h.mode} | ${h.trials} | ${h.recovered} | ${h.detectedP50Ms === null ? "never" : `${fmt(h.detectedP50Ms, 0)} ms`} | ${moved} |`)
  }
  lines.push("")
}
const probeReports = gateway?.probeReports
if (probeReports !== undefined) {
  const [none, one] = probeReports
  const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length
  lines.push(
    "**What probe reports cost the gateway** (the same sessions heartbeating at the same rate, without and with one VIP probe report per heartbeat, independent trials alternating between the two; separate processes on 127.0.0.1):",
    "",
    "| heartbeats carry | bytes per heartbeat | sessions | heartbeat interval | gateway CPU (% of one core, per trial) | heartbeats/s |",
    "| --- | ---: | ---: | ---: | --- | ---: |"
  )
  for (const f of [none, one]) {
    lines.push(`| ${f.reportsPerHeartbeat === 0 ? "no probe report (before R26)" : `${f.reportsPerHeartbeat} probe report`} | ${f.heartbeatBytes} | ${fmt(f.sessions, 0)} | ${fmt(f.intervalMs / 1000)} s | ${f.cpuPercent.map((c) => fmt(c)).join(" / ")} (mean ${fmt(mean(f.cpuPercent))}) | ${fmt(mean(f.heartbeatsPerSecond), 0)} |`)
  }
  lines.push("")
}

const sdk = raw.sdk
if (sdk !== undefined) {
  lines.push("## Domain (SDK)", "", "| figure | value | baseline (same run) | target |", "| --- | ---: | --- | --- |")
  for (const f of sdk.figures) lines.push(`| ${f.name} | ${fmt(f.value)} ${f.unit} | ${f.baseline ? `${f.baseline.name}: ${fmt(f.baseline.value)}` : ""} | ${f.target ?? ""} |`)
  lines.push("")
  if (Array.isArray(sdk.idle) && sdk.idle.length > 0) {
    lines.push(
      "### Idle cost by VIP count",
      "",
      "A fleet with N clusters (N held VIPs, every holder silent and its incident recorded), no agent connected, nothing happening: CPU of the background loops (silence sensor, network syncer, skill runner, kubeconfig renewer), the median of three 10 s windows (each in brackets), on SQLite in a file. Baseline, same run: the same loops with the sensor reading every held VIP from the store on every 100 ms tick, as it did before. Target (#20): under 2% of a core at 1,000 VIPs.",
      "",
      "| VIPs | sensor as it runs | reading every VIP each tick (before) |",
      "| ---: | ---: | ---: |"
    )
    const vipCounts = [...new Set(sdk.idle.map((f) => f.vips))]
    for (const vips of vipCounts) {
      const of = (mode) => {
        const figure = sdk.idle.find((f) => f.vips === vips && f.mode === mode)
        if (figure === undefined) return ""
        // Each window, with V8's major collections in it when the bench counted them.
        const gcOf = (w) => (Array.isArray(figure.windowGc) && figure.windowGc[w] !== undefined ? ` [${figure.windowGc[w].major} major GC]` : "")
        const windows = Array.isArray(figure.windowPercents) ? ` (${figure.windowPercents.map((p, w) => `${fmt(p, 2)}%${gcOf(w)}`).join(", ")})` : ""
        return `${fmt(figure.cpuPercent, 2)}%${windows}`
      }
      lines.push(`| ${fmt(vips, 0)} | ${of("as it runs")} | ${of("reading every VIP each tick")} |`)
    }
    lines.push("")
  }
}

const protocol = raw["agent-protocol"]
if (protocol !== undefined) {
  lines.push("## Wire codec (encode + decode per message)", "", "| case | ops/s | µs/op | bytes |", "| --- | ---: | ---: | ---: |")
  for (const f of protocol.figures) lines.push(`| ${f.name} | ${fmt(f.opsPerSecond, 0)} | ${fmt(f.microsecondsPerOp, 2)} | ${f.bytes} |`)
  lines.push("")
}

writeFileSync(join(root, "BENCHMARKS-latest.md"), lines.join("\n") + "\n")
writeFileSync(join(root, "benchmarks.json"), JSON.stringify(raw, null, 2) + "\n")
process.stdout.write(`wrote BENCHMARKS-latest.md and benchmarks.json (BENCHMARKS.md, the curated record, is not rewritten)\n`)
