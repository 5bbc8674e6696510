import fc from "fast-check"
import { Packr } from "msgpackr"
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import {
  PROTOCOL_VERSION,
  agentMessageSchemas,
  decodeAgentFrame,
  decodeGatewayFrame,
  DEFAULT_FRAME_LIMITS,
  encodeFrame,
  gatewayMessageSchemas,
  ProtocolErrorCode,
  type AgentMessage,
  type GatewayMessage
} from "../src/index"
import { agentMessage, gatewayMessage } from "./arbitraries"

/** msgpackr hands back Buffers for binary fields; compare them as plain bytes. */
const normalise = (value: unknown): unknown => {
  if (value instanceof Uint8Array) return Array.from(value)
  if (Array.isArray(value)) return value.map(normalise)
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, normalise(item)]))
  }
  return value
}

const raw = new Packr({ useRecords: false })
const frame = (value: unknown) => raw.pack(value)
const heartbeat: AgentMessage = {
  type: "heartbeat",
  body: { seq: 7, k3s: { service: "active", node_ready: true }, wireguard: [], load: { cpu_ratio: 0.25, memory_ratio: 0.5 } }
}

const failureCode = (result: Result.Result<unknown, { code: string }>) =>
  Result.isFailure(result) ? result.failure.code : "decoded"

describe("round trip", () => {
  it("every agent message decodes to what was encoded", () => {
    fc.assert(
      fc.property(agentMessage, (message) => {
        const decoded = decodeAgentFrame(encodeFrame(message))
        expect(Result.isSuccess(decoded) ? normalise(decoded.success) : decoded).toEqual(normalise(message))
      }),
      { numRuns: 500 }
    )
  })

  it("every gateway message decodes to what was encoded", () => {
    fc.assert(
      fc.property(gatewayMessage, (message) => {
        const decoded = decodeGatewayFrame(encodeFrame(message))
        expect(Result.isSuccess(decoded) ? normalise(decoded.success) : decoded).toEqual(normalise(message))
      }),
      { numRuns: 500 }
    )
  })

  it("the generators cover every message type of both directions", () => {
    const agentTypes = new Set(fc.sample(agentMessage, 3000).map((m) => m.type))
    const gatewayTypes = new Set(fc.sample(gatewayMessage, 3000).map((m) => m.type))
    expect([...agentTypes].sort()).toEqual(Object.keys(agentMessageSchemas).sort())
    expect([...gatewayTypes].sort()).toEqual(Object.keys(gatewayMessageSchemas).sort())
  })

  it("absent optional fields stay absent on the wire (undefined is never encoded)", () => {
    const bytes = encodeFrame({
      type: "join_request",
      body: { request_id: "req_1", module_name: "k3s-agent", target_cluster_id: null, token_fingerprint: undefined as unknown as string }
    })
    const decoded = decodeAgentFrame(bytes)
    expect(Result.isSuccess(decoded) && "token_fingerprint" in decoded.success.body).toBe(false)
  })
})

describe("direction", () => {
  it("a gateway refuses messages only a gateway may send", () => {
    const welcome: GatewayMessage = {
      type: "welcome",
      body: {
        session_id: "ses_1",
        gateway_id: "gw_1",
        protocol_version: 1,
        heartbeat_interval_ms: 5000,
        silence_threshold_ms: 15000,
        server_time_ms: 0,
        max_frame_bytes: 1024
      }
    }
    expect(failureCode(decodeAgentFrame(encodeFrame(welcome)))).toBe(ProtocolErrorCode.UnknownMessageType)
    expect(failureCode(decodeGatewayFrame(encodeFrame(welcome)))).toBe("decoded")
  })
})

describe("hostile frames get a typed error, never an exception", () => {
  const cases: Array<[string, Uint8Array, string]> = [
    ["empty frame", new Uint8Array(), ProtocolErrorCode.TruncatedFrame],
    ["truncated msgpack", encodeFrame(heartbeat).subarray(0, 20), ProtocolErrorCode.TruncatedFrame],
    ["trailing bytes", Buffer.concat([encodeFrame(heartbeat), Buffer.from([0xc0])]), ProtocolErrorCode.TrailingBytes],
    ["never-used byte 0xc1", Uint8Array.of(0xc1), ProtocolErrorCode.MalformedFrame],
    ["array claiming 2^32-1 items", Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff, 0x01), ProtocolErrorCode.TruncatedFrame],
    ["map claiming 65535 entries", Uint8Array.of(0xde, 0xff, 0xff), ProtocolErrorCode.TruncatedFrame],
    ["string claiming 4 GiB", Uint8Array.of(0xdb, 0xff, 0xff, 0xff, 0xff, 0x61), ProtocolErrorCode.TruncatedFrame],
    ["nesting 10,000 deep", new Uint8Array(10_000).fill(0x91), ProtocolErrorCode.NestingTooDeep],
    ["__proto__ key", frame({ v: PROTOCOL_VERSION, type: "heartbeat", body: JSON.parse('{"__proto__": {"polluted": true}}') }), ProtocolErrorCode.DisallowedKey],
    ["constructor key", frame({ v: PROTOCOL_VERSION, type: "heartbeat", body: { constructor: { prototype: 1 } } }), ProtocolErrorCode.DisallowedKey],
    ["non-string map key", Uint8Array.of(0x81, 0x01, 0x02), ProtocolErrorCode.NonStringKey],
    ["timestamp extension", frame({ v: PROTOCOL_VERSION, type: "heartbeat", body: new Date(0) }), ProtocolErrorCode.ExtensionNotAllowed],
    ["set extension", Uint8Array.of(0xd4, 0x73, 0x90), ProtocolErrorCode.ExtensionNotAllowed],
    ["not a map", frame([1, "heartbeat", {}]), ProtocolErrorCode.InvalidEnvelope],
    ["envelope without body", frame({ v: PROTOCOL_VERSION, type: "heartbeat" }), ProtocolErrorCode.InvalidEnvelope],
    ["unknown version", frame({ v: 99, type: "heartbeat", body: heartbeat.body }), ProtocolErrorCode.UnsupportedVersion],
    ["unknown type", frame({ v: PROTOCOL_VERSION, type: "launch_missiles", body: {} }), ProtocolErrorCode.UnknownMessageType],
    ["wrong field type", frame({ v: PROTOCOL_VERSION, type: "heartbeat", body: { ...heartbeat.body, seq: "7" } }), ProtocolErrorCode.InvalidMessage],
    ["negative sequence", frame({ v: PROTOCOL_VERSION, type: "heartbeat", body: { ...heartbeat.body, seq: -1 } }), ProtocolErrorCode.InvalidMessage],
    ["NaN load", frame({ v: PROTOCOL_VERSION, type: "heartbeat", body: { ...heartbeat.body, load: { cpu_ratio: NaN, memory_ratio: 0 } } }), ProtocolErrorCode.InvalidMessage],
    [
      "frame over the size limit",
      frame({ v: PROTOCOL_VERSION, type: "error", body: { code: "x", message: "a".repeat(DEFAULT_FRAME_LIMITS.maxFrameBytes) } }),
      ProtocolErrorCode.FrameTooLarge
    ]
  ]

  for (const [name, bytes, code] of cases) {
    it(`${name} -> ${code}`, () => {
      expect(failureCode(decodeAgentFrame(bytes))).toBe(code)
    })
  }

  it("a refused __proto__ key pollutes nothing", () => {
    decodeAgentFrame(frame({ v: PROTOCOL_VERSION, type: "heartbeat", body: JSON.parse('{"__proto__": {"polluted": true}}') }))
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it("error messages name the field but never echo the value (a credential stays out of logs)", () => {
    const secret = "s3cr3t-credential-".repeat(40)
    const hello = {
      v: PROTOCOL_VERSION,
      type: "hello",
      body: {
        instance_id: "ins_1",
        credential: secret,
        agent_version: "1.0.0",
        protocol_versions: [PROTOCOL_VERSION],
        capabilities: [],
        wireguard_keys: [],
        applied: [],
        held_vips: []
      }
    }
    const result = decodeAgentFrame(frame(hello))
    expect(Result.isFailure(result)).toBe(true)
    const error = Result.isFailure(result) ? result.failure : undefined
    expect(error?.message).toContain("body.credential")
    expect(JSON.stringify(error)).not.toContain("s3cr3t")
  })
})

describe("fuzzing the decoder", () => {
  const knownCodes = new Set<string>(Object.values(ProtocolErrorCode))

  const decodesSafely = (bytes: Uint8Array) => {
    const result = decodeAgentFrame(bytes)
    if (Result.isFailure(result)) {
      expect(result.failure._tag).toBe("ProtocolDecodeError")
      expect(knownCodes.has(result.failure.code)).toBe(true)
    } else {
      expect(Object.keys(agentMessageSchemas)).toContain(result.success.type)
    }
  }

  it("random bytes only ever yield a typed error or a valid message", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), decodesSafely), { numRuns: 3000 })
  })

  it("mutated valid frames only ever yield a typed error or a valid message", () => {
    const mutated = fc
      .tuple(agentMessage, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat())
      .map(([message, flips, cut]) => {
        const bytes = Uint8Array.from(encodeFrame(message))
        for (const [at, value] of flips) bytes[at % bytes.length] = value
        return cut % 4 === 0 ? bytes.subarray(0, cut % bytes.length) : bytes
      })
    fc.assert(fc.property(mutated, decodesSafely), { numRuns: 3000 })
  })

  it("random msgpack values (any shape) only ever yield a typed error or a valid message", () => {
    const anyValue = fc.anything({ maxDepth: 4, withNullPrototype: true, withObjectString: true })
    const envelope = fc.record({ v: fc.oneof(fc.constant(1), fc.anything()), type: fc.oneof(fc.constantFrom(...Object.keys(agentMessageSchemas)), fc.string()), body: anyValue })
    fc.assert(
      fc.property(fc.oneof(anyValue, envelope), (value) => {
        let bytes: Uint8Array
        try {
          bytes = frame(value)
        } catch {
          return // some JS values (symbols, functions) have no msgpack form; nothing to decode
        }
        decodesSafely(bytes)
      }),
      { numRuns: 2000 }
    )
  })
})
