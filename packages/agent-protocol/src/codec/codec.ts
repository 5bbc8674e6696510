/**
 * The frame codec: a versioned envelope `{ v, type, body }` in msgpack, in binary WebSocket frames.
 *
 * Decoding untrusted bytes goes: size limit -> structural inspection (no allocation) ->
 * msgpackr -> envelope -> version -> the schema of that message type. Every step
 * returns a `ProtocolDecodeError` with a stable code; nothing here throws.
 */
import { Packr, Unpackr } from "msgpackr"
import { Predicate, Result, Schema } from "effect"
import { ProtocolErrorCode } from "../codes"
import { protocolDecodeError, type ProtocolDecodeError } from "../errors"
import { DEFAULT_FRAME_LIMITS, type FrameLimits } from "../limits"
import { agentMessageSchemas, gatewayMessageSchemas, type AgentMessage, type ConfigPushBody, type GatewayMessage } from "../messages/index"
import { PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from "../version"
import { inspectFrame } from "./frame-inspector"
import { describeSchemaError } from "./schema-issues"

// Plain msgpack maps only: no records, no structured clone, and absent fields stay absent.
// (`skipValues` is a msgpackr option its type definitions do not list yet.)
const packr = new Packr({ useRecords: false, structuredClone: false, skipValues: [undefined] } as ConstructorParameters<typeof Packr>[0])
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false, int64AsType: "number" })

export type DecodeResult<M> = Result.Result<M, ProtocolDecodeError>

/** Encodes one message into the bytes of one binary frame. */
export const encodeFrame = (message: AgentMessage | GatewayMessage): Uint8Array =>
  packr.pack({ v: PROTOCOL_VERSION, type: message.type, body: message.body })

/** The encoded `peers` of a WireGuard push, per change object: one version's change is shared by every session it reaches. */
const encodedPeers = new WeakMap<object, Uint8Array>()

/**
 * A peer-set change shorter than this is encoded into each receiver's frame whole: one write
 * per session instead of two (a WebSocket fragment is a socket write of its own), and encoding a
 * short change again costs less than splicing a shared one in (measured: 3-4 µs against 5-8 µs
 * a push). The usual change, one peer joining or moving, is a few hundred bytes. A longer one
 * is encoded once and shared.
 */
export const SHARED_CHANGE_MIN_BYTES = 2_048

/**
 * Encodes a `config_push` as the consecutive pieces of one frame. A WireGuard push whose change
 * is long comes in two: the envelope with everything but the peer-set change, then the change
 * itself, encoded once per change object and reused for every session it is sent to (at 1,000
 * peers a full set is ~190 KB: encoded once instead of once per peer). Concatenated, the pieces
 * are exactly the bytes `encodeFrame` gives; a sender may send them as fragments of one
 * WebSocket message.
 */
export const encodeConfigPush = (push: ConfigPushBody): ReadonlyArray<Uint8Array> => {
  if (push.kind !== "wireguard") return [encodeFrame({ type: "config_push", body: push })]
  const peers = push.payload.peers
  let change = encodedPeers.get(peers)
  if (change === undefined) {
    // A copy: msgpackr's result may share a larger buffer the cache would keep alive.
    change = new Uint8Array(packr.pack(peers))
    encodedPeers.set(peers, change)
  }
  if (change.byteLength < SHARED_CHANGE_MIN_BYTES) return [encodeFrame({ type: "config_push", body: push })]
  const { payload, ...rest } = push
  const { peers: _shared, ...own } = payload
  // `peers` is the last value of the payload, the payload of the body, the body of the envelope:
  // the head ends with the nil standing in for it, and the change goes where that nil was.
  const head = packr.pack({ v: PROTOCOL_VERSION, type: "config_push", body: { ...rest, payload: { ...own, peers: null } } })
  if (head[head.length - 1] !== 0xc0) return [encodeFrame({ type: "config_push", body: push })]
  return [head.subarray(0, head.length - 1), change]
}

const fail = (code: ProtocolErrorCode, message: string, messageType?: string) =>
  Result.fail(protocolDecodeError(code, message, messageType))

type SchemaTable = Readonly<Record<string, Schema.Top & Schema.Decoder<unknown>>>

const makeDecoder = <M>(schemas: SchemaTable, direction: string) => {
  const decoders = new Map<string, (input: unknown) => Result.Result<unknown, Schema.SchemaError>>()
  for (const [type, schema] of Object.entries(schemas)) decoders.set(type, Schema.decodeUnknownResult(schema))
  const known = [...decoders.keys()].join(", ")

  return (bytes: Uint8Array, limits: FrameLimits = DEFAULT_FRAME_LIMITS): DecodeResult<M> => {
    if (bytes.byteLength > limits.maxFrameBytes) {
      return fail(ProtocolErrorCode.FrameTooLarge, `frame of ${bytes.byteLength} bytes exceeds the limit of ${limits.maxFrameBytes}`)
    }
    const structural = inspectFrame(bytes, limits.maxDepth)
    if (structural !== undefined) return fail(structural, `frame refused before decoding: ${structural.replaceAll("_", " ")}`)

    let envelope: unknown
    try {
      envelope = unpackr.unpack(bytes)
    } catch {
      return fail(ProtocolErrorCode.MalformedFrame, "frame is not valid msgpack")
    }
    if (!Predicate.isObject(envelope) || Array.isArray(envelope)) {
      return fail(ProtocolErrorCode.InvalidEnvelope, "frame must be a map { v, type, body }")
    }
    const { v, type, body } = envelope as { v?: unknown; type?: unknown; body?: unknown }
    if (!Predicate.isNumber(v) || !Predicate.isString(type) || body === undefined) {
      return fail(ProtocolErrorCode.InvalidEnvelope, "frame must be a map { v: number, type: string, body }")
    }
    if (!SUPPORTED_PROTOCOL_VERSIONS.includes(v)) {
      return fail(ProtocolErrorCode.UnsupportedVersion, `protocol version ${v} is not supported (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(", ")})`)
    }
    const decode = decoders.get(type)
    if (decode === undefined) {
      return fail(ProtocolErrorCode.UnknownMessageType, `"${type.slice(0, 64)}" is not a ${direction} message (expected one of: ${known})`)
    }
    const decoded = decode({ type, body })
    if (Result.isFailure(decoded)) {
      return fail(ProtocolErrorCode.InvalidMessage, `invalid ${type}: ${describeSchemaError(decoded.failure)}`, type)
    }
    return Result.succeed(decoded.success as M)
  }
}

/** Decodes a frame an agent sent (used by gateways). */
export const decodeAgentFrame = makeDecoder<AgentMessage>(agentMessageSchemas, "agent")

/** Decodes a frame a gateway sent (used by agents). */
export const decodeGatewayFrame = makeDecoder<GatewayMessage>(gatewayMessageSchemas, "gateway")
