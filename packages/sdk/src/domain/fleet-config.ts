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
  /** R26: how often reporters probe their VIPs over the overlay (sent in `welcome`); each probe times out after as long. */
  readonly vipProbeIntervalMs: number
  /** R26: at most this many of a cluster's nodes probe its VIP (0: nobody probes; failover as before R26). */
  readonly vipProbeReporters: number
  /** R26: fewer fresh reports than this and the peers' view is not used ("too few reporters"). */
  readonly vipProbeMinReporters: number
  /**
   * How long a checked API key's identity may be reused without reading the store (0: read it
   * on every request). A revocation through this process, or announced by another gateway, or
   * written to the SQLite file by another process, is seen at once (after missed signals every
   * key is read again); this bounds one written to the database without the SDK.
   */
  readonly apiKeyCacheMs: number
}

export const DEFAULT_FLEET_CONFIG: FleetConfigShape = {
  heartbeatIntervalMs: 5_000,
  silenceThresholdMs: 15_000,
  sensorIntervalMs: 100,
  confirmationTtlMs: 5 * 60_000,
  networkSyncIntervalMs: 100,
  livenessSyncMs: 1_000,
  leaseRetryMs: 1_000,
  vipProbeIntervalMs: 2_000,
  vipProbeReporters: 5,
  vipProbeMinReporters: 2,
  apiKeyCacheMs: 10_000
}

export const FleetConfig = Context.Reference<FleetConfigShape>("@fleetplane/sdk/domain/FleetConfig", {
  defaultValue: () => DEFAULT_FLEET_CONFIG
})
