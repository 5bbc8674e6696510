/**
 * Level-triggered config delivery. Every `(kind, key)` has a desired version; the
 * gateway pushes it, the agent applies it and acks that version (or the error).
 * On reconnect the agent lists what it applied and receives only what is newer.
 */
import { Schema } from "effect"
import { FIELD_LIMITS } from "../limits"
import { ClusterRole } from "./join"
import { boundedArray, ConfigContent, ConfigKind, Count, defineMessage as message, ErrorDetail, Id, MessageText, ModuleAssignment, ModuleName, PositiveCount, ShortText, WireguardPublicKey } from "./fields"

const push = <K extends string, P extends Schema.Top>(kind: K, payload: P) =>
  Schema.Struct({ kind: Schema.Literal(kind), key: Id, version: PositiveCount, payload })

/**
 * One peer of a network as every other peer lists it: a [Peer] section in structured form.
 * `allowed_ips` are its overlay /128 and /32 and its node's pod subnet (VIP routes travel apart).
 */
export const PeerEntry = Schema.Struct({
  peer_id: Id,
  /** The peer's hostname, written as a comment beside its [Peer]. */
  label: ShortText,
  public_key: WireguardPublicKey,
  endpoint: Schema.optionalKey(ShortText),
  allowed_ips: boundedArray(ShortText, 8)
})
export type PeerEntry = typeof PeerEntry.Type

/**
 * A network's peer set, as a change from the version the agent has (`from_version`) to
 * `version` (#20): the peers added or changed since, and the ids of those removed. `full`
 * replaces the whole set (first sync, or after the agent's copy went out of step). Every peer
 * of a network receives the same change, own entry included, so one encoding serves all; a
 * peer joining costs each other peer one entry. A change larger than one frame travels in
 * `part`s of the same version, applied together once the last has arrived.
 */
export const PeerSetChange = Schema.Struct({
  from_version: Count,
  version: Count,
  full: Schema.Boolean,
  upserts: boundedArray(PeerEntry),
  removed: boundedArray(Id),
  part: Schema.optionalKey(Schema.Struct({ index: Count, count: PositiveCount }))
})
export type PeerSetChange = typeof PeerSetChange.Type

/**
 * The WireGuard interface of one network (`wg-sdwan-<handle>`): this peer's own addresses and
 * listen port, and its peer set as a change. The agent renders the wg-quick file itself (with
 * `renderWireguardConfig`) and adds `PrivateKey` from its own key pair.
 */
export const WireguardPayload = Schema.Struct({
  network_id: Id,
  interface_name: ShortText,
  listen_port: PositiveCount,
  self: Schema.Struct({ peer_id: Id, label: ShortText, addresses: boundedArray(ShortText, 4) }),
  peers: PeerSetChange
})
export type WireguardPayload = typeof WireguardPayload.Type
/** Where one VIP /128 is routed: to the peer (by WireGuard public key) that holds it at `epoch`. */
/**
 * Which peers check a VIP over the overlay and how (SPEC R26). A bounded sample of the cluster's
 * nodes (never the holder) is named by instance id; each of them probes `address`:`port` and the
 * holder's own overlay address every `vip_probe_interval_ms` (welcome) and reports the results in
 * its heartbeats (`vip_probes`). Every other peer ignores it.
 */
export const VipProbePlan = Schema.Struct({
  /** The VIP's address in its cluster's IP family, and the API server's port. */
  address: ShortText,
  port: PositiveCount,
  /** The holder's overlay address in the same family: tells a hung API server from a missing VIP. */
  holder_address: ShortText,
  reporters: boundedArray(Id, 32)
})
export type VipProbePlan = typeof VipProbePlan.Type

export const VipRoute = Schema.Struct({
  vip_id: Id,
  address: ShortText,
  /** The VIP's IPv4 address (a /32), routed to the same holder. */
  address_ipv4: Schema.optionalKey(ShortText),
  public_key: ShortText,
  epoch: Count,
  probe: Schema.optionalKey(VipProbePlan)
})
export type VipRoute = typeof VipRoute.Type
/**
 * The VIP part of a network's WireGuard config (R16), kept apart from the peer list so a
 * failover sends every peer a few hundred bytes instead of its whole config. The agent adds
 * each address to the AllowedIPs of the holder's [Peer] (`withVipRoutes`) and applies the result.
 */
export const VipRoutesPayload = Schema.Struct({
  network_id: Id,
  interface_name: ShortText,
  routes: boundedArray(VipRoute)
})
export type VipRoutesPayload = typeof VipRoutesPayload.Type
/** A file the agent writes beside a config (servers get the cluster CA under /var/lib/rancher/k3s/server/tls). */
export const ConfigFile = Schema.Struct({
  path: Schema.String.check(Schema.isPattern(/^\/[A-Za-z0-9._/-]{1,255}$/)),
  content: ConfigContent,
  /** Unix permission bits, e.g. 0o600 for keys. */
  mode: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 0o777 }))
})
export type ConfigFile = typeof ConfigFile.Type

/** `/etc/rancher/k3s/config.yaml` for this node, and the files k3s needs beside it. */
export const K3sPayload = Schema.Struct({
  cluster_id: Id,
  role: ClusterRole,
  content: ConfigContent,
  files: boundedArray(ConfigFile, 16)
})
/** An admin kubeconfig for the cluster (pushed to control-plane nodes). */
export const KubeconfigPayload = Schema.Struct({
  cluster_id: Id,
  content: ConfigContent
})
/** The cluster's current join token (R12). */
export const TokenPayload = Schema.Struct({
  cluster_id: Id,
  token: ShortText
})
/** Upgrade a module to a version (rolling upgrades, R19). */
export const ModuleUpgradePayload = Schema.Struct({
  module_name: ModuleName,
  module_id: Id,
  version_id: Id,
  run_id: Id
})
/** Leave a cluster (it was decommissioned, R18): stop k3s, take the cluster network's interface down, keep the machine. */
export const LeavePayload = Schema.Struct({
  cluster_id: Id,
  reason: MessageText,
  /** The cluster's SD-WAN network, whose WireGuard interface the node takes down. */
  network_id: Schema.optionalKey(Id)
})

/** R24: the instance's module assignments, pushed whenever they change (key `modules`). */
export const AssignmentsPayload = Schema.Struct({
  assignments: boundedArray(ModuleAssignment, 16)
})
export type AssignmentsPayload = typeof AssignmentsPayload.Type

/**
 * A rotated agent credential (key `agent`): the agent stores it (0600) in place of the one it
 * authenticated with, then acks. Until it acks, the previous credential keeps working for the
 * grace the operator chose; the ack retires it. Once acked, the stored push is emptied (the
 * secret is not kept in the database), so an agent that receives one without `credential`
 * has nothing to store.
 */
export const AgentCredentialPayload = Schema.Struct({
  credential: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(FIELD_LIMITS.credentialLength)))
})
export type AgentCredentialPayload = typeof AgentCredentialPayload.Type

export const ConfigPushBody = Schema.Union([
  push("wireguard", WireguardPayload),
  push("vip_routes", VipRoutesPayload),
  push("k3s", K3sPayload),
  push("kubeconfig", KubeconfigPayload),
  push("token", TokenPayload),
  push("module_upgrade", ModuleUpgradePayload),
  push("leave", LeavePayload),
  push("assignments", AssignmentsPayload),
  push("agent_credential", AgentCredentialPayload)
])
export type ConfigPushBody = typeof ConfigPushBody.Type
export const ConfigPush = message("config_push", ConfigPushBody)
export type ConfigPush = typeof ConfigPush.Type

export const ConfigAckBody = Schema.Struct({
  kind: ConfigKind,
  key: Id,
  version: PositiveCount,
  status: Schema.Literals(["applied", "failed"]),
  /** Present when `status` is `failed`. */
  error: Schema.optionalKey(ErrorDetail)
})
export const ConfigAck = message("config_ack", ConfigAckBody)
export type ConfigAck = typeof ConfigAck.Type
export type ConfigAckBody = typeof ConfigAckBody.Type
