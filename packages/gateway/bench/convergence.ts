/**
 * Failover convergence (SPEC §9: under 2 s for a 1,000-peer network on loopback): from the
 * operator's failover decision to every peer of the network having acked its new WireGuard
 * config (the `vip_routes` half that moves the VIP /128), over repeated failovers; beside the
 * same-run baseline of a bare `ws` server sending every agent one message of the same size
 * and hearing every ack. Gateway, baseline and agents each run in their own process.
 *
 *   BENCH_PEERS=1000  BENCH_FAILOVERS=10  (defaults)
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { next, percentile, sleep, start } from "./processes"

export interface ConvergenceFigure {
  readonly mode: "gateway" | "baseline"
  /** Where the gateway keeps its state. */
  readonly store: "sqlite" | "postgres" | "none"
  readonly peers: number
  readonly failovers: number
  /** Decision (the confirmed failover request sent) to the last peer's ack. */
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  /** Decision to the answer of the failover request (the promotion committed). */
  readonly decisionP50Ms: number
  readonly timedOut: number
  readonly setupMs: number
  readonly connectMs: number
}

interface Converged {
  readonly timedOut: boolean
  readonly lastAckAt?: number
  readonly behind?: number
}

const summarise = (mode: ConvergenceFigure["mode"], store: ConvergenceFigure["store"], peers: number, samples: Array<number>, decisions: Array<number>, timedOut: number, setupMs: number, connectMs: number): ConvergenceFigure => ({
  mode,
  store,
  peers,
  failovers: samples.length + timedOut,
  p50Ms: percentile(samples, 50),
  p99Ms: percentile(samples, 99),
  maxMs: Math.max(...samples),
  decisionP50Ms: percentile(decisions, 50),
  timedOut,
  setupMs,
  connectMs
})

const admin = (adminUrl: string, apiKey: string) => async (name: string, input: Record<string, unknown>) => {
  const response = await fetch(`${adminUrl}/v1/actions/${name}`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify(input)
  })
  return { status: response.status, body: (await response.json()) as any }
}

export const measureGatewayConvergence = async (peers: number, failovers: number, options: { quiet?: boolean; postgres?: string } = {}): Promise<ConvergenceFigure> => {
  const dir = mkdtempSync(join(tmpdir(), "fleetplane-convergence-"))
  const server = start("convergence-server.ts", ["gateway", String(peers), dir, ...(options.postgres === undefined ? [] : [options.postgres])], options)
  try {
    const ready = await next<{ url: string; adminUrl: string; apiKey: string; agents: string; vipId: string; setupMs: number }>(server, "ready", 300_000)
    const agents = start("convergence-agents.ts", [ready.url, ready.agents], options)
    try {
      const { connectMs } = await next<{ connectMs: number }>(agents, "connected", 300_000)
      const call = admin(ready.adminUrl, ready.apiKey)
      const current = async () => (await call("system_sdwan_failover_virtual_ip", { virtual_ip_id: ready.vipId, dry_run: true })).body
      // Settled: every peer routes the VIP at its current epoch.
      const initial = await current()
      const awaitEpoch = (epoch: number) => {
        const reply = next<Converged>(agents, "converged", 60_000)
        agents.send({ type: "await-epoch", epoch, timeoutMs: 30_000 })
        return reply
      }
      const settled = await awaitEpoch(initial.epoch ?? 1)
      if (settled.timedOut) throw new Error(`${settled.behind} agents never received the initial VIP routes`)
      const samples: Array<number> = []
      const decisions: Array<number> = []
      let timedOut = 0
      for (let i = 0; i < failovers; i++) {
        const asked = await call("system_sdwan_failover_virtual_ip", { virtual_ip_id: ready.vipId })
        const token = asked.body.error?.details?.confirmation_token
        if (asked.status !== 428 || typeof token !== "string") throw new Error(`failover not offered: ${JSON.stringify(asked.body)}`)
        const decidedAt = Date.now()
        const done = await call("system_sdwan_failover_virtual_ip", { virtual_ip_id: ready.vipId, confirmation_token: token })
        decisions.push(Date.now() - decidedAt)
        if (done.status !== 200 || typeof done.body.epoch !== "number") throw new Error(`failover refused: ${JSON.stringify(done.body)}`)
        const converged = await awaitEpoch(done.body.epoch)
        if (converged.timedOut) timedOut++
        else samples.push(converged.lastAckAt! - decidedAt)
        await sleep(300)
      }
      agents.send({ type: "stop" })
      return summarise("gateway", options.postgres === undefined ? "sqlite" : "postgres", peers, samples, decisions, timedOut, ready.setupMs, connectMs)
    } finally {
      agents.kill("SIGKILL")
    }
  } finally {
    server.kill("SIGTERM")
  }
}

export const measureBaselineConvergence = async (peers: number, rounds: number, options: { quiet?: boolean } = {}): Promise<ConvergenceFigure> => {
  const dir = mkdtempSync(join(tmpdir(), "fleetplane-convergence-baseline-"))
  const server = start("convergence-server.ts", ["baseline", String(peers), dir], options)
  try {
    const ready = await next<{ url: string; agents: string }>(server, "ready")
    const agents = start("convergence-agents.ts", [ready.url, ready.agents], options)
    try {
      const { connectMs } = await next<{ connectMs: number }>(agents, "connected", 300_000)
      const samples: Array<number> = []
      let timedOut = 0
      for (let epoch = 2; epoch < rounds + 2; epoch++) {
        const converged = next<Converged>(agents, "converged", 60_000)
        const sentAt = Date.now()
        server.send({ type: "broadcast", epoch })
        agents.send({ type: "await-epoch", epoch, timeoutMs: 30_000 })
        const result = await converged
        if (result.timedOut) timedOut++
        else samples.push(result.lastAckAt! - sentAt)
        await sleep(300)
      }
      agents.send({ type: "stop" })
      return summarise("baseline", "none", peers, samples, [], timedOut, 0, connectMs)
    } finally {
      agents.kill("SIGKILL")
    }
  } finally {
    server.kill("SIGTERM")
  }
}
