/**
 * Data-plane failover (SPEC §9): from the moment the VIP holder dies (its agent killed, its
 * WireGuard interface deleted) to the VIP answering again on its API port from every other
 * node of the cluster, on real interfaces (wireguard-go in network namespaces, the lab of
 * lab/runbook-lab.ts) under the `automatic` policy. Independent trials: each kills the current
 * holder, measures, then brings the dead node back (it rejoins as a candidate) before the next.
 *
 * Measured at fast settings (500 ms heartbeats, 1.5 s threshold) and at the defaults (5 s,
 * 15 s), beside the floor measured in the same run: the same VIP move done directly with `ip`
 * and `wg set` the moment the holder dies (no detection, no gateway), in a lab of the same
 * shape. A canary measures event-loop lag in this process, which hosts the gateway.
 * Writes bench-results.json.
 *
 *   BENCH_DATAPLANE_FAILOVERS=20  BENCH_DATAPLANE_SETTINGS=fast,defaults  (defaults)
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { API_PORT, eventually, PROBE_PORT, startRunbookLab } from "../lab/runbook-lab"
import { createNetworkLab, requireNetworkLab, type LabNode } from "../lab/network-lab"

const FAILOVERS = Number(process.env.BENCH_DATAPLANE_FAILOVERS ?? 20)
const SETTINGS = [
  { name: "fast", heartbeatIntervalMs: 500, silenceThresholdMs: 1_500 },
  { name: "defaults", heartbeatIntervalMs: 5_000, silenceThresholdMs: 15_000 }
].filter((s) => (process.env.BENCH_DATAPLANE_SETTINGS ?? "fast,defaults").split(",").includes(s.name))
/** How often every observer asks the VIP who answers while a failover is under way. */
const POLL_MS = 20

export interface DataPlaneFigure {
  readonly setting: string
  readonly heartbeatIntervalMs: number | null
  readonly silenceThresholdMs: number | null
  readonly failovers: number
  readonly timedOut: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  /** Event-loop lag p99 of the process hosting the gateway, during the trials. */
  readonly loopLagP99Ms: number | null
  readonly samplesMs: ReadonlyArray<number>
  /** Where the time goes (Fleetplane runs): the holder's death to `sdwan.vip_holder_silent`, and to the promotion. */
  readonly detectedP50Ms?: number
  readonly detectedP99Ms?: number
  readonly promotedP50Ms?: number
  readonly promotedP99Ms?: number
}

const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

const log = (line: string) => process.stderr.write(`[data-plane] ${line}\n`)

/** Polls until every observer hears the same new holder on `port`; the time from `since`. */
const untilAllAnswer = async (observers: ReadonlyArray<{ connect: (host: string, port: number, timeoutMs?: number) => Promise<{ ok: boolean; answer: string }> }>, vip: string, port: number, dead: string, since: number, timeoutMs: number) => {
  const deadline = since + timeoutMs
  for (;;) {
    const answers = await Promise.all(observers.map((o) => o.connect(vip, port, 200)))
    const first = answers[0]
    if (first?.ok && first.answer !== dead && answers.every((a) => a.ok && a.answer === first.answer)) return { ms: performance.now() - since, holder: first.answer }
    if (performance.now() > deadline) return undefined
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

const figure = (
  setting: string,
  timing: { heartbeatIntervalMs: number; silenceThresholdMs: number } | null,
  samples: Array<number>,
  timedOut: number,
  lag: number | null,
  phases?: { detected: Array<number>; promoted: Array<number> }
): DataPlaneFigure => ({
  ...(phases === undefined
    ? {}
    : {
        detectedP50Ms: percentile(phases.detected, 50),
        detectedP99Ms: percentile(phases.detected, 99),
        promotedP50Ms: percentile(phases.promoted, 50),
        promotedP99Ms: percentile(phases.promoted, 99)
      }),
  setting,
  heartbeatIntervalMs: timing?.heartbeatIntervalMs ?? null,
  silenceThresholdMs: timing?.silenceThresholdMs ?? null,
  failovers: samples.length,
  timedOut,
  p50Ms: percentile(samples, 50),
  p99Ms: percentile(samples, 99),
  maxMs: Math.max(...samples),
  loopLagP99Ms: lag,
  samplesMs: samples.map((s) => Math.round(s))
})

/** Failovers through Fleetplane: the sensor notices, the skill promotes, agents move the VIP. */
const measureFleetplane = async (setting: (typeof SETTINGS)[number]): Promise<DataPlaneFigure> => {
  log(`${setting.name}: bringing up the runbook lab (heartbeat ${setting.heartbeatIntervalMs} ms, threshold ${setting.silenceThresholdMs} ms)`)
  const runbook = await startRunbookLab({ ...setting, staging: false, log })
  const lag = monitorEventLoopDelay({ resolution: 10 })
  const samples: Array<number> = []
  const phases = { detected: [] as Array<number>, promoted: [] as Array<number> }
  let timedOut = 0
  try {
    const servers = () => runbook.clusterMembers("k3s-prod-server")
    lag.enable()
    for (let trial = 1; trial <= FAILOVERS; trial++) {
      const observer = runbook.clusterMembers("k3s-prod-worker")[0]!
      const holderName = await eventually(() => runbook.vipAnswer(observer, runbook.prod.vip), "the VIP answering")
      const holder = runbook.members.get(holderName)!
      const observers = runbook.clusterMembers("k3s-prod").filter((m) => m !== holder)
      // The newest event so far (pages of 1,000): this trial's events come after it.
      let lastSeq = 0
      for (;;) {
        const page = (await runbook.ops.actions.system_list_events({ since: lastSeq, limit: 1000 })).events
        if (page.length === 0) break
        lastSeq = page.at(-1)!.seq
      }
      const died = performance.now()
      const diedAt = Date.now()
      await runbook.lab.killNode(holder.node)
      const result = await untilAllAnswer(observers.map((o) => o.node), runbook.prod.vip, API_PORT, holderName, died, setting.silenceThresholdMs + 30_000)
      if (result === undefined) timedOut++
      else samples.push(result.ms)
      // The gateway's clock is this process's: event times place detection and promotion.
      const events = (await runbook.ops.actions.system_list_events({ since: lastSeq, limit: 1000 })).events
      const at = (type: string) => {
        const event = events.find((e) => e.type === type)
        return event === undefined ? undefined : Date.parse(event.at) - diedAt
      }
      const detected = at("sdwan.vip_holder_silent")
      const promoted = at("sdwan.vip_failover_promoted")
      if (detected !== undefined) phases.detected.push(detected)
      if (promoted !== undefined) phases.promoted.push(promoted)
      log(
        `${setting.name} ${trial}/${FAILOVERS}: ${holderName} died -> ${result === undefined ? "timed out" : `${result.holder} answers everywhere after ${Math.round(result.ms)} ms`} (silent at ${detected} ms, promoted at ${promoted} ms)`
      )
      // The dead server comes back and becomes a candidate again before the next trial.
      runbook.startAgent(holder)
      await eventually(async () => {
        const vip = await runbook.ops.actions.kubernetes_get_cluster({ id: runbook.prod.clusterId })
        const { nodes } = await runbook.ops.actions.kubernetes_list_nodes({ cluster_id: runbook.prod.clusterId })
        const back = nodes.find((n) => n.instance_id === holder.instanceId)?.status === "ready"
        return back && vip.virtual_ip!.failover_holder_peer_ids.length >= servers().length - 1 && (await runbook.vipAnswer(holder, runbook.prod.vip)) !== undefined
      }, `${holderName} back as a candidate`, 60_000 + setting.silenceThresholdMs)
      // Its heartbeats must be fresh enough to score as a candidate.
      await new Promise((resolve) => setTimeout(resolve, setting.heartbeatIntervalMs * 2))
    }
  } finally {
    lag.disable()
    await runbook.close()
  }
  return figure(setting.name, setting, samples, timedOut, lag.percentile(99) / 1e6, phases)
}

/**
 * The floor: the same lab shape (three servers, two workers, plain WireGuard between them, the
 * VIP on the holder's loopback), and the move done directly the moment the holder dies: the VIP
 * added on the next server's loopback and moved between [Peer]s with `wg set` on every node.
 */
const measureFloor = async (): Promise<DataPlaneFigure> => {
  log("floor: direct VIP moves, no detection")
  const lab = await createNetworkLab(`${(process.pid + 1) % 10000}`)
  const samples: Array<number> = []
  let timedOut = 0
  try {
    const names = ["server-1", "server-2", "server-3", "worker-1", "worker-2"]
    const nodes: Array<{ node: LabNode; name: string; privateKey: string; publicKey: string; address: string }> = []
    for (const [i, name] of names.entries()) {
      const node = await lab.addNode(name)
      const privateKey = (await node.exec(["wg", "genkey"])).trim()
      const publicKey = (await node.exec(["sh", "-c", `echo ${privateKey} | wg pubkey`])).trim()
      nodes.push({ node, name, privateKey, publicKey, address: `100.64.0.${i + 1}` })
    }
    const vip = "100.64.0.100"
    const configFor = (self: (typeof nodes)[number], holder: string) =>
      [
        "[Interface]",
        `PrivateKey = ${self.privateKey}`,
        `Address = ${self.address}/32`,
        "ListenPort = 51820",
        ...nodes
          .filter((n) => n !== self)
          .flatMap((n) => ["", "[Peer]", `PublicKey = ${n.publicKey}`, `Endpoint = ${n.node.lanAddress}:51820`, `AllowedIPs = ${n.address}/32${n.name === holder ? `, ${vip}/32` : ""}`, "PersistentKeepalive = 25"])
      ].join("\n") + "\n"
    const up = async (self: (typeof nodes)[number], holder: string) => {
      await self.node.exec(["sh", "-c", `mkdir -p /tmp/floor-${process.pid} && cat > /tmp/floor-${process.pid}/wg-floor-${names.indexOf(self.name)}.conf <<'EOF'\n${configFor(self, holder)}EOF\nchmod 600 /tmp/floor-${process.pid}/wg-floor-${names.indexOf(self.name)}.conf`])
      await self.node.exec(["wg-quick", "up", `/tmp/floor-${process.pid}/wg-floor-${names.indexOf(self.name)}.conf`])
    }
    let holder = nodes[0]!
    for (const n of nodes) await up(n, holder.name)
    await holder.node.exec(["ip", "address", "replace", `${vip}/32`, "dev", "lo"])
    await eventually(async () => (await Promise.all(nodes.map((n) => n.node.connect(vip, PROBE_PORT, 300)))).every((a) => a.ok && a.answer === holder.name), "the floor VIP answering")
    for (let trial = 1; trial <= FAILOVERS; trial++) {
      const servers = nodes.slice(0, 3)
      const next = servers[(servers.indexOf(holder) + 1) % servers.length]!
      const observers = nodes.filter((n) => n !== holder)
      const died = performance.now()
      await holder.node.exec(["ip", "link", "del", `wg-floor-${names.indexOf(holder.name)}`])
      await next.node.exec(["ip", "address", "replace", `${vip}/32`, "dev", "lo"])
      await Promise.all(
        observers
          .filter((n) => n !== next)
          .map((n) =>
            n.node.exec(["wg", "set", `wg-floor-${names.indexOf(n.name)}`, "peer", holder.publicKey, "allowed-ips", `${holder.address}/32`, "peer", next.publicKey, "allowed-ips", `${next.address}/32,${vip}/32`])
          )
      )
      const result = await untilAllAnswer(observers.map((o) => o.node), vip, PROBE_PORT, holder.name, died, 30_000)
      if (result === undefined) timedOut++
      else samples.push(result.ms)
      // The dead node comes back (not holding the VIP) for the next trial.
      await holder.node.exec(["ip", "address", "del", `${vip}/32`, "dev", "lo"])
      await up(holder, next.name)
      holder = next
    }
  } finally {
    lab.close()
  }
  return figure("floor", null, samples, timedOut, null)
}

requireNetworkLab()
const results: { dataPlane: Array<DataPlaneFigure>; documented: Array<{ name: string; failoverMs: number; source: string }> } = {
  dataPlane: [],
  // Not measured here: what those projects document for their defaults, for comparison.
  documented: [
    { name: "kube-vip (ARP mode, leader election defaults)", failoverMs: 3_000, source: "kube-vip documentation: leaseDuration 5 s, renewDeadline 3 s, retryPeriod 1 s" },
    { name: "keepalived (VRRP, advert_int 1 s)", failoverMs: 3_600, source: "RFC 5798 master down interval: 3 x advert_int + skew (~3.6 s at priority 100)" }
  ]
}
results.dataPlane.push(await measureFloor())
for (const setting of SETTINGS) results.dataPlane.push(await measureFleetplane(setting))
// Merged: bench/peer-view.ts keeps its figures in the same file.
const resultsFile = new URL("../bench-results.json", import.meta.url)
const earlier = existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, "utf8")) as Record<string, unknown>) : {}
writeFileSync(resultsFile, JSON.stringify({ ...earlier, ...results }, null, 2) + "\n")
for (const f of results.dataPlane) log(`${f.setting}: ${f.failovers} failovers, p50 ${Math.round(f.p50Ms)} ms, p99 ${Math.round(f.p99Ms)} ms, max ${Math.round(f.maxMs)} ms, timed out ${f.timedOut}`)
process.exit(0)
