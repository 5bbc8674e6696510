/**
 * Stored desired configs as the pushes an agent receives. Every kind is sent as stored except
 * `wireguard`, whose stored config names only the peer-set version that made it current: the
 * push carries the change from the version this agent has (#20). Agents at the same version
 * get the same change, so it is read once and shared (a bounded cache, keyed by network and
 * starting version, used only while it is at least as new as the config being sent).
 */
import { Effect } from "effect"
import type { ConfigPushBody, PeerSetChange } from "@fleetplane/agent-protocol"
import type { ReadContext } from "../domain/transactor"
import type { AgentIdentity } from "../model/entities"
import type { NetworkId } from "../model/ids"
import type { DesiredConfigRecord, PeerRecord } from "../store/records"
import { peerSetChange, wireguardPayloadOf, type StoredWireguardConfig } from "../config/wireguard"

/** The peer-set version an agent has of each network (from its hello, then from what was sent to it). */
export type PeerVersions = ReadonlyMap<string, number>

/** A stored desired config as the agent receives it (the one place this shape is made); `wireguard` needs `completePushes`. */
export const toPush = (record: DesiredConfigRecord): ConfigPushBody =>
  ({ kind: record.kind, key: record.key, version: record.version, payload: record.payload }) as ConfigPushBody

const CACHED_CHANGES = 256

export const createPushCompleter = () => {
  const changes = new Map<string, PeerSetChange>()

  const changeFor = (ctx: ReadContext, networkId: NetworkId, from: number | undefined, atLeast: number) =>
    Effect.gen(function* () {
      const key = `${networkId}\u0000${from ?? "none"}`
      const cached = changes.get(key)
      if (cached !== undefined && cached.version >= atLeast) return cached
      const change = yield* peerSetChange(ctx, networkId, from)
      changes.delete(key)
      changes.set(key, change)
      if (changes.size > CACHED_CHANGES) changes.delete(changes.keys().next().value!)
      return change
    })

  /** Sessions asking for one network's configs at once: above this many, its peers are read in one query instead of one each. */
  const READ_ALL_PEERS_ABOVE = 16

  /**
   * The pushes for each request's records, in order. A `wireguard` config is left out when the
   * instance is no longer a peer of the network, or while it still holds a payload from before
   * peer sets (the network is being published again; its new version follows). Many sessions
   * at once (a publish reaching every peer) cost one read of the network's peers, and each
   * starting version's change is read once.
   */
  const completeMany = (ctx: ReadContext, requests: ReadonlyArray<PushRequest>) =>
    Effect.gen(function* () {
      const askers = new Map<string, number>()
      for (const { records } of requests) {
        for (const record of records) if (record.kind === "wireguard") askers.set(record.key, (askers.get(record.key) ?? 0) + 1)
      }
      const peersOf = new Map<string, Map<string, PeerRecord>>()
      const selfOf = (identity: AgentIdentity, networkId: NetworkId) =>
        Effect.gen(function* () {
          if ((askers.get(networkId) ?? 0) <= READ_ALL_PEERS_ABOVE) return yield* ctx.tx.findPeer(identity.accountId, networkId, identity.instanceId)
          let byInstance = peersOf.get(networkId)
          if (byInstance === undefined) {
            byInstance = new Map((yield* ctx.tx.listPeersOfNetwork(identity.accountId, networkId)).map((peer) => [peer.instance_id as string, peer]))
            peersOf.set(networkId, byInstance)
          }
          const self = byInstance.get(identity.instanceId)
          return self?.account_id === identity.accountId ? self : undefined
        })
      const results: Array<Array<ConfigPushBody>> = []
      for (const { identity, records, peerVersions } of requests) {
        const pushes: Array<ConfigPushBody> = []
        for (const record of records) {
          if (record.kind !== "wireguard") {
            pushes.push(toPush(record))
            continue
          }
          const stored = record.payload as Partial<StoredWireguardConfig>
          if (typeof stored.peers_version !== "number") continue
          const networkId = stored.network_id as NetworkId
          const self = yield* selfOf(identity, networkId)
          if (self === undefined) continue
          const change = yield* changeFor(ctx, networkId, peerVersions.get(networkId), stored.peers_version)
          pushes.push({ kind: "wireguard", key: record.key, version: record.version, payload: wireguardPayloadOf(stored as StoredWireguardConfig, self, identity.hostname, change) })
        }
        results.push(pushes)
      }
      return results
    })

  const completePushes = (ctx: ReadContext, identity: AgentIdentity, records: ReadonlyArray<DesiredConfigRecord>, peerVersions: PeerVersions) =>
    Effect.map(completeMany(ctx, [{ identity, records, peerVersions }]), (results) => results[0]!)

  return { completePushes, completeMany }
}

/** One session's desired configs to turn into pushes, with the peer-set versions its agent has. */
export interface PushRequest {
  readonly identity: AgentIdentity
  readonly records: ReadonlyArray<DesiredConfigRecord>
  readonly peerVersions: PeerVersions
}
