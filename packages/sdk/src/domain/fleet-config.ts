/**
 * Tunables with production defaults. Provide `FleetConfig` with other values to change them
 * (tests shorten the timings; a gateway passes its own heartbeat settings).
 */
import { Context } from "effect"

export interface FleetConfigShape {
  /** How often agents send heartbeats (sent to them in `welcome`). */
  readonly heartbeatIntervalMs: number
  /** A VIP holder silent this long is declared silent (R15). Three missed heartbeats by default. */
  readonly silenceThresholdMs: number
  /** How often the silence sensor looks at VIP holders. Its latency is at most this on top of the threshold. */
  readonly sensorIntervalMs: number
  /** How long a confirmation token for a destructive action stays valid. */
  readonly confirmationTtlMs: number
  /**
   * How often requested WireGuard re-renders run. Agents registering keys within one interval
   * cost one render of their network (O(peers^2) text), not one each.
   */
  readonly networkSyncIntervalMs: number
  /** Several gateways on PostgreSQL: how often each shares and reads agent liveness. */
  readonly livenessSyncMs: number
  /** Several gateways on PostgreSQL: how often a gateway without the leader lease tries to take it. */
  readonly leaseRetryMs: number
}

export const DEFAULT_FLEET_CONFIG: FleetConfigShape = {
  heartbeatIntervalMs: 5_000,
  silenceThresholdMs: 15_000,
  sensorIntervalMs: 100,
  confirmationTtlMs: 5 * 60_000,
  networkSyncIntervalMs: 100,
  livenessSyncMs: 1_000,
  leaseRetryMs: 1_000
}

export const FleetConfig = Context.Reference<FleetConfigShape>("@fleetplane/sdk/domain/FleetConfig", {
  defaultValue: () => DEFAULT_FLEET_CONFIG
})
