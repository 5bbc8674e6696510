/**
 * A fan-out goes out in slices, with I/O (pings, heartbeats) read between them (#20). The slice
 * is bounded by sessions and by peer entries: a fleet coming up sends each of hundreds of
 * sessions a change of ~1,000 entries, and 500 such sessions in one turn of the event loop were
 * ~100 MB of socket writes, a 0.4-1 s stall at 1,000 peers.
 */
import { describe, expect, it } from "vitest"
import type { ConfigPushBody, PeerEntry } from "@fleetplane/agent-protocol"
import { FAN_OUT_SLICE, makeFanOutSlices } from "../src/agent/push-dispatcher"

const entry = (i: number): PeerEntry => ({ peer_id: `peer_${i}`, label: `edge-${i}`, public_key: `${"A".repeat(42)}=`, allowed_ips: [`100.64.${i >> 8}.${i & 255}/32`] })
const wireguard = (upserts: number, removed = 0): ConfigPushBody => ({
  kind: "wireguard",
  key: "net_1",
  version: 2,
  payload: {
    network_id: "net_1",
    interface_name: "wg-sdwan-prod",
    listen_port: 51820,
    self: { peer_id: "peer_0", label: "edge-0", addresses: ["100.64.0.0/32"] },
    peers: { from_version: 0, version: 2, full: true, upserts: Array.from({ length: upserts }, (_, i) => entry(i)), removed: Array.from({ length: removed }, (_, i) => `peer_gone_${i}`) }
  }
})
const kubeconfig = { kind: "kubeconfig", key: "cluster_1", version: 3, payload: { cluster_id: "cluster_1", kubeconfig: "apiVersion: v1" } } as unknown as ConfigPushBody

/** The indexes of the sessions after which the fan-out yields. */
const yieldsAfter = (sessions: ReadonlyArray<ReadonlyArray<ConfigPushBody>>) => {
  const slices = makeFanOutSlices()
  return sessions.flatMap((pushes, i) => (slices.add(pushes) ? [i] : []))
}

describe("a fan-out's slices", () => {
  it("a full 1,000-peer set to each of 1,000 sessions yields every 20 sessions, not every 500", () => {
    const full = [wireguard(1_000)]
    const yields = yieldsAfter(Array.from({ length: 1_000 }, () => full))
    expect(FAN_OUT_SLICE.entries).toBe(20_000)
    expect(yields).toHaveLength(50)
    expect(yields.slice(0, 3)).toEqual([19, 39, 59])
  })

  it("one peer's entry to each of 10,000 sessions yields every 500 sessions (the entries never fill a slice)", () => {
    const delta = [wireguard(1)]
    const yields = yieldsAfter(Array.from({ length: 10_000 }, () => delta))
    expect(yields).toHaveLength(20)
    expect(yields[0]).toBe(499)
  })

  it("removals weigh as entries, and every push counts at least one", () => {
    const slices = makeFanOutSlices({ sessions: 100, entries: 10 })
    expect(slices.add([wireguard(3, 4)])).toBe(false) // 1 + 3 + 4 = 8
    expect(slices.add([kubeconfig])).toBe(false) // 9
    expect(slices.add([kubeconfig])).toBe(true) // 10: full, the next slice starts empty
    expect(slices.add([wireguard(0, 8)])).toBe(false)
  })
})
