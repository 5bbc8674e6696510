/**
 * Field schemas shared by several messages: identifiers, bounded strings and lists,
 * and the node-state records that heartbeats and status reports carry.
 */
import { Schema } from "effect"
import { FIELD_LIMITS } from "../limits"

/** A message schema: `{ type, body }`, exactly the wire envelope minus its version. */
export const defineMessage = <T extends string, B extends Schema.Top>(type: T, body: B) =>
  Schema.Struct({ type: Schema.Literal(type), body })

const boundedString = (maxLength: number) => Schema.String.check(Schema.isMaxLength(maxLength))

/** An opaque identifier (`ins_…`, `net_…`, `clu_…`); the protocol only bounds its length. */
export const Id = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(FIELD_LIMITS.idLength))
export const ShortText = boundedString(FIELD_LIMITS.shortTextLength)
export const MessageText = boundedString(FIELD_LIMITS.messageLength)
export const ConfigContent = boundedString(FIELD_LIMITS.configContentLength)

/** A snake_case code such as `cluster_not_found`. */
export const Code = Schema.String.check(Schema.isPattern(/^[a-z][a-z0-9_]{0,63}$/))

export const boundedArray = <S extends Schema.Top>(item: S, maxItems: number = FIELD_LIMITS.listItems) =>
  Schema.Array(item).check(Schema.isMaxLength(maxItems))

/** Non-negative safe integer (sequence numbers, versions, epochs, milliseconds). */
export const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
export const PositiveCount = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/** A WireGuard public key: 32 bytes in base64 (44 characters, one `=` of padding). */
export const WireguardPublicKey = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$/))

export const ModuleName = Schema.Literals(["k3s-server", "k3s-agent"])
export type ModuleName = typeof ModuleName.Type

/** Config kinds the gateway pushes. Each `(kind, key)` has its own version sequence. */
export const ConfigKind = Schema.Literals(["wireguard", "vip_routes", "k3s", "kubeconfig", "token", "module_upgrade", "leave", "assignments", "agent_credential"])
export type ConfigKind = typeof ConfigKind.Type

/** One applied config: what an agent reports in `hello` so the gateway resends only newer versions. */
export const AppliedConfig = Schema.Struct({ kind: ConfigKind, key: Id, version: PositiveCount })
export type AppliedConfig = typeof AppliedConfig.Type

/** State of the k3s systemd unit (`k3s` on servers, `k3s-agent` on workers). */
export const K3sServiceState = Schema.Literals(["not_installed", "inactive", "activating", "active", "failed"])
export type K3sServiceState = typeof K3sServiceState.Type

export const K3sState = Schema.Struct({
  service: K3sServiceState,
  /** The Kubernetes Node object reports Ready. */
  node_ready: Schema.Boolean,
  version: Schema.optionalKey(ShortText),
  /** The node's pod CIDR as Kubernetes assigned it (flannel routes it over WireGuard). */
  pod_cidr: Schema.optionalKey(ShortText)
})
export type K3sState = typeof K3sState.Type

/**
 * How recent a peer's last handshake must be for its tunnel to count as up: WireGuard
 * re-handshakes every 2 minutes on a live tunnel (REKEY_AFTER_TIME, 120 s), so older than 3
 * means the tunnel is down.
 */
export const FRESH_HANDSHAKE_MS = 180_000

/**
 * One WireGuard interface's tunnels, summarised: how many peers its config lists and how many
 * handshook within `FRESH_HANDSHAKE_MS`. A count, not a list per peer, so a heartbeat stays the
 * same size in a network of ten peers or ten thousand (protocol version 3).
 */
export const WireguardInterfaceState = Schema.Struct({
  network_id: Id,
  peers: Count,
  fresh_handshakes: Count
}).check(Schema.makeFilter((state) => state.fresh_handshakes <= state.peers, { expected: "fresh_handshakes at most peers" }))
export type WireguardInterfaceState = typeof WireguardInterfaceState.Type

/** The summary of an interface from each peer's time since its last handshake (`null`: never). */
export const summarizeHandshakes = (networkId: string, ages: Iterable<number | null>): WireguardInterfaceState => {
  let peers = 0
  let fresh = 0
  for (const age of ages) {
    peers++
    if (age !== null && age <= FRESH_HANDSHAKE_MS) fresh++
  }
  return { network_id: networkId, peers, fresh_handshakes: fresh }
}

export const Load = Schema.Struct({
  /** 1-minute load average divided by the core count (can exceed 1). */
  cpu_ratio: Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)),
  /** Used memory over total memory, 0..1. */
  memory_ratio: Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))
})
export type Load = typeof Load.Type

export const ModuleState = Schema.Literals(["absent", "running", "upgrading", "failed"])
export const ModuleStatus = Schema.Struct({
  module_name: ModuleName,
  version_id: Schema.NullOr(Id),
  state: ModuleState,
  detail: Schema.optionalKey(MessageText)
})
export type ModuleStatus = typeof ModuleStatus.Type

export const HeldVip = Schema.Struct({ vip_id: Id, epoch: Count })

/** A scalar value of a module assignment's `config` (its fields are the SDK's; the protocol only bounds them). */
const ConfigValue = Schema.Union([ShortText, Schema.Finite, Schema.Boolean, Schema.Null])

/**
 * R24: one module assigned to the instance's template — what its agent joins, and with which
 * target. The assignments are the only source of it: an agent needs no module or cluster flags,
 * and a join that disagrees with them is refused (`assignment_mismatch`).
 */
export const ModuleAssignment = Schema.Struct({
  module_name: ModuleName,
  module_version_id: Schema.NullOr(Id),
  /** The cluster to join; `null`: a k3s-server creates one, a k3s-agent joins the most recently activated. */
  target_cluster_id: Schema.NullOr(Id),
  config: Schema.Record(ShortText, ConfigValue).check(Schema.isMaxProperties(64))
})
export type ModuleAssignment = typeof ModuleAssignment.Type

/**
 * An agent's WireGuard public key for one network, and the UDP endpoint (`host:port`) its
 * peers should send to: the node's public address, or what a NAT forwards to it. The gateway
 * never guesses it from the address the WebSocket comes from (wrong behind NAT or a proxy);
 * it checks the value itself and refuses a malformed one with `invalid_endpoint`.
 */
export const WireguardKeyEntry = Schema.Struct({
  network_id: Id,
  public_key: WireguardPublicKey,
  endpoint: Schema.optionalKey(ShortText)
})
export type WireguardKeyEntry = typeof WireguardKeyEntry.Type
export type HeldVip = typeof HeldVip.Type

/** A structured error inside a message (config acks, `error`). */
export const ErrorDetail = Schema.Struct({ code: Code, message: MessageText })
export type ErrorDetail = typeof ErrorDetail.Type
