/**
 * Session messages: authentication (`hello` / `welcome`), liveness (`heartbeat`),
 * state changes (`status_report`) and protocol-level `error`s.
 */
import { Schema } from "effect"
import {
  AppliedConfig,
  defineMessage as message,
  boundedArray,
  Code,
  Count,
  HeldVip,
  Id,
  K3sState,
  Load,
  MessageText,
  ModuleAssignment,
  ModuleStatus,
  PositiveCount,
  ShortText,
  WireguardInterfaceState,
  WireguardKeyEntry
} from "./fields"
import { FIELD_LIMITS } from "../limits"

/** Agent -> gateway, first frame. Nothing else is accepted before it authenticates. */
export const HelloBody = Schema.Struct({
  instance_id: Id,
  /** The instance's agent credential, shown once at provisioning; compared in constant time. */
  credential: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(FIELD_LIMITS.credentialLength)),
  agent_version: ShortText,
  /** Protocol versions the agent speaks; the gateway answers with one of them. */
  protocol_versions: boundedArray(PositiveCount, 16).check(Schema.isMinLength(1)),
  /** Features such as `terminal`, `wireguard`, `k3s`, `module_upgrade`. */
  capabilities: boundedArray(ShortText, 64),
  /** The agent's own WireGuard public keys, one per SD-WAN network. Private keys never leave the node. */
  wireguard_keys: boundedArray(WireguardKeyEntry),
  /** Config versions already applied on the node; the gateway resends only newer ones. */
  applied: boundedArray(AppliedConfig),
  /** VIPs the node currently holds, with the epoch it holds them at (for fencing). */
  held_vips: boundedArray(HeldVip),
  /** The peer-set version the node has of each network (`wireguard` pushes): later changes arrive as deltas from it. */
  peer_versions: Schema.optionalKey(boundedArray(Schema.Struct({ network_id: Id, version: Count }), 256))
})
export const Hello = message("hello", HelloBody)
export type Hello = typeof Hello.Type

/** Gateway -> agent, the answer to a valid `hello`. */
export const WelcomeBody = Schema.Struct({
  session_id: Id,
  gateway_id: Id,
  protocol_version: PositiveCount,
  /** Send a heartbeat this often. */
  heartbeat_interval_ms: PositiveCount,
  /** The gateway declares the agent silent after this long without a heartbeat. */
  silence_threshold_ms: PositiveCount,
  server_time_ms: Count,
  max_frame_bytes: PositiveCount,
  /** The SD-WAN networks this instance is a peer of; the agent needs a WireGuard key for each. */
  network_ids: Schema.optionalKey(boundedArray(Id, 256)),
  /** The same networks with what the agent needs to advertise its endpoint before any config arrives. */
  networks: Schema.optionalKey(boundedArray(Schema.Struct({ network_id: Id, interface_name: ShortText, listen_port: PositiveCount }), 256)),
  /** R24: the module assignments of the instance's template (changes follow as `assignments` pushes). */
  assignments: Schema.optionalKey(boundedArray(ModuleAssignment, 16)),
  /**
   * The other gateways' agent endpoints (`wss://…/v1/agent`): where to reconnect when this one
   * fails or drains (closes with 1001). An agent adds them after the ones it was configured with.
   */
  gateways: Schema.optionalKey(boundedArray(Schema.String.check(Schema.isPattern(/^wss?:\/\/[^\s]{1,500}$/)), 32)),
  /** How often a reporter probes the VIPs whose `probe.reporters` name it (each probe times out after as long). */
  vip_probe_interval_ms: Schema.optionalKey(PositiveCount)
})
export const Welcome = message("welcome", WelcomeBody)
export type Welcome = typeof Welcome.Type

/** Agent -> gateway: its WireGuard public keys (and endpoints), when it made a key for a network or its endpoint changed. */
export const WireguardKeysBody = Schema.Struct({
  keys: boundedArray(WireguardKeyEntry, 256)
})
export const WireguardKeys = message("wireguard_keys", WireguardKeysBody)
export type WireguardKeys = typeof WireguardKeys.Type

/**
 * The latest probe of one VIP by a reporter (SPEC R26): durations relative to the heartbeat that
 * carries it, so the agent's and the gateway's clocks need not agree.
 */
export const VipProbeReport = Schema.Struct({
  vip_id: Id,
  /** The epoch of the route the probe was made against. */
  epoch: Count,
  /** The API server answered on the VIP within the timeout. */
  ok: Schema.Boolean,
  /** Connect to first byte, when `ok`. */
  rtt_ms: Schema.NullOr(Count),
  /** How long ago the probe finished. */
  age_ms: Count,
  /**
   * How long the VIP has not answered since it last did at this epoch (0 when `ok`). Null when it
   * has not answered this reporter at this epoch yet: the reporter's own tunnel may not be up (a
   * node coming up), which says nothing about the holder.
   */
  failing_for_ms: Schema.NullOr(Count),
  /** Whether the holder's own overlay address answered on the same port; null before the first probe of it. */
  holder_ok: Schema.NullOr(Schema.Boolean)
})
export type VipProbeReport = typeof VipProbeReport.Type

/** Agent -> gateway, every `heartbeat_interval_ms`. The gateway keeps it in memory only. */
export const HeartbeatBody = Schema.Struct({
  /** Increases by one per heartbeat within a session. */
  seq: Count,
  k3s: K3sState,
  wireguard: boundedArray(WireguardInterfaceState, 64),
  load: Load,
  /** Only from reporters (see `VipProbePlan`): one entry per VIP it probes. */
  vip_probes: Schema.optionalKey(boundedArray(VipProbeReport, 64))
})
export const Heartbeat = message("heartbeat", HeartbeatBody)
export type Heartbeat = typeof Heartbeat.Type

/** Agent -> gateway, on a state change worth recording (k3s became ready, a module upgraded or failed). */
export const StatusReportBody = Schema.Struct({
  k3s: K3sState,
  modules: boundedArray(ModuleStatus, 64),
  note: Schema.optionalKey(MessageText)
})
export const StatusReport = message("status_report", StatusReportBody)
export type StatusReport = typeof StatusReport.Type

/** Either direction: something the sender could not process. */
export const ErrorBody = Schema.Struct({
  code: Code,
  message: MessageText,
  /** The message type the error is about, when there is one. */
  ref_type: Schema.optionalKey(ShortText)
})
export const ErrorMessage = message("error", ErrorBody)
export type ErrorMessage = typeof ErrorMessage.Type
export type HelloBody = typeof HelloBody.Type
export type WelcomeBody = typeof WelcomeBody.Type
export type HeartbeatBody = typeof HeartbeatBody.Type
export type StatusReportBody = typeof StatusReportBody.Type
export type ErrorBody = typeof ErrorBody.Type
export type WireguardKeysBody = typeof WireguardKeysBody.Type
