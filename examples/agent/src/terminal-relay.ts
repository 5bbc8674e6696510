/**
 * Operator terminals on the node: each channel the gateway opens runs in a node-pty
 * pseudo-terminal (a login shell, or one command such as `journalctl -u k3s.service -n 200`).
 * Output is sent only within the credit the gateway granted — a chatty command is paused
 * once a bounded backlog fills, never buffered without bound — and a channel with no traffic for its idle timeout is closed.
 */
import * as pty from "node-pty"
import type { TerminalOpenBody } from "@fleetplane/agent-protocol"
import type { TerminalChannel } from "@fleetplane/agent-protocol/client"

const MAX_CHUNK_BYTES = 64 * 1024
/**
 * Output waiting for credit is held up to this much; beyond it the program is paused. (Not
 * lower: node-pty drops what a paused terminal still had buffered when the program exits.)
 */
const BACKLOG_HIGH_WATER_BYTES = 256 * 1024

interface OpenTerminal {
  readonly process: pty.IPty
  readonly channel: TerminalChannel
  credit: number
  paused: boolean
  readonly backlog: Array<Buffer>
  bytesOut: number
  idle: NodeJS.Timeout
  readonly idleTimeoutMs: number
  /** Set when the program ended; the exit is reported once the backlog is sent. */
  exited: { readonly exitCode: number; readonly signal: string | null } | undefined
  readonly id: string
}

export interface TerminalRelayOptions {
  /** At most this many terminals at once on this node. */
  readonly maxTerminals?: number
  readonly shell?: string
  readonly log?: (line: string) => void
}

export const createTerminalRelay = (options: TerminalRelayOptions = {}) => {
  const terminals = new Map<string, OpenTerminal>()
  const log = options.log ?? (() => undefined)

  const touch = (terminal: OpenTerminal, id: string) => {
    clearTimeout(terminal.idle)
    terminal.idle = setTimeout(() => {
      log(`terminal ${id}: idle for ${terminal.idleTimeoutMs} ms, closing`)
      close(id, "idle timeout")
    }, terminal.idleTimeoutMs)
  }

  /** Sends what the credit allows; pauses the program when the credit runs out. */
  const flush = (terminal: OpenTerminal) => {
    while (terminal.backlog.length > 0 && terminal.credit > 0) {
      const next = terminal.backlog[0]!
      const size = Math.min(next.length, terminal.credit, MAX_CHUNK_BYTES)
      terminal.channel.write(next.subarray(0, size))
      terminal.credit -= size
      terminal.bytesOut += size
      if (size === next.length) terminal.backlog.shift()
      else terminal.backlog[0] = next.subarray(size)
    }
    const starved = terminal.backlog.length > 0
    const held = terminal.backlog.reduce((sum, chunk) => sum + chunk.length, 0)
    if (held > BACKLOG_HIGH_WATER_BYTES && !terminal.paused) {
      terminal.process.pause()
      terminal.paused = true
    } else if (held <= BACKLOG_HIGH_WATER_BYTES && terminal.paused) {
      terminal.process.resume()
      terminal.paused = false
    }
    if (!starved && terminal.exited !== undefined) {
      // Output the program wrote before exiting may still be in the pty; give it a moment.
      setTimeout(() => {
        if (terminal.backlog.length > 0) return flush(terminal)
        if (!terminals.has(terminal.id)) return
        terminals.delete(terminal.id)
        clearTimeout(terminal.idle)
        terminal.channel.exit(terminal.exited!.exitCode, terminal.exited!.signal, terminal.bytesOut)
      }, 25)
    }
  }

  const close = (id: string, reason: string) => {
    const terminal = terminals.get(id)
    if (terminal === undefined) return
    terminals.delete(id)
    clearTimeout(terminal.idle)
    terminal.process.kill()
    terminal.channel.close(reason)
  }

  return {
    open: (open: TerminalOpenBody, channel: TerminalChannel) => {
      if (terminals.size >= (options.maxTerminals ?? 4)) {
        channel.close(`too many terminals on this node (at most ${options.maxTerminals ?? 4})`)
        return
      }
      const [file, ...args] = open.command ?? [options.shell ?? process.env.SHELL ?? "/bin/bash", "-l"]
      let process_: pty.IPty
      try {
        process_ = pty.spawn(file!, args, { name: "xterm-256color", cols: open.cols, rows: open.rows, cwd: process.env.HOME ?? "/", env: process.env as Record<string, string> })
      } catch (error) {
        channel.close(`could not start ${file}: ${error instanceof Error ? error.message : String(error)}`)
        return
      }
      const terminal: OpenTerminal = {
        process: process_,
        channel,
        credit: open.initial_credit_bytes,
        paused: false,
        backlog: [],
        bytesOut: 0,
        idle: setTimeout(() => undefined, 0),
        idleTimeoutMs: open.idle_timeout_ms,
        exited: undefined,
        id: open.channel_id
      }
      terminals.set(open.channel_id, terminal)
      touch(terminal, open.channel_id)
      process_.onData((data) => {
        terminal.backlog.push(Buffer.from(data, "utf8"))
        flush(terminal)
        touch(terminal, open.channel_id)
      })
      process_.onExit(({ exitCode, signal }) => {
        // Let the last output events land; the exit goes out after the output it follows.
        setImmediate(() => {
          if (!terminals.has(open.channel_id)) return
          terminal.exited = { exitCode, signal: signal ? String(signal) : null }
          flush(terminal)
        })
      })
      log(`terminal ${open.channel_id}: started ${open.command === null ? "a shell" : open.command.join(" ")}`)
    },
    input: (id: string, data: Uint8Array) => {
      const terminal = terminals.get(id)
      if (terminal === undefined) return
      terminal.process.write(Buffer.from(data).toString("utf8"))
      touch(terminal, id)
    },
    resize: (id: string, cols: number, rows: number) => terminals.get(id)?.process.resize(cols, rows),
    credit: (id: string, bytes: number) => {
      const terminal = terminals.get(id)
      if (terminal === undefined) return
      terminal.credit += bytes
      flush(terminal)
    },
    close: (id: string, reason: string) => {
      const terminal = terminals.get(id)
      if (terminal === undefined) return
      terminals.delete(id)
      clearTimeout(terminal.idle)
      terminal.process.kill()
      log(`terminal ${id}: closed by the gateway (${reason})`)
    },
    closeAll: () => {
      for (const id of [...terminals.keys()]) close(id, "agent stopping")
    },
    get open_count() {
      return terminals.size
    }
  }
}
