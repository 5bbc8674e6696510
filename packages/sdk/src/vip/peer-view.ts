/**
 * R26: the peers' view of a VIP. A bounded sample of the cluster's nodes (the reporters, named in
 * the `vip_routes` probe plan) probe the VIP's API port over the overlay and report in their
 * heartbeats; this turns those reports into one verdict. Deterministic: the same reports, times
 * and settings always give the same verdict.
 *
 * A report counts when it is about the VIP's current epoch and fresh (the probe finished within
 * the silence threshold). Then, with `n` counted reports:
 *
 * - fewer than `vipProbeMinReporters`: `too_few_reporters` (failover as before R26);
 * - holder silent to the gateway — only probes that finished after it missed a heartbeat (its last
 *   one plus one heartbeat interval) say anything about it now; a probe that answered just before
 *   it died must not pass for "it only lost the gateway":
 *     more than n/2 answered  -> `reachable`  (only its link to the gateway is down)
 *     more than n/2 failed    -> `unreachable` (it is down)
 *     otherwise, within one evidence window (2 probe intervals + 1 heartbeat interval) of the
 *     silence: `awaiting_reports`; after it: `inconclusive` (failover as before R26);
 * - holder heartbeating: more than n/2 failing without a success for at least the silence
 *   threshold -> `unreachable` (its API server or its WireGuard is broken); otherwise `reachable`.
 */
import type { FleetConfigShape } from "../domain/fleet-config"
import type { VipProbeObservation } from "../domain/liveness"

export type PeerVerdict = "reachable" | "unreachable" | "too_few_reporters" | "awaiting_reports" | "inconclusive"

/** What events and approvals say about the peers' view. */
export interface PeerView {
  readonly verdict: PeerVerdict
  /** Fresh reports about the current epoch. */
  readonly reporters: number
  /** Of those, how many reached the VIP (after the holder missed a heartbeat, when it is silent). */
  readonly reachable: number
  /** Of those, how many did not (after the holder missed a heartbeat / for the threshold). */
  readonly unreachable: number
  /** How many reached the holder's own overlay address: tells a hung API server (0) from a missing VIP. */
  readonly holder_address_reachable: number
  /** Median connect-to-answer time of the reporters that reached the VIP. */
  readonly rtt_ms_median: number | null
}

export type PeerViewConfig = Pick<FleetConfigShape, "silenceThresholdMs" | "heartbeatIntervalMs" | "vipProbeIntervalMs" | "vipProbeMinReporters">

/** How long after a holder's silence the reporters get to say whether the VIP still answers. */
export const evidenceWindowMs = (config: PeerViewConfig) => 2 * config.vipProbeIntervalMs + config.heartbeatIntervalMs

const median = (values: Array<number>) => {
  if (values.length === 0) return null
  const sorted = values.sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}

export const judgePeerView = (input: {
  readonly observations: Iterable<VipProbeObservation>
  readonly epoch: number
  readonly now: number
  /** When the holder was last heard of (or from when its silence counts). */
  readonly holderLastSeenAt: number
  /** Silent: for how long past the threshold (and any sharing allowance); undefined when heartbeating. */
  readonly silentPastThresholdMs: number | undefined
  readonly config: PeerViewConfig
}): PeerView => {
  const { now, config } = input
  const fresh: Array<VipProbeObservation> = []
  for (const o of input.observations) if (o.epoch === input.epoch && now - o.probedAt < config.silenceThresholdMs) fresh.push(o)
  const silent = input.silentPastThresholdMs !== undefined
  const afterSilence = (o: VipProbeObservation) => o.probedAt > input.holderLastSeenAt + config.heartbeatIntervalMs
  const reachable = fresh.filter((o) => o.ok && (!silent || afterSilence(o)))
  const unreachable = fresh.filter((o) =>
    o.ok ? false : silent ? afterSilence(o) : o.failingSince !== null && now - o.failingSince >= config.silenceThresholdMs
  )
  const n = fresh.length
  const verdict: PeerVerdict =
    n < config.vipProbeMinReporters
      ? "too_few_reporters"
      : silent
        ? reachable.length * 2 > n
          ? "reachable"
          : unreachable.length * 2 > n
            ? "unreachable"
            : input.silentPastThresholdMs! < evidenceWindowMs(config)
              ? "awaiting_reports"
              : "inconclusive"
        : unreachable.length * 2 > n
          ? "unreachable"
          : "reachable"
  return {
    verdict,
    reporters: n,
    reachable: reachable.length,
    unreachable: unreachable.length,
    holder_address_reachable: fresh.filter((o) => o.holderOk === true).length,
    rtt_ms_median: median(reachable.flatMap((o) => (o.rttMs === null ? [] : [o.rttMs])))
  }
}
