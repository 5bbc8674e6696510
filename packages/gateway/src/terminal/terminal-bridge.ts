/**
 * One operator terminal: the operator's WebSocket on one side, a channel over the agent's
 * session on the other. Output from the node flows under credit: the gateway grants the
 * agent more bytes only after the operator's socket took the previous ones, so a chatty
 * command holds at most `INITIAL_CREDIT_BYTES` in gateway memory. Every terminal is audited
 * (who, which instance, command, start, end, bytes each way); its content never is.
 */
import type { WebSocket } from "ws"
import type { AgentSession, TerminalBridgeLike } from "../agent/agent-session"

export const INITIAL_CREDIT_BYTES = 256 * 1024

/** Close codes on the operator's socket. */
export const TerminalCloseCode = {
  /** The program exited (its status was sent just before) or the operator closed. */
  Normal: 1000,
  /** The agent's session ended while the terminal was open. */
  AgentGone: 4502,
  /** The agent closed the channel (idle timeout, too many terminals, could not start). */
  ClosedByAgent: 4503
} as const

export interface TerminalAudit {
  readonly record: (type: string, data: Record<string, unknown>) => void
  readonly who: { readonly api_key_id: string; readonly name: string }
}

export class TerminalBridge implements TerminalBridgeLike {
  private bytesIn = 0
  private bytesOut = 0
  private finished = false
  private readonly startedAt = new Date()

  constructor(
    private readonly session: AgentSession,
    private readonly operator: WebSocket,
    readonly channelId: string,
    private readonly command: ReadonlyArray<string> | null,
    private readonly audit: TerminalAudit
  ) {}

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
      if (isBinary) {
        this.bytesIn += data.length
        for (let at = 0; at < data.length; at += 64 * 1024) {
          this.session.send({ type: "terminal_data", body: { channel_id: this.channelId, data: data.subarray(at, at + 64 * 1024) } })
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
    this.bytesOut += data.length
    // Credit goes back only once the operator's socket has taken these bytes.
    this.operator.send(data, { binary: true }, (error) => {
      if (error === undefined && !this.finished) this.session.send({ type: "terminal_credit", body: { channel_id: this.channelId, bytes: data.length } })
    })
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
    this.operator.close(TerminalCloseCode.ClosedByAgent, reason.slice(0, 120))
  }

  agentGone() {
    if (this.finished) return
    this.finish("agent_disconnected", null, null)
    this.operator.close(TerminalCloseCode.AgentGone, "the agent's session ended")
  }

  private finish(reason: string, exitCode: number | null, signal: string | null) {
    this.finished = true
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
