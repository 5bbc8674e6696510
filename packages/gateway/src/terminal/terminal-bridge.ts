/**
 * One operator terminal: the operator's WebSocket on one side, a channel over the agent's
 * session on the other. Both directions are bounded per channel:
 * - output from the node flows under credit: the gateway grants the agent more bytes only
 *   after the operator's socket took the previous ones, and counts what it granted — an agent
 *   that sends more than that loses the channel (counted and logged), so a chatty or hostile
 *   node holds at most `INITIAL_CREDIT_BYTES` in gateway memory;
 * - input from the operator is relayed at most a window ahead of what the agent's socket has
 *   taken (`INPUT_WINDOW_BYTES`, or a quarter of the session's send bound if that is smaller);
 *   beyond it the operator's socket is paused (TCP pushes back on the operator), so a pasted
 *   flood can never swell the agent's session into a slow-consumer close.
 * Every terminal is audited (who, which instance, command, start, end, bytes each way); its
 * content never is.
 */
import type { WebSocket } from "ws"
import { closeReason } from "@fleetplane/agent-protocol"
import type { AgentSession, TerminalBridgeLike } from "../agent/agent-session"

export const INITIAL_CREDIT_BYTES = 256 * 1024
export const INPUT_WINDOW_BYTES = 256 * 1024

/** Close codes on the operator's socket. */
export const TerminalCloseCode = {
  /** The program exited (its status was sent just before) or the operator closed. */
  Normal: 1000,
  /** The agent's session ended while the terminal was open. */
  AgentGone: 4502,
  /** The agent closed the channel (idle timeout, too many terminals, could not start). */
  ClosedByAgent: 4503,
  /** The agent sent more output than the credit it was granted; the channel was closed. */
  CreditExceeded: 4504,
  /** The API key that opened the terminal was revoked. */
  KeyRevoked: 4505
} as const

export interface TerminalAudit {
  readonly record: (type: string, data: Record<string, unknown>) => void
  readonly who: { readonly api_key_id: string; readonly name: string }
  /** An agent broke the flow control of this channel (counted by the gateway's metrics, logged). */
  readonly onCreditExceeded?: (sent: number, granted: number) => void
}

export class TerminalBridge implements TerminalBridgeLike {
  private bytesIn = 0
  private bytesOut = 0
  /** Output the agent may still send: granted and not yet used. */
  private creditLeft = INITIAL_CREDIT_BYTES
  /** Operator input handed to the agent's socket and not yet written out by it. */
  private inputInFlight = 0
  private inputPaused = false
  private finished = false
  private readonly startedAt = new Date()

  constructor(
    private readonly session: AgentSession,
    private readonly operator: WebSocket,
    readonly channelId: string,
    private readonly command: ReadonlyArray<string> | null,
    private readonly audit: TerminalAudit,
    /** The session's send bound (its slow-consumer limit): operator input stays well under it. */
    maxBufferedBytes: number = Number.POSITIVE_INFINITY
  ) {
    this.inputWindow = Math.max(1, Math.min(INPUT_WINDOW_BYTES, Math.floor(maxBufferedBytes / 4)))
  }

  private readonly inputWindow: number

  start(cols: number, rows: number, idleTimeoutMs: number) {
    this.session.terminals.set(this.channelId, this)
    this.audit.record("terminal.opened", {
      channel_id: this.channelId,
      instance_id: this.session.identity.instanceId,
      command: this.command,
      by: this.audit.who,
      started_at: this.startedAt.toISOString()
    })
    this.session.send({
      type: "terminal_open",
      body: { channel_id: this.channelId, command: this.command === null ? null : [...this.command], cols, rows, idle_timeout_ms: idleTimeoutMs, initial_credit_bytes: INITIAL_CREDIT_BYTES }
    })
    this.operator.on("message", (data: Buffer, isBinary: boolean) => {
      if (this.finished) return
      if (isBinary) {
        this.bytesIn += data.length
        // Chunks no larger than the window, so what is in flight stays under twice the window.
        const size = Math.min(64 * 1024, this.inputWindow)
        for (let at = 0; at < data.length; at += size) {
          const chunk = data.subarray(at, at + size)
          this.inputInFlight += chunk.length
          this.session.send({ type: "terminal_data", body: { channel_id: this.channelId, data: chunk } }, () => {
            this.inputInFlight -= chunk.length
            if (this.inputPaused && this.inputInFlight <= this.inputWindow / 2) {
              this.inputPaused = false
              this.operator.resume()
            }
          })
        }
        if (this.inputInFlight >= this.inputWindow && !this.inputPaused) {
          this.inputPaused = true
          this.operator.pause()
        }
        return
      }
      let control: { type?: unknown; cols?: unknown; rows?: unknown }
      try {
        control = JSON.parse(data.toString("utf8"))
      } catch {
        return
      }
      if (control.type === "resize" && Number.isInteger(control.cols) && Number.isInteger(control.rows)) {
        const cols = Math.min(1000, Math.max(1, control.cols as number))
        const rows = Math.min(1000, Math.max(1, control.rows as number))
        this.session.send({ type: "terminal_resize", body: { channel_id: this.channelId, cols, rows } })
      }
    })
    this.operator.on("close", () => {
      if (this.finished) return
      this.session.send({ type: "terminal_close", body: { channel_id: this.channelId, reason: "operator closed the terminal" } })
      this.finish("operator_closed", null, null)
    })
  }

  fromAgentData(data: Uint8Array) {
    if (this.finished) return
    if (data.length > this.creditLeft) return this.creditExceeded(data.length)
    this.creditLeft -= data.length
    this.bytesOut += data.length
    // Credit goes back only once the operator's socket has taken these bytes.
    this.operator.send(data, { binary: true }, (error) => {
      if (error !== undefined || this.finished) return
      this.creditLeft += data.length
      this.session.send({ type: "terminal_credit", body: { channel_id: this.channelId, bytes: data.length } })
    })
  }

  /** The agent ignored flow control: the channel ends at once, on both sides. */
  private creditExceeded(sent: number) {
    const granted = this.creditLeft
    this.audit.onCreditExceeded?.(sent, granted)
    this.end(TerminalCloseCode.CreditExceeded, "credit_exceeded", "the node sent output beyond its granted credit; the terminal was closed")
  }

  /** The gateway ends the terminal (a rule was broken, its key was revoked): both sides are told why. */
  end(code: number, reason: string, message: string) {
    if (this.finished) return
    this.session.send({ type: "terminal_close", body: { channel_id: this.channelId, reason: message } })
    this.operator.send(JSON.stringify({ type: "closed", reason: message }))
    this.finish(reason, null, null)
    this.operator.close(code, closeReason(message))
  }

  fromAgentExit(exitCode: number | null, signal: string | null) {
    if (this.finished) return
    this.operator.send(JSON.stringify({ type: "exit", exit_code: exitCode, signal }))
    this.finish("exited", exitCode, signal)
    this.operator.close(TerminalCloseCode.Normal, "exited")
  }

  fromAgentClose(reason: string) {
    if (this.finished) return
    this.operator.send(JSON.stringify({ type: "closed", reason }))
    this.finish(reason, null, null)
    this.operator.close(TerminalCloseCode.ClosedByAgent, closeReason(reason))
  }

  agentGone() {
    if (this.finished) return
    this.finish("agent_disconnected", null, null)
    this.operator.close(TerminalCloseCode.AgentGone, "the agent's session ended")
  }

  private finish(reason: string, exitCode: number | null, signal: string | null) {
    this.finished = true
    // A paused operator socket would never read the operator's close frame, leaving the
    // terminal half-closed until ws's 30 s close timeout; what it still sends is dropped.
    if (this.inputPaused) {
      this.inputPaused = false
      this.operator.resume()
    }
    this.session.terminals.delete(this.channelId)
    this.audit.record("terminal.closed", {
      channel_id: this.channelId,
      instance_id: this.session.identity.instanceId,
      command: this.command,
      by: this.audit.who,
      started_at: this.startedAt.toISOString(),
      ended_at: new Date().toISOString(),
      bytes_in: this.bytesIn,
      bytes_out: this.bytesOut,
      exit_code: exitCode,
      signal,
      reason
    })
  }
}
