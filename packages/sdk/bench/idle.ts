/**
 * Idle cost by VIP count (#20): a fleet with N clusters (N VIPs, each held) and no agent
 * connected, after every holder's silence has been recorded, doing nothing. Measured: CPU (% of
 * one core; the median of three 10 s windows, each printed with its major collections) of the
 * background loops as they run (sensor, network syncer, skill runner, kubeconfig renewer), beside
 * the same loops with the sensor reading every held VIP from the store on every tick (how it ran
 * before: `check` every 100 ms), in the same run.
 *
 *   BENCH_IDLE_VIPS=0,100,300,1000  BENCH_IDLE_MS=30000  (defaults)
 *
 * `pnpm bench` runs it in a process of its own (`measureIdleInOwnProcess`), after a warm-up window.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { constants, PerformanceObserver, type PerformanceEntry } from "node:perf_hooks"
import { Effect, Fiber, Layer, ManagedRuntime } from "effect"
import { Accounts, Actions, AgentPort, fleetLayer, KubeconfigRenewer, NetworkSyncer, SkillRunner, VipSensor, type AccountId } from "../src/index"

const VIP_COUNTS = (process.env.BENCH_IDLE_VIPS ?? "0,100,300,1000").split(",").map(Number)
// 30 s: one whole period of the sensor's safety re-read, measured as three windows of 10 s.
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 30_000)
const WINDOWS = 3
const SILENCE_THRESHOLD_MS = 1_000

export interface IdleFigure {
  readonly vips: number
  readonly mode: "as it runs" | "reading every VIP each tick"
  /** The median window: what the loops cost once the setup's garbage is collected. */
  readonly cpuPercent: number
  /** Every window, in order (one may hold V8's collection of what setting the fleet up left). */
  readonly windowPercents: ReadonlyArray<number>
  /** Per window, V8's major collections and the time the main thread spent paused in any collection (its helper threads' CPU is in the percent, not here). */
  readonly windowGc: ReadonlyArray<{ readonly major: number; readonly pausedMs: number }>
  readonly setupMs: number
}

/** N bootstrapped clusters, one per network, whose agents said hello once and went quiet. */
const seed = (accountId: AccountId, vips: number) =>
  Effect.gen(function* () {
    const actions = yield* Actions
    const port = yield* AgentPort
    const exec = (name: string, input: Record<string, unknown>) => actions.execute(accountId, name, input) as Effect.Effect<any, any>
    const template = yield* exec("system_create_template", { name: "servers" })
    yield* exec("system_assign_module_to_template", { template_id: template.id, module_name: "k3s-server", config: { vip_policy: "automatic" } })
    for (let i = 0; i < vips; i++) {
      const network = yield* exec("system_sdwan_create_network", { name: `site-${i}`, handle: `s${i.toString(36)}`, pod_subnet_prefix: `10.${i >> 4}.${(i & 15) << 4}.0/20` })
      const node = yield* exec("system_create_node", { hostname: `server-${i}`, node_template_id: template.id })
      const instance = yield* exec("system_provision_instance", { node_id: node.id })
      yield* exec("system_sdwan_attach_peer", { network_id: network.id, node_instance_id: instance.id })
      const identity = yield* port.authenticate(instance.id, instance.agent_credential)
      yield* port.hello(identity, { wireguard_keys: [], applied: [], held_vips: [] })
      const joined = yield* port.joinRequest(identity, { request_id: `r${i}`, module_name: "k3s-server", target_cluster_id: null })
      if (!joined.accepted) return yield* Effect.die(new Error(`bootstrap ${i} rejected: ${joined.code}`))
      yield* port.disconnected(identity)
    }
  })

const measure = async (vips: number, mode: IdleFigure["mode"]): Promise<IdleFigure> => {
  const database = join(mkdtempSync(join(tmpdir(), "fleetplane-idle-")), "fleet.db")
  const runtime = ManagedRuntime.make(fleetLayer({ database, runSensor: false, config: { silenceThresholdMs: SILENCE_THRESHOLD_MS } }).pipe(Layer.orDie))
  try {
    const started = Date.now()
    await runtime.runPromise(
      Effect.gen(function* () {
        const account = yield* (yield* Accounts).create("idle")
        yield* seed(account.id, vips)
      })
    )
    const setupMs = Date.now() - started
    // The loops a gateway runs; the sensor either as it runs, or reading the store every tick.
    const sensorLoop = Effect.gen(function* () {
      const sensor = yield* VipSensor
      return yield* mode === "as it runs" ? sensor.run : Effect.forever(Effect.andThen(Effect.sleep(100), sensor.check))
    })
    const loops = Effect.all(
      [sensorLoop, Effect.flatMap(Effect.service(NetworkSyncer), (s) => s.run), Effect.flatMap(Effect.service(SkillRunner), (s) => s.run), Effect.flatMap(Effect.service(KubeconfigRenewer), (s) => s.run)],
      { concurrency: "unbounded" }
    )
    const fiber = runtime.runFork(loops)
    // Every holder passes the threshold and its incident is recorded; then nothing more happens.
    await new Promise((resolve) => setTimeout(resolve, SILENCE_THRESHOLD_MS + 10_000))
    const windowPercents: Array<number> = []
    const windowGc: Array<{ major: number; pausedMs: number }> = []
    for (let w = 0; w < WINDOWS; w++) {
      const gc = { major: 0, pausedMs: 0 }
      const observer = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) {
          gc.pausedMs += entry.duration
          if (gcKind(entry) === constants.NODE_PERFORMANCE_GC_MAJOR) gc.major++
        }
      })
      observer.observe({ entryTypes: ["gc"] })
      const before = process.cpuUsage()
      const at = process.hrtime.bigint()
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS / WINDOWS))
      const used = process.cpuUsage(before)
      windowPercents.push(((used.user + used.system) / (Number(process.hrtime.bigint() - at) / 1_000)) * 100)
      // Entries still queued for this window are delivered to it before it stops listening.
      await new Promise((resolve) => setImmediate(resolve))
      observer.disconnect()
      windowGc.push(gc)
    }
    await runtime.runPromise(Fiber.interrupt(fiber))
    const median = [...windowPercents].sort((a, b) => a - b)[Math.floor(WINDOWS / 2)]!
    return { vips, mode, cpuPercent: median, windowPercents, windowGc, setupMs }
  } finally {
    await runtime.dispose()
  }
}

/** A GC entry's kind (minor, major, ...): `detail.kind` since Node 16, not in this @types/node. */
const gcKind = (entry: PerformanceEntry) => (entry as unknown as { detail?: { kind?: number } }).detail?.kind

export const measureIdle = async (options: { readonly warmUp?: boolean } = {}): Promise<Array<IdleFigure>> => {
  const figures: Array<IdleFigure> = []
  // Not reported: a process's first ~40 s cost more whatever runs (1.5-3.2% at 0 VIPs, against 0.2% after), so a bench run alone starts with one window thrown away.
  if (options.warmUp === true) await measure(0, "as it runs")
  for (const vips of VIP_COUNTS) {
    for (const mode of ["as it runs", "reading every VIP each tick"] as const) {
      const figure = await measure(vips, mode)
      const windows = figure.windowPercents
        .map((p, w) => `${p.toFixed(2)}% (${figure.windowGc[w]!.major} major GC, ${figure.windowGc[w]!.pausedMs.toFixed(0)} ms paused)`)
        .join(" / ")
      console.log(`idle, ${vips} VIPs, sensor ${mode}: ${figure.cpuPercent.toFixed(2)}% of a core, median of ${windows} (setup ${(figure.setupMs / 1000).toFixed(1)} s)`)
      figures.push(figure)
    }
  }
  return figures
}

/**
 * The same, in a child process (what `pnpm bench` runs after its other benchmarks): the figures
 * come back through a file, the per-window lines on this process's output as they are measured.
 */
export const measureIdleInOwnProcess = (): Array<IdleFigure> => {
  const out = join(mkdtempSync(join(tmpdir(), "fleetplane-idle-out-")), "idle.json")
  const child = spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url)], { stdio: "inherit", env: { ...process.env, BENCH_IDLE_OUT: out } })
  if (child.status !== 0) throw new Error(`the idle benchmark failed (exit ${child.status ?? child.signal})`)
  return JSON.parse(readFileSync(out, "utf8")) as Array<IdleFigure>
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await measureIdle({ warmUp: true })
  if (process.env.BENCH_IDLE_OUT !== undefined) writeFileSync(process.env.BENCH_IDLE_OUT, JSON.stringify(figures))
}
