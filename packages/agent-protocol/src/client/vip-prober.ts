/**
 * The reporter's side of SPEC R26: probes the VIPs whose `vip_routes` probe plan names this
 * instance, over the overlay, and keeps the latest result of each for the next heartbeat.
 *
 * A probe opens TCP to the API port and sends one line of HTTP; it succeeds when the server
 * answers anything before the timeout. A listening socket alone is not enough: a hung
 * kube-apiserver still completes TCP handshakes (the kernel does that), but it no longer
 * writes. A live one answers even plain HTTP on its TLS port — Go's net/http replies
 * "HTTP/1.0 400 Bad Request … Client sent an HTTP request to an HTTPS server" (net/http
 * server.go) — so no certificate or credential is needed to tell alive from hung.
 *
 * Cost: at most one probe in flight per VIP and address, one per `intervalMs`; a node reports
 * for the few VIPs whose bounded reporter sample names it (normally its own cluster's).
 */
import { connect } from "node:net"
import type { VipRoute } from "../messages/config"
import type { VipProbeReport } from "../messages/session"

/** One probe of `host:port`: whether it answered within `timeoutMs`, and connect-to-first-byte time. */
export type AnswerProbe = (
  host: string,
  port: number,
  timeoutMs: number
) => Promise<{ readonly ok: boolean; readonly rttMs: number; /** Why not: `timeout`, `closed` or the socket's error code (`ECONNREFUSED`, `EHOSTUNREACH`, ...). */ readonly reason?: string }>

/** The longest a probe waits, whatever the interval: a slower answer is no answer. */
export const MAX_PROBE_TIMEOUT_MS = 5_000

/** A probe's timeout: three quarters of the interval (keepalived's habit of a timeout shorter than the interval), at most 5 s. */
export const probeTimeoutMs = (intervalMs: number) => Math.min(Math.floor((intervalMs * 3) / 4), MAX_PROBE_TIMEOUT_MS)

export const probeForAnswer: AnswerProbe = (host, port, timeoutMs) =>
  new Promise((resolve) => {
    const started = performance.now()
    const socket = connect({ host, port })
    let settled = false
    const finish = (ok: boolean, reason?: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ ok, rttMs: Math.round(performance.now() - started), ...(reason === undefined ? {} : { reason }) })
    }
    const timer = setTimeout(() => finish(false, "timeout"), timeoutMs)
    socket.once("connect", () => socket.write(`GET /livez HTTP/1.0\r\nHost: ${host.includes(":") ? `[${host}]` : host}\r\n\r\n`))
    socket.once("data", () => finish(true))
    // Refused, reset or closed without a byte: no answer.
    socket.once("error", (error: NodeJS.ErrnoException) => finish(false, error.code ?? error.message))
    socket.once("close", () => finish(false, "closed"))
  })

interface Target {
  readonly vipId: string
  readonly epoch: number
  readonly address: string
  readonly port: number
  readonly holderAddress: string
  /** Results so far, in `now()` millis. */
  finishedAt: number | undefined
  ok: boolean
  rttMs: number | null
  failingSince: number | undefined
  /** The VIP has answered at this epoch: only then do failures count as the VIP lost. */
  answered: boolean
  holderOk: boolean | null
  inFlight: boolean
}

export interface VipProberOptions {
  /** This agent's instance id: the name the probe plans use. */
  readonly instanceId: string
  readonly probe?: AnswerProbe
  readonly now?: () => number
  /** Told when a VIP stops or starts answering this node (for the agent's log). */
  readonly onChange?: (change: { readonly vipId: string; readonly epoch: number; readonly address: string; readonly ok: boolean; readonly ms: number; readonly reason: string | undefined; readonly holderOk: boolean }) => void
}

export class VipProber {
  /** Targets by network id, then VIP id: a `vip_routes` push replaces one network's. */
  private readonly byNetwork = new Map<string, Map<string, Target>>()
  private timer: NodeJS.Timeout | undefined
  private intervalMs = 2_000
  private readonly probe: AnswerProbe
  private readonly now: () => number

  constructor(private readonly options: VipProberOptions) {
    this.probe = options.probe ?? probeForAnswer
    this.now = options.now ?? Date.now
  }

  /** Takes a network's routes (a `vip_routes` push, or what was applied before a restart). */
  setRoutes(networkId: string, routes: ReadonlyArray<VipRoute>) {
    const before = this.byNetwork.get(networkId) ?? new Map<string, Target>()
    const next = new Map<string, Target>()
    for (const route of routes) {
      const plan = route.probe
      if (plan === undefined || !plan.reporters.includes(this.options.instanceId)) continue
      const kept = before.get(route.vip_id)
      // A new holder (epoch) or address starts a new record: old failures say nothing about it.
      const same = kept !== undefined && kept.epoch === route.epoch && kept.address === plan.address && kept.port === plan.port && kept.holderAddress === plan.holder_address
      next.set(
        route.vip_id,
        same
          ? kept
          : { vipId: route.vip_id, epoch: route.epoch, address: plan.address, port: plan.port, holderAddress: plan.holder_address, finishedAt: undefined, ok: false, rttMs: null, failingSince: undefined, answered: false, holderOk: null, inFlight: false }
      )
    }
    if (next.size === 0) this.byNetwork.delete(networkId)
    else this.byNetwork.set(networkId, next)
  }

  /** Starts (or re-times) probing; the gateway's `welcome.vip_probe_interval_ms`. */
  start(intervalMs: number) {
    this.intervalMs = intervalMs
    clearInterval(this.timer)
    this.timer = setInterval(() => this.tick(), intervalMs)
    this.timer.unref?.()
    this.tick()
  }

  stop() {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** How many VIPs this node reports on. */
  get targetCount(): number {
    let count = 0
    for (const targets of this.byNetwork.values()) count += targets.size
    return count
  }

  /** The latest result per VIP, for the next heartbeat (VIPs not probed yet are left out). */
  reports(): Array<VipProbeReport> {
    const now = this.now()
    const reports: Array<VipProbeReport> = []
    for (const targets of this.byNetwork.values()) {
      for (const t of targets.values()) {
        if (t.finishedAt === undefined) continue
        reports.push({
          vip_id: t.vipId,
          epoch: t.epoch,
          ok: t.ok,
          rtt_ms: t.ok ? t.rttMs : null,
          age_ms: Math.max(0, now - t.finishedAt),
          failing_for_ms: t.ok ? 0 : t.failingSince === undefined ? null : Math.max(0, t.finishedAt - t.failingSince),
          holder_ok: t.holderOk
        })
      }
    }
    return reports
  }

  /** One round: every target not already being probed (returns when the round is done, for tests). */
  tick(): Promise<void> {
    // Each probe ends before the next tick, so a failing VIP is probed every interval, not every other one.
    const timeoutMs = probeTimeoutMs(this.intervalMs)
    const round: Array<Promise<void>> = []
    for (const targets of this.byNetwork.values()) {
      for (const target of targets.values()) {
        if (target.inFlight) continue
        target.inFlight = true
        const started = this.now()
        round.push(
          Promise.all([this.probe(target.address, target.port, timeoutMs), this.probe(target.holderAddress, target.port, timeoutMs)])
            .then(([vip, holder]) => {
              const changed = target.finishedAt === undefined || target.ok !== vip.ok
              target.finishedAt = this.now()
              target.ok = vip.ok
              if (changed) this.options.onChange?.({ vipId: target.vipId, epoch: target.epoch, address: target.address, ok: vip.ok, ms: vip.rttMs, reason: vip.reason, holderOk: holder.ok })
              target.rttMs = vip.ok ? vip.rttMs : null
              target.holderOk = holder.ok
              // Failing since the start of the first failed probe after the VIP last answered.
              if (vip.ok) target.answered = true
              target.failingSince = vip.ok || !target.answered ? undefined : (target.failingSince ?? started)
            })
            .catch(() => undefined)
            .finally(() => {
              target.inFlight = false
            })
        )
      }
    }
    return Promise.all(round).then(() => undefined)
  }
}
