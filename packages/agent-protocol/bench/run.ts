/**
 * Codec benchmark: encode+decode of a heartbeat and of a 3 KB config push, through
 * the protocol codec (msgpack + inspection + schema) beside the same validation over
 * JSON, and the raw serializers alone as the floor. Writes bench-results.json.
 */
import { writeFileSync } from "node:fs"
import { Packr, Unpackr } from "msgpackr"
import { Result, Schema } from "effect"
import { AgentMessage, decodeAgentFrame, decodeGatewayFrame, encodeFrame, GatewayMessage } from "../src/index"
import type { AgentMessage as AgentMessageType, GatewayMessage as GatewayMessageType } from "../src/index"

interface Figure {
  readonly name: string
  readonly opsPerSecond: number
  readonly microsecondsPerOp: number
  readonly bytes: number
}

const measure = (name: string, bytes: number, op: () => void, minMs = 700): Figure => {
  for (let i = 0; i < 2000; i++) op() // warm up the JIT
  let iterations = 0
  const start = process.hrtime.bigint()
  let elapsed = 0
  while (elapsed < minMs) {
    for (let i = 0; i < 500; i++) op()
    iterations += 500
    elapsed = Number(process.hrtime.bigint() - start) / 1e6
  }
  return { name, opsPerSecond: (iterations / elapsed) * 1000, microsecondsPerOp: (elapsed * 1000) / iterations, bytes }
}

const heartbeat: AgentMessageType = {
  type: "heartbeat",
  body: {
    seq: 42,
    k3s: { service: "active", node_ready: true, version: "v1.31.0+k3s1" },
    wireguard: [
      { network_id: "net_7Qm2Xr9kLp", peers: 2, fresh_handshakes: 2 }
    ],
    load: { cpu_ratio: 0.31, memory_ratio: 0.62 }
  }
}
// A 12-peer change: about the 3 KB the bench measured when pushes were rendered text.
const upserts = Array.from({ length: 12 }, (_, k) => ({
  peer_id: `peer_${k + 2}`,
  label: `edge-worker-${k + 2}`,
  public_key: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
  endpoint: `198.51.100.${k + 2}:51820`,
  allowed_ips: [`fd12:3456:789a:1::${k + 2}/128`, `100.64.0.${k + 2}/32`, `10.42.${k + 2}.0/24`]
}))
const push: GatewayMessageType = {
  type: "config_push",
  body: {
    kind: "wireguard",
    key: "net_7Qm2Xr9kLp",
    version: 12,
    payload: {
      network_id: "net_7Qm2Xr9kLp",
      interface_name: "wg-sdwan-prod",
      listen_port: 51820,
      self: { peer_id: "peer_1", label: "edge-worker-1", addresses: ["fd12:3456:789a:1::1/128", "100.64.0.1/32"] },
      peers: { from_version: 0, version: 12, full: true, upserts, removed: [] }
    }
  }
}

const decodeAgentJson = Schema.decodeUnknownResult(AgentMessage)
const decodeGatewayJson = Schema.decodeUnknownResult(GatewayMessage)
const rawPackr = new Packr({ useRecords: false })
const rawUnpackr = new Unpackr({ useRecords: false })

const mustSucceed = <A, E>(result: Result.Result<A, E>): A => {
  if (Result.isFailure(result)) throw new Error(`benchmark input failed to decode: ${String(result.failure)}`)
  return result.success
}

const figures: Array<Figure> = []
for (const [label, message, decodeFrame, decodeJson] of [
  ["heartbeat", heartbeat, decodeAgentFrame, decodeAgentJson],
  ["wireguard push, 12-peer change", push, decodeGatewayFrame, decodeGatewayJson]
] as const) {
  const frameBytes = encodeFrame(message).length
  const jsonBytes = Buffer.byteLength(JSON.stringify({ v: 1, ...message }))
  figures.push(
    measure(`${label}: protocol codec (msgpackr + checks + schema)`, frameBytes, () => {
      mustSucceed((decodeFrame as typeof decodeAgentFrame)(encodeFrame(message)))
    }),
    measure(`${label}: JSON + same schema (baseline)`, jsonBytes, () => {
      const parsed = JSON.parse(JSON.stringify({ v: 1, ...message })) as { type: string; body: unknown }
      mustSucceed((decodeJson as typeof decodeAgentJson)({ type: parsed.type, body: parsed.body }))
    }),
    measure(`${label}: raw msgpackr pack+unpack (floor)`, frameBytes, () => {
      rawUnpackr.unpack(rawPackr.pack({ v: 1, ...message }))
    }),
    measure(`${label}: raw JSON stringify+parse (floor)`, jsonBytes, () => {
      JSON.parse(JSON.stringify({ v: 1, ...message }))
    })
  )
}

const pad = (text: string, width: number) => text.padEnd(width)
console.log(`\nagent-protocol codec, encode+decode per message (Node ${process.version})\n`)
console.log(`${pad("case", 62)} ${"ops/s".padStart(12)} ${"µs/op".padStart(8)} ${"bytes".padStart(6)}`)
for (const figure of figures) {
  console.log(
    `${pad(figure.name, 62)} ${Math.round(figure.opsPerSecond).toLocaleString("en-US").padStart(12)} ${figure.microsecondsPerOp.toFixed(2).padStart(8)} ${String(figure.bytes).padStart(6)}`
  )
}
writeFileSync(new URL("../bench-results.json", import.meta.url), JSON.stringify({ node: process.version, figures }, null, 2))
