/**
 * WireGuard per network (SPEC §6, R16, #20). The SDK publishes each network's peer set — one
 * entry per peer with a key: its public key, endpoint and AllowedIPs (overlay /128 and /32 and
 * its node's pod subnet) — as versioned rows (`publishPeerSet`), and every peer's `wireguard`
 * push carries the change from the version its agent has (`peerSetChange`). The agent renders
 * the wg-quick file itself (`renderWireguardConfig` in @fleetplane/agent-protocol); the VIP
 * /128s travel apart, as `vip_routes`, and the private key never leaves the node.
 */
import { Effect } from "effect"
import type { PeerEntry, PeerSetChange, WireguardPayload } from "@fleetplane/agent-protocol"
import type { ReadContext, TxContext } from "../domain/transactor"
import type { NetworkId } from "../model/ids"
import type { NetworkRecord, PeerRecord } from "../store/records"
import type { PeerEntryRow } from "../store/store"

/** A peer's own overlay addresses, both families: its interface's `Address`. */
export const overlayPrefixesOf = (peer: Pick<PeerRecord, "overlay_address" | "overlay_ipv4_address">): Array<string> => [
  `${peer.overlay_address}/128`,
  `${peer.overlay_ipv4_address}/32`
]

/** A peer as every other peer lists it, or `undefined` while its agent has not reported its key (it cannot be listed yet). */
export const peerEntryOf = (peer: PeerRecord & { readonly hostname: string }): PeerEntry | undefined =>
  peer.public_key === null
    ? undefined
    : {
        peer_id: peer.id,
        label: peer.hostname,
        public_key: peer.public_key,
        ...(peer.endpoint === null ? {} : { endpoint: peer.endpoint }),
        allowed_ips: [...overlayPrefixesOf(peer), ...(peer.pod_subnet === null ? [] : [peer.pod_subnet])]
      }

/**
 * Publishes the network's peer set: the entries that differ from the published ones (and the
 * peers that are gone) are written at one new version. O(peers) to compare, O(changes) to
 * write. Returns the set's version after publishing.
 */
/**
 * How many versions of a network's removals are kept: an agent this far behind (offline through
 * that many changes of its network) is sent the full set instead of a delta. Bounds the rows a
 * network keeps for peers long gone.
 */
export const PEER_SET_HISTORY_VERSIONS = 1_000

/**
 * Publishes `peers` as the network's set: the entries that changed (added, moved, removed) are
 * written at a new version. Answers the current version and how many entries changed (0: none,
 * the version stays).
 */
export const publishPeerSet = (
  ctx: TxContext,
  networkId: NetworkId,
  peers: ReadonlyArray<PeerRecord & { readonly hostname: string }>
) =>
  Effect.gen(function* () {
    const published = new Map((yield* ctx.tx.listPeerEntries(networkId)).map((row) => [row.peer_id, row]))
    let version = 0
    for (const row of published.values()) version = Math.max(version, row.version)
    const changes: Array<Pick<PeerEntryRow, "peer_id" | "entry">> = []
    const present = new Set<string>()
    for (const peer of peers) {
      const entry = peerEntryOf(peer)
      if (entry === undefined) continue
      present.add(peer.id)
      const text = JSON.stringify(entry)
      if (published.get(peer.id)?.entry !== text) changes.push({ peer_id: peer.id, entry: text })
    }
    for (const row of published.values()) if (row.entry !== null && !present.has(row.peer_id)) changes.push({ peer_id: row.peer_id, entry: null })
    if (changes.length === 0) return { version, changed: 0 }
    yield* ctx.tx.writePeerEntries(networkId, version + 1, changes)
    // Removals older than the kept history go; agents further behind get the full set.
    const horizon = version + 1 - PEER_SET_HISTORY_VERSIONS
    if (horizon > 0 && [...published.values()].some((row) => row.entry === null && row.version <= horizon)) {
      yield* ctx.tx.purgeRemovedPeerEntries(networkId, horizon)
    }
    return { version: version + 1, changed: changes.length }
  })

/**
 * The change from `from` (the version the agent has; `undefined`: none) to the current set:
 * a delta of the rows written since, or the full set when the agent has none, claims a
 * version the store never reached (a database restored from an older backup), or is older
 * than the removals still kept (`PEER_SET_HISTORY_VERSIONS`).
 */
export const peerSetChange = (ctx: ReadContext, networkId: NetworkId, from: number | undefined) =>
  Effect.gen(function* () {
    const since = yield* ctx.tx.peerEntriesSince(networkId, from ?? 0)
    // None yet, newer than the store (a restored backup), or older than the removals kept.
    const full = from === undefined || from > since.current || from < since.purgedThrough
    const { rows } = full && from !== undefined ? yield* ctx.tx.peerEntriesSince(networkId, 0) : since
    const upserts: Array<PeerEntry> = []
    const removed: Array<string> = []
    for (const row of rows) {
      if (row.entry !== null) upserts.push(JSON.parse(row.entry) as PeerEntry)
      else if (!full) removed.push(row.peer_id)
    }
    return { from_version: full ? 0 : from, version: since.current, full, upserts, removed } satisfies PeerSetChange
  })

/** What a peer's stored `wireguard` desired config holds: its interface, and the set version that made it current. */
export interface StoredWireguardConfig {
  readonly network_id: string
  readonly interface_name: string
  readonly listen_port: number
  readonly peers_version: number
}

export const storedWireguardConfig = (network: NetworkRecord, peersVersion: number): StoredWireguardConfig => ({
  network_id: network.id,
  interface_name: network.interface_name,
  listen_port: network.listen_port,
  peers_version: peersVersion
})

/** The push payload for one peer: its interface and own addresses, and the peer-set change. */
export const wireguardPayloadOf = (stored: StoredWireguardConfig, self: PeerRecord, label: string, peers: PeerSetChange): WireguardPayload => ({
  network_id: stored.network_id,
  interface_name: stored.interface_name,
  listen_port: stored.listen_port,
  self: { peer_id: self.id, label, addresses: overlayPrefixesOf(self) },
  peers
})
