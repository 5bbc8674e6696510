/**
 * The message catalog, split by direction. The gateway decodes only agent messages and
 * the agent only gateway messages, so a peer cannot send a message meant for the other side.
 */
import { Schema } from "effect"
import { ConfigAck, ConfigPush } from "./config"
import { JoinAccepted, JoinRejected, JoinRequest } from "./join"
import { ErrorMessage, Heartbeat, Hello, StatusReport, Welcome, WireguardKeys } from "./session"
import { TerminalClose, TerminalCredit, TerminalData, TerminalExit, TerminalOpen, TerminalResize } from "./terminal"
import { VipAck, VipAssign, VipRelease } from "./vip"

/** Messages an agent sends to a gateway. */
export const agentMessageSchemas = {
  hello: Hello,
  heartbeat: Heartbeat,
  wireguard_keys: WireguardKeys,
  status_report: StatusReport,
  join_request: JoinRequest,
  config_ack: ConfigAck,
  vip_ack: VipAck,
  terminal_data: TerminalData,
  terminal_exit: TerminalExit,
  terminal_close: TerminalClose,
  error: ErrorMessage
} as const

/** Messages a gateway sends to an agent. */
export const gatewayMessageSchemas = {
  welcome: Welcome,
  join_accepted: JoinAccepted,
  join_rejected: JoinRejected,
  config_push: ConfigPush,
  vip_assign: VipAssign,
  vip_release: VipRelease,
  terminal_open: TerminalOpen,
  terminal_data: TerminalData,
  terminal_resize: TerminalResize,
  terminal_credit: TerminalCredit,
  terminal_close: TerminalClose,
  error: ErrorMessage
} as const

export const AgentMessage = Schema.Union([
  Hello,
  Heartbeat,
  WireguardKeys,
  StatusReport,
  JoinRequest,
  ConfigAck,
  VipAck,
  TerminalData,
  TerminalExit,
  TerminalClose,
  ErrorMessage
])
export type AgentMessage = typeof AgentMessage.Type
export type AgentMessageType = AgentMessage["type"]

export const GatewayMessage = Schema.Union([
  Welcome,
  JoinAccepted,
  JoinRejected,
  ConfigPush,
  VipAssign,
  VipRelease,
  TerminalOpen,
  TerminalData,
  TerminalResize,
  TerminalCredit,
  TerminalClose,
  ErrorMessage
])
export type GatewayMessage = typeof GatewayMessage.Type
export type GatewayMessageType = GatewayMessage["type"]

export type MessageOf<M extends { type: string }, T extends M["type"]> = Extract<M, { type: T }>

export * from "./config"
export * from "./fields"
export * from "./join"
export * from "./session"
export * from "./terminal"
export * from "./vip"
