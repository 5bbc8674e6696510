/**
 * Reconnect storm (#9.6): agents connected to a gateway process, the gateway restarted
 * (graceful stop, new process on the same database and port); every agent comes back with
 * jittered backoff and resumes, and the new gateway's memory stays under a stated bound.
 * The benchmark's own processes (bench-server, load-generator) do the work.
 *
 * `npm test`: 500 agents. `pnpm test:soak`: FLEETPLANE_SOAK_STORM_AGENTS (default 10,000).
 */
import { type ChildProcess } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { next, start } from "../bench/processes"
import { recordSoak } from "./support/soak-report"

const AGENTS = Number(process.env.FLEETPLANE_SOAK_STORM_AGENTS ?? (process.env.FLEETPLANE_SOAK ? 10_000 : 500))
/** The stated bound: 256 MB for the process (Node, tsx, the SDK) plus 40 KB per session (measured: ~20 KB). */
const RSS_BOUND_BYTES = 256 * 1024 * 1024 + AGENTS * 40 * 1024

const children: Array<ChildProcess> = []
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL")
})
const track = (child: ChildProcess) => {
  children.push(child)
  return child
}

describe("reconnect storm", () => {
  it(`${AGENTS} agents reconnect after a gateway restart, all resume, memory stays bounded`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "fleetplane-storm-"))
    const server = track(start("bench-server.ts", ["gateway", String(AGENTS), "0", dir], { quiet: true }))
    const ready = await next<{ url: string; credentials: string }>(server, "ready", 300_000)
    const load = track(start("load-generator.ts", [ready.url, ready.credentials, String(AGENTS), "5000"], { quiet: true }))
    expect((await next<{ sessions: number }>(load, "connected", 300_000)).sessions).toBe(AGENTS)

    const armed = next(load, "ready-for-restart")
    load.send({ type: "expect-restart" })
    await armed
    const reconnected = next<{ ms: number; attempts: number }>(load, "reconnected", 300_000)
    const exited = new Promise((resolve) => server.once("exit", resolve))
    server.kill("SIGTERM") // graceful: every agent is told 1001 and reconnects
    await exited
    const restarted = track(start("bench-server.ts", ["gateway-restart", String(AGENTS), "0", dir, new URL(ready.url).port], { quiet: true }))
    await next(restarted, "ready", 120_000)

    let peakRss = 0
    let done = false
    const sampling = (async () => {
      while (!done) {
        const stats = next<{ rss: number }>(restarted, "stats")
        restarted.send({ type: "stats" })
        peakRss = Math.max(peakRss, (await stats).rss)
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    })()
    const back = await reconnected
    done = true
    await sampling
    const final = next<{ sessions: number }>(restarted, "stats")
    restarted.send({ type: "stats" })
    expect((await final).sessions).toBe(AGENTS) // every agent is back and holds a session
    expect(peakRss).toBeLessThan(RSS_BOUND_BYTES)
    console.log(
      `reconnect storm: ${AGENTS} agents back ${back.ms} ms after the restart (${back.attempts} attempts), peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MB (bound ${(RSS_BOUND_BYTES / 2 ** 20).toFixed(0)} MB)`
    )
    recordSoak({ suite: "reconnect storm (gateway restart)", faults: 1, inputs: back.attempts, sessions: AGENTS, violations: 0, lost: 0 })
    load.send({ type: "stop" })
  }, 600_000)
})
