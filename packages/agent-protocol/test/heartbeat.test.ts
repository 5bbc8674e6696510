import { Result } from "effect"
import { describe, expect, it } from "vitest"
import { decodeAgentFrame, encodeFrame, FRESH_HANDSHAKE_MS, summarizeHandshakes, type AgentMessage } from "../src/index"

const heartbeatOf = (wireguard: AgentMessage & { type: "heartbeat" } extends { body: { wireguard: infer W } } ? W : never): AgentMessage => ({
  type: "heartbeat",
  body: { seq: 1, k3s: { service: "active", node_ready: true }, wireguard, load: { cpu_ratio: 0.2, memory_ratio: 0.4 } }
})

describe("heartbeat tunnels are a summary per interface", () => {
  it("counts peers and the handshakes within FRESH_HANDSHAKE_MS; never-handshaken and stale peers are not fresh", () => {
    expect(summarizeHandshakes("net_a", [1_000, FRESH_HANDSHAKE_MS, FRESH_HANDSHAKE_MS + 1, null])).toEqual({ network_id: "net_a", peers: 4, fresh_handshakes: 2 })
    expect(summarizeHandshakes("net_a", [])).toEqual({ network_id: "net_a", peers: 0, fresh_handshakes: 0 })
  })

  it("an agent in a 10,000-peer network sends a heartbeat the size of one in a 2-peer network, and it decodes", () => {
    // Version 2 listed every peer's handshake: past 4,096 peers every heartbeat was refused.
    const ages = (n: number) => Array.from({ length: n }, (_, i) => (i % 10 === 0 ? null : 5_000))
    const large = encodeFrame(heartbeatOf([summarizeHandshakes("net_large", ages(10_000))]))
    const small = encodeFrame(heartbeatOf([summarizeHandshakes("net_large", ages(2))]))
    expect(large.byteLength - small.byteLength).toBeLessThanOrEqual(4)
    expect(large.byteLength).toBeLessThan(200)
    const decoded = decodeAgentFrame(large)
    expect(Result.isSuccess(decoded) && decoded.success.type === "heartbeat" && decoded.success.body.wireguard[0]).toEqual({
      network_id: "net_large",
      peers: 10_000,
      fresh_handshakes: 9_000
    })
  })

  it("refuses more fresh handshakes than peers", () => {
    const decoded = decodeAgentFrame(encodeFrame(heartbeatOf([{ network_id: "net_a", peers: 2, fresh_handshakes: 3 }])))
    expect(Result.isFailure(decoded) && decoded.failure.code).toBe("invalid_message")
    expect(Result.isFailure(decoded) && decoded.failure.message).toContain("body.wireguard.0: expected fresh_handshakes at most peers")
  })
})
