/**
 * A network's peer set on the agent's side (#20): the copy the agent keeps, changed by the
 * `peers` part of each `wireguard` push, and the splitting and joining of a change too large
 * for one frame. Both sides use these functions, so what the gateway sends is what the agent
 * can put back together.
 */
import type { ConfigPushBody, PeerEntry, PeerSetChange, WireguardPayload } from "./messages/config"

/** What an agent keeps of one network's peers: the version it has and every peer, its own included. */
export interface PeerSetState {
  readonly version: number
  readonly peers: Readonly<Record<string, PeerEntry>>
}

/**
 * A delta that does not start where the agent's copy is (a push lost to a crash between apply
 * and save, a copy restored from an old backup). The agent acks the push `failed` with this
 * code and keeps its copy; the gateway answers with the full set.
 */
export class PeerSetOutOfSyncError extends Error {
  readonly code = "peer_set_out_of_sync"
  constructor(readonly have: number | undefined, readonly change: Pick<PeerSetChange, "from_version" | "version">) {
    super(`peer set out of step: this node has version ${have ?? "none"}, the change goes from ${change.from_version} to ${change.version}; the gateway resends the full set`)
  }
}

/** The agent's copy after a change: a full set replaces it, a delta must start at its version. */
export const applyPeerSetChange = (current: PeerSetState | undefined, change: PeerSetChange): PeerSetState => {
  if (!change.full && (current === undefined || current.version !== change.from_version)) throw new PeerSetOutOfSyncError(current?.version, change)
  const peers: Record<string, PeerEntry> = change.full ? {} : { ...current!.peers }
  for (const id of change.removed) delete peers[id]
  for (const entry of change.upserts) peers[entry.peer_id] = entry
  return { version: change.version, peers }
}

/** The most entries one part carries (a list field's bound is 4,096). */
export const PEER_SET_PART_ENTRIES = 1_000
/**
 * How much of the entries one part carries, measured by `jsonLength` (their JSON text's length
 * without escapes): a quarter of the 1 MiB frame limit, whatever the entries hold — labels and
 * addresses may each be 256 characters, and each character at most 3 bytes in the frame's UTF-8,
 * so a full part stays under three quarters of the limit.
 */
export const PEER_SET_PART_BYTES = 256 * 1024

/**
 * The length of `value`'s JSON text, escapes not counted (they do not reach the frame: msgpack
 * carries strings as UTF-8). Walked rather than stringified: a fleet coming up splits hundreds
 * of large changes a second, and `JSON.stringify` of every entry was most of a one-second stall
 * of the gateway's event loop at 1,000 peers (this walk costs a tenth of it).
 */
export const jsonLength = (value: unknown): number => {
  switch (typeof value) {
    case "string":
      return value.length + 2
    case "number":
      return String(value).length
    case "boolean":
      return value ? 4 : 5
    case "object": {
      if (value === null) return 4
      if (Array.isArray(value)) {
        let length = 1 + Math.max(value.length, 1)
        for (const item of value) length += jsonLength(item)
        return length
      }
      let length = 1
      let fields = 0
      for (const key in value) {
        const field = (value as Record<string, unknown>)[key]
        if (field === undefined || typeof field === "function") continue
        length += key.length + 3 + jsonLength(field)
        fields++
      }
      return length + Math.max(fields, 1)
    }
    default:
      return 0
  }
}

/** Cuts a list into slices of at most `maxItems` items and `maxBytes` (by `jsonLength`) each. */
const slicesOf = <T>(items: ReadonlyArray<T>, maxItems: number, maxBytes: number): Array<Array<T>> => {
  const slices: Array<Array<T>> = []
  let current: Array<T> = []
  let bytes = 0
  for (const item of items) {
    const size = jsonLength(item)
    if (current.length > 0 && (current.length >= maxItems || bytes + size > maxBytes)) {
      slices.push(current)
      current = []
      bytes = 0
    }
    current.push(item)
    bytes += size
  }
  if (current.length > 0) slices.push(current)
  return slices
}

/**
 * The parts of each change already split (at the default sizes), so every session sent one
 * change gets the same part objects — whose encoding `encodeConfigPush` then shares — not a copy each.
 */
const partsOf = new WeakMap<PeerSetChange, ReadonlyArray<PeerSetChange>>()

/** One `wireguard` push as the frames that carry it: itself when small, else parts of the same version (removals first). */
export const splitPeerSetPush = (push: ConfigPushBody, maxEntries: number = PEER_SET_PART_ENTRIES, maxBytes: number = PEER_SET_PART_BYTES): Array<ConfigPushBody> => {
  if (push.kind !== "wireguard") return [push]
  const withParts = (parts: ReadonlyArray<PeerSetChange>) => parts.map((peers) => ({ ...push, payload: { ...push.payload, peers } }))
  const cached = maxEntries === PEER_SET_PART_ENTRIES && maxBytes === PEER_SET_PART_BYTES
  const known = cached ? partsOf.get(push.payload.peers) : undefined
  if (known !== undefined) return withParts(known)
  const { upserts, removed } = push.payload.peers
  // A schema-valid entry holds at most ~2,700 characters (~8 KiB as UTF-8): 64 of them fit a
  // frame with room to spare, so a change this short needs no measuring.
  if (upserts.length + removed.length <= Math.min(maxEntries, Math.floor(maxBytes / 4096))) return [push]
  const removedSlices = slicesOf(removed, maxEntries, maxBytes)
  const upsertSlices = slicesOf(upserts, maxEntries, maxBytes)
  if (removedSlices.length + upsertSlices.length <= 1) return [push]
  const slices = [...removedSlices.map((slice) => ({ upserts: [], removed: slice })), ...upsertSlices.map((slice) => ({ upserts: slice, removed: [] }))]
  const parts = slices.map((slice, index): PeerSetChange => ({ ...push.payload.peers, ...slice, part: { index, count: slices.length } }))
  if (cached) partsOf.set(push.payload.peers, parts)
  return withParts(parts)
}

/**
 * Collects the parts of split `wireguard` pushes (per network) and hands back the whole push
 * once its last part has arrived; a push that was not split passes straight through. A part
 * out of order (a lost frame, a new version started) drops what was collected: the gateway
 * resends the version, since it is not acked.
 */
export class PeerSetAssembler {
  private readonly partial = new Map<string, { version: number; received: number; payloads: Array<WireguardPayload> }>()

  accept(push: ConfigPushBody): ConfigPushBody | undefined {
    if (push.kind !== "wireguard" || push.payload.peers.part === undefined) return push
    const { index, count } = push.payload.peers.part
    const collected = this.partial.get(push.key)
    if (index === 0) this.partial.set(push.key, { version: push.version, received: 1, payloads: [push.payload] })
    else if (collected !== undefined && collected.version === push.version && collected.received === index) {
      collected.received++
      collected.payloads.push(push.payload)
    } else {
      this.partial.delete(push.key)
      return undefined
    }
    const done = this.partial.get(push.key)!
    if (done.received < count) return undefined
    this.partial.delete(push.key)
    const { part: _part, ...first } = done.payloads[0]!.peers
    const peers: PeerSetChange = {
      ...first,
      upserts: done.payloads.flatMap((p) => p.peers.upserts),
      removed: done.payloads.flatMap((p) => p.peers.removed)
    }
    return { ...push, payload: { ...push.payload, peers } }
  }

  /** Forgets everything collected (the session ended). */
  reset() {
    this.partial.clear()
  }
}
