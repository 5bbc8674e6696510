/**
 * Operator terminals relayed over the agent session. Output from the node is
 * credit-based: the agent sends at most the bytes the gateway granted.
 */
import { Schema } from "effect"
import { boundedArray, Count, defineMessage as message, Id, PositiveCount, ShortText } from "./fields"
import { FIELD_LIMITS } from "../limits"

const Dimension = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 }))

export const TerminalOpenBody = Schema.Struct({
  channel_id: Id,
  /** argv to run, or `null` for the login shell. */
  command: Schema.NullOr(boundedArray(Schema.String.check(Schema.isMaxLength(FIELD_LIMITS.messageLength)), 256)),
  cols: Dimension,
  rows: Dimension,
  idle_timeout_ms: PositiveCount,
  /** Output bytes the agent may send before waiting for `terminal_credit`. */
  initial_credit_bytes: PositiveCount
})
export const TerminalOpen = message("terminal_open", TerminalOpenBody)
export type TerminalOpen = typeof TerminalOpen.Type

export const TerminalDataBody = Schema.Struct({
  channel_id: Id,
  data: Schema.Uint8Array.check(Schema.isMaxLength(FIELD_LIMITS.terminalChunkBytes))
})
export const TerminalData = message("terminal_data", TerminalDataBody)
export type TerminalData = typeof TerminalData.Type

export const TerminalResizeBody = Schema.Struct({ channel_id: Id, cols: Dimension, rows: Dimension })
export const TerminalResize = message("terminal_resize", TerminalResizeBody)
export type TerminalResize = typeof TerminalResize.Type

export const TerminalCreditBody = Schema.Struct({ channel_id: Id, bytes: PositiveCount })
export const TerminalCredit = message("terminal_credit", TerminalCreditBody)
export type TerminalCredit = typeof TerminalCredit.Type

export const TerminalCloseBody = Schema.Struct({ channel_id: Id, reason: ShortText })
export const TerminalClose = message("terminal_close", TerminalCloseBody)
export type TerminalClose = typeof TerminalClose.Type

export const TerminalExitBody = Schema.Struct({
  channel_id: Id,
  exit_code: Schema.NullOr(Schema.Int),
  signal: Schema.NullOr(ShortText),
  bytes_out: Count
})
export const TerminalExit = message("terminal_exit", TerminalExitBody)
export type TerminalExit = typeof TerminalExit.Type
export type TerminalOpenBody = typeof TerminalOpenBody.Type
export type TerminalDataBody = typeof TerminalDataBody.Type
export type TerminalResizeBody = typeof TerminalResizeBody.Type
export type TerminalCreditBody = typeof TerminalCreditBody.Type
export type TerminalCloseBody = typeof TerminalCloseBody.Type
export type TerminalExitBody = typeof TerminalExitBody.Type
