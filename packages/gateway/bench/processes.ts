/** Child processes of the benchmarks (servers, load generators) and their IPC replies. */
import { fork, type ChildProcess } from "node:child_process"
import { join } from "node:path"

const here = new URL(".", import.meta.url).pathname

/** R26: `count` VIP probe reports as a reporter sends them (the answered case), for the heartbeat benchmarks. */
export const sampleProbeReports = (count: number) =>
  Array.from({ length: count }, (_, i) => ({
    vip_id: `vip_bench${String(i).padStart(19, "0")}`,
    epoch: 3,
    ok: true,
    rtt_ms: 4,
    age_ms: 350,
    failing_for_ms: 0,
    holder_ok: true
  }))

/**
 * Flags for the server processes: `BENCH_CPU_PROF=<dir>` writes CPU profiles there,
 * `BENCH_TRACE_GC=1` logs every collection (node refuses --trace-gc in NODE_OPTIONS), and
 * `BENCH_SERVER_FLAGS` adds any others (space-separated, e.g. V8 heap sizes to try).
 */
const serverFlags = () => [
  ...(process.env.BENCH_TRACE_GC !== undefined ? ["--trace-gc"] : []),
  ...(process.env.BENCH_SERVER_FLAGS ?? "").split(" ").filter((flag) => flag !== ""),
  ...(process.env.BENCH_CPU_PROF !== undefined ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [])
]

/** Runs a bench script (TypeScript, through tsx) in its own process with an IPC channel. */
export const start = (script: string, args: ReadonlyArray<string>, options: { quiet?: boolean } = {}) =>
  fork(join(here, script), [...args], {
    execArgv: ["--import", "tsx", "--expose-gc", ...(script.endsWith("-server.ts") ? serverFlags() : [])],
    stdio: ["ignore", options.quiet ? "ignore" : "inherit", "inherit", "ipc"]
  })

/** The next IPC message of `type` from `child`; fails on timeout or if the child exits with an error. */
export const next = <T>(child: ChildProcess, type: string, timeoutMs = 180_000) =>
  new Promise<T>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer)
      child.off("message", onMessage)
      child.off("exit", onExit)
    }
    const timer = setTimeout(() => {
      done()
      reject(new Error(`no "${type}" from ${child.spawnargs.at(-1)} within ${timeoutMs} ms`))
    }, timeoutMs)
    const onMessage = (message: { type: string }) => {
      if (message.type !== type) return
      done()
      resolve(message as T)
    }
    const onExit = (code: number | null) => {
      if (code === 0 || code === null) return
      done()
      reject(new Error(`${child.spawnargs.join(" ")} exited with ${code}`))
    }
    child.on("message", onMessage)
    child.on("exit", onExit)
  })

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}
