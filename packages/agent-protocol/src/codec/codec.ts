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
import { agentMessageSchemas, gatewayMessageSchemas, type AgentMessage, type GatewayMessage } from "../messages/index"
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
