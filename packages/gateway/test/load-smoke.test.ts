/**
 * A seconds-long run of the load benchmark's own processes (bench server + load generator),
 * so the benchmark cannot rot between `pnpm bench` runs.
 */
import { fork, type ChildProcess } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { measureBaselineConvergence, measureGatewayConvergence } from "../bench/convergence"

const bench = new URL("../bench/", import.meta.url).pathname
const children: Array<ChildProcess> = []
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL")
})

const start = (script: string, args: Array<string>) => {
  const child = fork(join(bench, script), args, { execArgv: ["--import", "tsx"], stdio: ["ignore", "ignore", "inherit", "ipc"] })
  children.push(child)
  return child
}
const next = <T>(child: ChildProcess, type: string) =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type}`)), 60_000)
    child.on("message", (message: { type: string }) => {
      if (message.type === type) {
        clearTimeout(timer)
        resolve(message as T)
      }
    })
  })

describe("load benchmark smoke", () => {
  it("connects 100 agents to a real gateway and counts their steady and flooded heartbeats", async () => {
    const server = start("bench-server.ts", ["gateway", "100", "1", mkdtempSync(join(tmpdir(), "fleetplane-smoke-"))])
    const ready = await next<{ url: string; credentials: string; holders: Array<string> }>(server, "ready")
    const load = start("load-generator.ts", [ready.url, ready.credentials, "100", "500"])
    const connected = await next<{ sessions: number }>(load, "connected")
    expect(connected.sessions).toBe(100)
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    const stats = () => {
      const reply = next<{ heartbeats: number; sessions: number }>(server, "stats")
      server.send({ type: "stats" })
      return reply
    }
    const first = await stats()
    expect(first.sessions).toBe(100)
    expect(first.heartbeats).toBeGreaterThan(100)
    const flooded = next<{ sent: number }>(load, "flooded")
    load.send({ type: "flood", durationMs: 500, sockets: 20 })
    expect((await flooded).sent).toBeGreaterThan(100)
    expect((await stats()).heartbeats).toBeGreaterThan(first.heartbeats)
    load.send({ type: "stop" })
  }, 90_000)

  it("fails a VIP over on a 30-peer network and hears every peer ack its new VIP routes, beside the bare-ws baseline", async () => {
    const gateway = await measureGatewayConvergence(30, 2, { quiet: true })
    expect(gateway).toMatchObject({ peers: 30, failovers: 2, timedOut: 0 })
    expect(gateway.p99Ms).toBeGreaterThan(0)
    const baseline = await measureBaselineConvergence(30, 2, { quiet: true })
    expect(baseline).toMatchObject({ peers: 30, failovers: 2, timedOut: 0 })
  }, 120_000)
})
