import { Schema } from "effect"
import type { ProtocolErrorCode } from "./codes"

/**
 * Why a frame was refused. Decoding never throws: every failure is one of these,
 * with a stable `code` and a message that says what was wrong.
 */
export class ProtocolDecodeError extends Schema.TaggedError<ProtocolDecodeError>()("ProtocolDecodeError", {
  code: Schema.String,
  message: Schema.String,
  /** The message type, when the envelope was readable. */
  messageType: Schema.optionalKey(Schema.String)
}) {}

export const protocolDecodeError = (code: ProtocolErrorCode, message: string, messageType?: string): ProtocolDecodeError =>
  new ProtocolDecodeError(messageType === undefined ? { code, message } : { code, message, messageType })
