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

const changeKey = (networkId: string, from: number | undefined) => `${networkId}\u0000${from ?? "none"}`
const selfKey = (networkId: string, instanceId: string) => `${networkId}\u0000${instanceId}`

/**
 * A stored `wireguard` config that can be pushed: none while it still holds a payload from
 * before peer sets (the network is being published again; its new version follows).
 */
const wireguardStored = (record: DesiredConfigRecord): (StoredWireguardConfig & { readonly network_id: NetworkId }) | undefined => {
  const stored = record.payload as Partial<StoredWireguardConfig>
  return typeof stored.peers_version === "number" ? (stored as StoredWireguardConfig & { readonly network_id: NetworkId }) : undefined
}

export const createPushCompleter = () => {
  const changes = new Map<string, PeerSetChange>()

  const changeFor = (ctx: ReadContext, networkId: NetworkId, from: number | undefined, atLeast: number) =>
    Effect.gen(function* () {
      const key = changeKey(networkId, from)
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
   * Reads, in the caller's transaction, everything the requests' pushes are made of — the
   * network's peers (one query when many sessions ask), each starting version's change once —
   * and answers a `PreparedPushes` that makes each session's pushes on demand, without the
   * store. A publish reaching 10,000 sessions then holds no pushes while its slices go out:
   * made just before they are sent, they die young instead of being promoted (#20).
   */
  const prepareMany = (ctx: ReadContext, requests: ReadonlyArray<PushRequest>) =>
    Effect.gen(function* () {
      const askers = new Map<string, number>()
      for (const { records } of requests) {
        for (const record of records) if (record.kind === "wireguard") askers.set(record.key, (askers.get(record.key) ?? 0) + 1)
      }
      /** Networks read whole: instance id -> peer. */
      const peersOf = new Map<string, Map<string, PeerRecord>>()
      /** Peers read one by one (few sessions asked for the network): network + instance -> peer, or none. */
      const selves = new Map<string, PeerRecord | undefined>()
      /** Network + starting version -> the change from it. */
      const changesRead = new Map<string, PeerSetChange>()

      const selfIn = (identity: AgentIdentity, networkId: string): PeerRecord | undefined => {
        const whole = peersOf.get(networkId)
        const self = whole !== undefined ? whole.get(identity.instanceId) : selves.get(selfKey(networkId, identity.instanceId))
        return self?.account_id === identity.accountId ? self : undefined
      }
      const readSelf = (identity: AgentIdentity, networkId: NetworkId) =>
        Effect.gen(function* () {
          if ((askers.get(networkId) ?? 0) <= READ_ALL_PEERS_ABOVE) {
            const key = selfKey(networkId, identity.instanceId)
            if (!selves.has(key)) selves.set(key, yield* ctx.tx.findPeer(identity.accountId, networkId, identity.instanceId))
          } else if (!peersOf.has(networkId)) {
            peersOf.set(networkId, new Map((yield* ctx.tx.listPeersOfNetwork(identity.accountId, networkId)).map((peer) => [peer.instance_id as string, peer])))
          }
          return selfIn(identity, networkId)
        })

      let pushCount = 0
      for (const { identity, records, peerVersions } of requests) {
        for (const record of records) {
          const stored = record.kind === "wireguard" ? wireguardStored(record) : undefined
          if (stored === undefined) {
            if (record.kind !== "wireguard") pushCount++
            continue
          }
          if ((yield* readSelf(identity, stored.network_id)) === undefined) continue
          const from = peerVersions.get(stored.network_id)
          const key = changeKey(stored.network_id, from)
          const read = changesRead.get(key)
          if (read === undefined || read.version < stored.peers_version) changesRead.set(key, yield* changeFor(ctx, stored.network_id, from, stored.peers_version))
          pushCount++
        }
      }

      const pushesFor = (index: number, peerVersions: PeerVersions): ReadonlyArray<ConfigPushBody> | undefined => {
        const { identity, records } = requests[index]!
        const pushes: Array<ConfigPushBody> = []
        for (const record of records) {
          if (record.kind !== "wireguard") {
            pushes.push(toPush(record))
            continue
          }
          const stored = wireguardStored(record)
          if (stored === undefined) continue
          const self = selfIn(identity, stored.network_id)
          if (self === undefined) continue
          const change = changesRead.get(changeKey(stored.network_id, peerVersions.get(stored.network_id)))
          // The session's version moved to one not read here: its pushes must be made again.
          if (change === undefined || change.version < stored.peers_version) return undefined
          pushes.push({ kind: "wireguard", key: record.key, version: record.version, payload: wireguardPayloadOf(stored, self, identity.hostname, change) })
        }
        return pushes
      }
      return { size: requests.length, pushCount, pushesFor } satisfies PreparedPushes
    })

  /**
   * The pushes for each request's records, in order, made at once (one session, or a test).
   * From a copy of each request's versions: the caller's map may be a live session's, changed
   * while the transaction runs, and the pushes must be made from the versions that were read.
   */
  const completeMany = (ctx: ReadContext, requests: ReadonlyArray<PushRequest>) => {
    const fixed = requests.map((request) => ({ ...request, peerVersions: new Map(request.peerVersions) }))
    return Effect.map(prepareMany(ctx, fixed), (prepared) => fixed.map(({ peerVersions }, i) => prepared.pushesFor(i, peerVersions)!))
  }

  const completePushes = (ctx: ReadContext, identity: AgentIdentity, records: ReadonlyArray<DesiredConfigRecord>, peerVersions: PeerVersions) =>
    Effect.map(completeMany(ctx, [{ identity, records, peerVersions }]), (results) => results[0]!)

  return { completePushes, completeMany, prepareMany }
}

/** One session's desired configs to turn into pushes, with the peer-set versions its agent has. */
export interface PushRequest {
  readonly identity: AgentIdentity
  readonly records: ReadonlyArray<DesiredConfigRecord>
  readonly peerVersions: PeerVersions
}

/**
 * Pushes for many sessions whose store reads are done (`AgentPort.completePushesMany`,
 * `pendingPushesMany`). `pushesFor(i, peerVersions)` makes request i's pushes from the
 * peer-set versions its session has now — the ones asked with, or undefined when they moved
 * to a version this preparation did not read (ask again for that session alone). A `wireguard`
 * config is left out when the instance is no longer a peer of the network, or while it still
 * holds a payload from before peer sets.
 */
export interface PreparedPushes {
  /** How many sessions were asked for. */
  readonly size: number
  /** How many pushes the requests come to, as asked. */
  readonly pushCount: number
  readonly pushesFor: (index: number, peerVersions: PeerVersions) => ReadonlyArray<ConfigPushBody> | undefined
}
