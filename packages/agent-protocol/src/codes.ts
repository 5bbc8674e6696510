/**
 * WebSocket close codes and protocol error codes. `PROTOCOL.md` documents each one;
 * keep the two in step (a test checks that every code here appears there).
 */

/** Close codes a gateway or agent may send. 4000-4999 are ours (RFC 6455 §7.4.2). */
export const CloseCode = {
  /** Orderly close by either side. */
  Normal: 1000,
  /** The gateway is shutting down or draining: reconnect (to this or another gateway) with backoff. */
  GoingAway: 1001,
  /** A text frame arrived; the protocol is binary only. */
  UnsupportedData: 1003,
  /** A frame larger than the negotiated maximum (set by `ws` itself from `maxPayload`). */
  MessageTooBig: 1009,
  /** An unexpected failure inside the gateway; reconnect with backoff. */
  InternalError: 1011,
  /** A frame could not be decoded or broke the protocol (the close reason names the error code). */
  ProtocolError: 4000,
  /** Unknown instance or wrong credential. Do not retry without a new credential. */
  AuthenticationFailed: 4001,
  /** No valid `hello` arrived within the deadline after the connection opened. */
  HelloTimeout: 4002,
  /** Another connection authenticated as the same instance; this one is replaced. */
  SessionReplaced: 4003,
  /** None of the agent's `protocol_versions` is supported by this gateway. */
  UnsupportedProtocolVersion: 4004,
  /** The connection stopped answering WebSocket pings (dead TCP). */
  PingTimeout: 4005,
  /** The instance was terminated; its credential no longer works. */
  InstanceTerminated: 4006,
  /** Too many failed authentications from this address; wait before retrying. */
  RateLimited: 4008,
  /** A message other than `hello` arrived before authentication. */
  NotAuthenticated: 4009,
  /** The agent reads too slowly and its send queue overflowed; reconnect and resume. */
  SlowConsumer: 4010
} as const
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode]

/** Stable snake_case codes carried by decode errors and `error` messages. */
export const ProtocolErrorCode = {
  FrameTooLarge: "frame_too_large",
  MalformedFrame: "malformed_frame",
  TruncatedFrame: "truncated_frame",
  TrailingBytes: "trailing_bytes",
  NestingTooDeep: "nesting_too_deep",
  DisallowedKey: "disallowed_key",
  NonStringKey: "non_string_key",
  ExtensionNotAllowed: "extension_not_allowed",
  InvalidEnvelope: "invalid_envelope",
  UnsupportedVersion: "unsupported_version",
  UnknownMessageType: "unknown_message_type",
  InvalidMessage: "invalid_message",
  UnexpectedMessage: "unexpected_message",
  TextFrameNotSupported: "text_frame_not_supported"
} as const
export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode]

/** The close code a decode failure leads to. */
export const closeCodeForProtocolError = (code: ProtocolErrorCode): CloseCode => {
  switch (code) {
    case ProtocolErrorCode.FrameTooLarge:
      return CloseCode.MessageTooBig
    case ProtocolErrorCode.TextFrameNotSupported:
      return CloseCode.UnsupportedData
    // An envelope of a wire version this side does not speak (an agent of an older release):
    // the same answer as a hello without a common version — upgrade the agent.
    case ProtocolErrorCode.UnsupportedVersion:
      return CloseCode.UnsupportedProtocolVersion
    default:
      return CloseCode.ProtocolError
  }
}

/**
 * Codes of `error` messages a gateway sends when it refuses something an agent reported. The
 * session stays open and nothing changed on the gateway; the agent should log the message (it
 * says what to fix) and carry on.
 */
export const RefusalCode = {
  /** A reported pod subnet is outside the cluster CIDR, the wrong size, or overlaps another peer's addresses or the VIP (R22). */
  PodSubnetRefused: "pod_subnet_refused",
  /** Another peer of the network already registered this WireGuard public key (R23). */
  WireguardKeyInUse: "wireguard_key_in_use",
  /** An advertised endpoint is not `host:port` (IPv4, `[IPv6]` or a DNS name, port 1-65535). */
  InvalidEndpoint: "invalid_endpoint"
} as const
export type RefusalCode = (typeof RefusalCode)[keyof typeof RefusalCode]

/** RFC 6455 §5.5: a close frame's payload is at most 125 bytes, 2 of them the code. */
export const MAX_CLOSE_REASON_BYTES = 123

/**
 * A close reason cut to what a close frame can carry, by UTF-8 bytes and never inside a
 * character (`ws` throws on a longer reason — which once left an operator's terminal open
 * forever when an agent's reason held non-ASCII text).
 */
export const closeReason = (text: string): string => {
  if (Buffer.byteLength(text, "utf8") <= MAX_CLOSE_REASON_BYTES) return text
  let cut = ""
  let bytes = 0
  for (const char of text) {
    const size = Buffer.byteLength(char, "utf8")
    if (bytes + size > MAX_CLOSE_REASON_BYTES) break
    cut += char
    bytes += size
  }
  return cut
}
