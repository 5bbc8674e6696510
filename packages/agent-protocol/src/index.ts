/**
 * @fleetplane/agent-protocol — the wire contract between Fleetplane agents and gateways.
 * See PROTOCOL.md for every message, the close and error codes, and sequence diagrams.
 */
export { closeCodeForProtocolError, CloseCode, closeReason, MAX_CLOSE_REASON_BYTES, ProtocolErrorCode, RefusalCode } from "./codes"
export { decodeAgentFrame, decodeGatewayFrame, encodeConfigPush, encodeFrame, type DecodeResult } from "./codec/codec"
export { inspectFrame } from "./codec/frame-inspector"
export { describeSchemaError } from "./codec/schema-issues"
export { ProtocolDecodeError } from "./errors"
export { DEFAULT_FRAME_LIMITS, FIELD_LIMITS, type FrameLimits } from "./limits"
export * from "./messages/index"
export { applyPeerSetChange, PEER_SET_PART_BYTES, PEER_SET_PART_ENTRIES, PeerSetAssembler, PeerSetOutOfSyncError, splitPeerSetPush, type PeerSetState } from "./peer-set"
export { PERSISTENT_KEEPALIVE_SECONDS, renderWireguardConfig, type WireguardConfigParts } from "./wireguard-config"
export { withVipRoutes } from "./wireguard-routes"
export { negotiateProtocolVersion, PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from "./version"
