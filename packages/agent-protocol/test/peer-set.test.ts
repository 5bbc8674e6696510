/**
 * The agent's side of peer-set deltas (#20): a change applies only where the copy is, a full
 * set replaces it, a change too large for one frame is split and put back together, and the
 * wg-quick file rendered from the result is the same however the entries arrived.
 */
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import {
  applyPeerSetChange,
  decodeGatewayFrame,
  DEFAULT_FRAME_LIMITS,
  encodeConfigPush,
  encodeFrame,
  PeerSetAssembler,
  PeerSetOutOfSyncError,
  renderWireguardConfig,
  splitPeerSetPush,
  type ConfigPushBody,
  type PeerEntry,
  type PeerSetChange
} from "../src/index"
import { jsonLength } from "../src/peer-set"

const key = (i: number) => `${Buffer.alloc(32, i % 256).toString("base64").slice(0, 42)}A=`
const entry = (i: number, endpoint = `198.51.100.${i % 250}:51820`): PeerEntry => ({
  peer_id: `peer_${String(i).padStart(5, "0")}`,
  label: `edge-${i}`,
  public_key: key(i),
  endpoint,
  allowed_ips: [`fd00:1::${i.toString(16)}/128`, `100.64.${i >> 8}.${i & 255}/32`]
})
const change = (from: number, version: number, full: boolean, upserts: Array<PeerEntry>, removed: Array<string> = []): PeerSetChange => ({ from_version: from, version, full, upserts, removed })
const own = { interface_name: "wg-sdwan-prod", listen_port: 51820, self: { peer_id: entry(0).peer_id, label: "edge-0", addresses: ["fd00:1::/128", "100.64.0.0/32"] } }
const pushOf = (peers: PeerSetChange, version = 7): ConfigPushBody => ({ kind: "wireguard", key: "net_1", version, payload: { network_id: "net_1", ...own, peers } })

describe("a peer set on the agent", () => {
  it("takes a full set, then deltas that start at its version; a removal takes the peer out", () => {
    const first = applyPeerSetChange(undefined, change(0, 3, true, [entry(0), entry(1), entry(2)]))
    const moved = applyPeerSetChange(first, change(3, 4, false, [entry(2, "203.0.113.9:51999")], [entry(1).peer_id]))
    expect(moved.version).toBe(4)
    const file = renderWireguardConfig({ interface: own, peers: moved })
    expect(file).toContain(`PublicKey = ${key(2)}\nEndpoint = 203.0.113.9:51999\n`)
    expect(file).not.toContain(key(1))
    expect(file).not.toContain(`PublicKey = ${key(0)}`) // itself
  })

  it("refuses a delta that does not start at its version (acked as peer_set_out_of_sync), and keeps its copy", () => {
    const copy = applyPeerSetChange(undefined, change(0, 3, true, [entry(0), entry(1)]))
    expect(() => applyPeerSetChange(copy, change(5, 6, false, [entry(3)]))).toThrow(PeerSetOutOfSyncError)
    expect(() => applyPeerSetChange(undefined, change(5, 6, false, [entry(3)]))).toThrowError(/this node has version none/)
    try {
      applyPeerSetChange(copy, change(5, 6, false, []))
    } catch (error) {
      expect((error as PeerSetOutOfSyncError).code).toBe("peer_set_out_of_sync")
    }
    expect(Object.keys(copy.peers)).toHaveLength(2)
    // A full set is taken whatever the copy's version.
    expect(applyPeerSetChange(copy, change(0, 9, true, [entry(4)])).peers).toEqual({ [entry(4).peer_id]: entry(4) })
  })

  it("renders the same file whatever order the entries arrived in", () => {
    const entries = [entry(0), entry(1), entry(2), entry(3)]
    const forwards = applyPeerSetChange(undefined, change(0, 1, true, entries))
    const inPieces = applyPeerSetChange(applyPeerSetChange(undefined, change(0, 1, true, [entries[3]!, entries[1]!])), change(1, 2, false, [entries[2]!, entries[0]!]))
    expect(renderWireguardConfig({ interface: own, peers: inPieces })).toBe(renderWireguardConfig({ interface: own, peers: forwards }))
  })
})

describe("a peer set larger than a frame", () => {
  const large = pushOf(change(0, 1, true, Array.from({ length: 10_000 }, (_, i) => entry(i + 1))))

  it("travels in parts under the frame limit, applied once the last has arrived", () => {
    const parts = splitPeerSetPush(large)
    expect(parts.length).toBe(10)
    for (const part of parts) expect(encodeFrame({ type: "config_push", body: part }).byteLength).toBeLessThan(DEFAULT_FRAME_LIMITS.maxFrameBytes / 2)
    // Unsplit, it would not fit in one frame.
    expect(encodeFrame({ type: "config_push", body: large }).byteLength).toBeGreaterThan(DEFAULT_FRAME_LIMITS.maxFrameBytes)
    const assembler = new PeerSetAssembler()
    const results = parts.map((part) => assembler.accept(part))
    expect(results.slice(0, -1).every((r) => r === undefined)).toBe(true)
    const whole = results.at(-1)!
    expect(whole.kind === "wireguard" && whole.payload.peers.part).toBeUndefined()
    expect(whole).toEqual(large)
  })

  it("drops what it collected when a part is missing; the next complete sending is applied", () => {
    const parts = splitPeerSetPush(large)
    const assembler = new PeerSetAssembler()
    assembler.accept(parts[0]!)
    expect(assembler.accept(parts[2]!)).toBeUndefined() // part 1 lost
    expect(parts.slice(3).map((part) => assembler.accept(part)).every((r) => r === undefined)).toBe(true)
    const again = parts.map((part) => assembler.accept(part))
    expect(again.at(-1)).toEqual(large)
  })

  it("entries as large as their fields allow (256-character labels and addresses) still part under the frame limit", () => {
    const long = (i: number): PeerEntry => ({
      peer_id: `peer_${String(i).padStart(120, "0")}`,
      label: `edge-${i}-`.padEnd(256, "x"),
      public_key: key(i),
      endpoint: `${"h".repeat(240)}.example:51820`,
      allowed_ips: Array.from({ length: 8 }, (_, k) => `fd00:${k}::${i.toString(16)}/128`.padEnd(256, " ").trim())
    })
    const heavy = pushOf(change(0, 1, true, Array.from({ length: 3_000 }, (_, i) => long(i))))
    const parts = splitPeerSetPush(heavy)
    expect(parts.length).toBeGreaterThan(3) // the byte budget, not the count, cut them
    for (const part of parts) expect(encodeFrame({ type: "config_push", body: part }).byteLength).toBeLessThan(DEFAULT_FRAME_LIMITS.maxFrameBytes)
    const assembler = new PeerSetAssembler()
    expect(parts.map((part) => assembler.accept(part)).at(-1)).toEqual(heavy)
  })

  it("entries of multi-byte characters (each up to 3 bytes in the frame) still part under the frame limit", () => {
    // The split measures characters; msgpack carries UTF-8, up to 3 bytes for each of these.
    const wide = (i: number): PeerEntry => ({
      peer_id: `peer_${String(i).padStart(120, "0")}`,
      label: `節點-${i}-`.padEnd(256, "€"),
      public_key: key(i),
      endpoint: `${"ü".repeat(240)}.example:51820`,
      allowed_ips: Array.from({ length: 8 }, (_, k) => `fd00:${k}::${i.toString(16)}/128 `.padEnd(256, "→"))
    })
    const heavy = pushOf(change(0, 1, true, Array.from({ length: 2_000 }, (_, i) => wide(i))))
    const parts = splitPeerSetPush(heavy)
    for (const part of parts) expect(encodeFrame({ type: "config_push", body: part }).byteLength).toBeLessThan(DEFAULT_FRAME_LIMITS.maxFrameBytes)
    expect(parts.length).toBeGreaterThan(2)
    const assembler = new PeerSetAssembler()
    expect(parts.map((part) => assembler.accept(part)).at(-1)).toEqual(heavy)
  })

  it("measures entries as their JSON text's length (escapes aside), without stringifying them", () => {
    const samples: Array<unknown> = [
      entry(7),
      { ...entry(8), endpoint: undefined },
      "peer_gone_1",
      [],
      {},
      { a: null, b: true, c: false, d: 12.5, e: -3, f: [1, [2, {}]], g: { h: "" } },
      Array.from({ length: 40 }, (_, i) => entry(i))
    ]
    for (const sample of samples) expect(jsonLength(sample)).toBe(JSON.stringify(sample).length)
  })

  it("removals and upserts both survive the split", () => {
    const mixed = pushOf(change(4, 5, false, Array.from({ length: 1_500 }, (_, i) => entry(i + 1)), Array.from({ length: 700 }, (_, i) => `peer_gone_${i}`)))
    const parts = splitPeerSetPush(mixed)
    expect(parts).toHaveLength(3)
    const assembler = new PeerSetAssembler()
    const whole = parts.map((part) => assembler.accept(part)).at(-1)!
    expect(whole).toEqual(mixed)
    // A small push is not split and passes straight through.
    const small = pushOf(change(1, 2, false, [entry(1)]))
    expect(splitPeerSetPush(small)).toEqual([small])
    expect(assembler.accept(small)).toBe(small)
  })
})

describe("a change encoded once for every session it reaches", () => {
  it("the pieces of a WireGuard push are the bytes encodeFrame gives, and one change is shared by every receiver's frame", () => {
    const shared = change(3, 9, false, Array.from({ length: 200 }, (_, i) => entry(i + 1)), [entry(500).peer_id])
    const forAgent = (peer: number, peers: PeerSetChange = shared): ConfigPushBody => ({
      kind: "wireguard",
      key: "net_1",
      version: 11,
      payload: { network_id: "net_1", interface_name: "wg-sdwan-prod", listen_port: 51820, self: { peer_id: entry(peer).peer_id, label: `edge-${peer}`, addresses: [`fd00:1::${peer}/128`] }, peers }
    })
    const concat = (pieces: ReadonlyArray<Uint8Array>) => Buffer.concat(pieces.map((piece) => Buffer.from(piece)))
    const [a, b] = [encodeConfigPush(forAgent(1)), encodeConfigPush(forAgent(2))]
    expect(a).toHaveLength(2)
    expect(concat(a).equals(Buffer.from(encodeFrame({ type: "config_push", body: forAgent(1) })))).toBe(true)
    expect(concat(b).equals(Buffer.from(encodeFrame({ type: "config_push", body: forAgent(2) })))).toBe(true)
    // The change's bytes are the same object for both: encoded once.
    expect(a[1]).toBe(b[1])
    const decoded = decodeGatewayFrame(concat(b))
    expect(Result.isSuccess(decoded) && decoded.success).toEqual({ type: "config_push", body: forAgent(2) })
    // A change split in parts: every session gets the same parts, so their encodings are shared too.
    const large = change(0, 12, true, Array.from({ length: 2_500 }, (_, i) => entry(i + 1)))
    const partsFor = (peer: number) => splitPeerSetPush(forAgent(peer, large))
    const [p1, p2] = [partsFor(1), partsFor(2)]
    expect(p1.length).toBeGreaterThan(1)
    p1.forEach((part, i) => {
      const other = p2[i]!
      expect(part.kind === "wireguard" && other.kind === "wireguard" && part.payload.peers === other.payload.peers).toBe(true)
      expect(encodeConfigPush(part)[1]).toBe(encodeConfigPush(other)[1])
    })
    // A short change (one peer joining) is copied into each frame: one piece, one write.
    const one = forAgent(3, change(9, 10, false, [entry(7)]))
    const single = encodeConfigPush(one)
    expect(single).toHaveLength(1)
    expect(Buffer.from(single[0]!).equals(Buffer.from(encodeFrame({ type: "config_push", body: one })))).toBe(true)
    // Anything but a WireGuard push is one piece.
    const token: ConfigPushBody = { kind: "token", key: "clu_1", version: 2, payload: { cluster_id: "clu_1", token: "K10abc::server:def" } }
    expect(encodeConfigPush(token)).toEqual([encodeFrame({ type: "config_push", body: token })])
  })
})
