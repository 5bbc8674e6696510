/**
 * R14: how good a failover candidate is, as a deterministic number in [0, 1].
 *
 *   score = 0                                       if the candidate is silent, never seen, or not ready
 *   score = 0.40 * freshness                        1 - (time since last heartbeat / silence threshold)
 *         + 0.20 * readiness                        1: k3s active and the Kubernetes node Ready (the gate above)
 *         + 0.25 * reachability                     share of its WireGuard peers on the VIP's network
 *                                                   with a handshake in the last 180 s
 *         + 0.15 * headroom                         1 - max(cpu load per core, memory used), clamped to [0, 1]
 *
 * rounded to three decimals. Ties are broken by peer id, so the same state always picks
 * the same candidate.
 */
import type { AgentLivenessEntry } from "../domain/liveness"

export interface ScoreComponents {
  readonly freshness: number
  readonly readiness: number
  readonly reachability: number
  readonly headroom: number
}

export interface CandidateScore {
  readonly score: number
  readonly components: ScoreComponents
  /** Why the score is 0, when it is. */
  readonly disqualified: string | null
}

const clamp = (value: number) => Math.min(1, Math.max(0, value))
const round3 = (value: number) => Math.round(value * 1000) / 1000

export const WEIGHTS = { freshness: 0.4, readiness: 0.2, reachability: 0.25, headroom: 0.15 } as const

export const scoreFailoverCandidate = (
  entry: AgentLivenessEntry | undefined,
  networkId: string,
  now: number,
  silenceThresholdMs: number
): CandidateScore => {
  const zero = (disqualified: string): CandidateScore => ({
    score: 0,
    components: { freshness: 0, readiness: 0, reachability: 0, headroom: 0 },
    disqualified
  })
  if (entry === undefined || entry.k3s === undefined) return zero("no heartbeat received")
  const age = now - entry.lastSeenAt
  if (age >= silenceThresholdMs) return zero(`silent for ${age} ms`)
  if (!(entry.k3s.service === "active" && entry.k3s.node_ready)) return zero(`k3s ${entry.k3s.service}, node ${entry.k3s.node_ready ? "ready" : "not ready"}`)

  const tunnels = entry.wireguard.find((w) => w.network_id === networkId)
  const components: ScoreComponents = {
    freshness: clamp(1 - age / silenceThresholdMs),
    readiness: 1,
    reachability: tunnels === undefined || tunnels.peers === 0 ? 0 : tunnels.fresh_handshakes / tunnels.peers,
    headroom: entry.load === undefined ? 0 : clamp(1 - Math.max(entry.load.cpu_ratio, entry.load.memory_ratio))
  }
  const score =
    WEIGHTS.freshness * components.freshness +
    WEIGHTS.readiness * components.readiness +
    WEIGHTS.reachability * components.reachability +
    WEIGHTS.headroom * components.headroom
  return { score: round3(score), components, disqualified: null }
}

