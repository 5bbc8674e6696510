/**
 * Terminal: a browser terminal (xterm.js) on an instance, over the gateway's terminal
 * WebSocket (binary frames are the terminal's bytes; text frames are JSON controls: resize out,
 * exit and closed in). Admin keys only: the gateway refuses other roles anyway.
 *
 * This page is its own document (terminal.html): xterm.js's renderer writes <style> elements and
 * style attributes, which the console's pages do not allow; the terminal document's CSP allows
 * inline styles (never inline scripts), and xterm.js stays out of the other pages' script.
 */
import { useEffect, useRef, useState } from "preact/hooks"
import { Terminal } from "@xterm/xterm"
import { FitAddon } from "@xterm/addon-fit"
import { run, terminalUrl } from "../api"
import { useCatalog } from "../catalog"
import { useLive } from "../live"
import { Alert, Table } from "../ui"

interface InstanceRow {
  readonly id: string
  readonly hostname: string | null
  readonly cluster_id: string | null
  readonly role: string | null
  readonly agent: string
}

/** Where the terminal stands, shown beside it and announced to screen readers. */
type Status = { readonly state: "connecting" | "open" } | { readonly state: "ended"; readonly message: string; readonly failed: boolean }

/** Close codes the gateway uses on the operator's socket (terminal-bridge.ts), in words. */
const CLOSED: Record<number, string> = {
  4502: "the agent's session ended",
  4503: "the agent closed the terminal",
  4504: "the agent sent more output than it was granted",
  4505: "the API key that opened it was revoked"
}

/** Ctrl+] (telnet's escape) moves keyboard focus out of the terminal, which otherwise keeps Tab. */
const isLeaveKey = (event: KeyboardEvent) => event.ctrlKey && event.key === "]"

const XTerm = ({ instanceId, command, onStatus, leave }: { instanceId: string; command: ReadonlyArray<string> | undefined; onStatus: (status: Status) => void; leave: () => void }) => {
  const host = useRef<HTMLDivElement>(null)
  useEffect(() => {
    if (host.current === null) return
    onStatus({ state: "connecting" })
    const term = new Terminal({ cursorBlink: true, fontFamily: 'ui-monospace, "SFMono-Regular", Menlo, monospace', fontSize: 14 })
    const fit = new FitAddon()
    term.loadAddon(fit)
    term.open(host.current)
    fit.fit()
    term.attachCustomKeyEventHandler((event) => {
      if (event.type === "keydown" && isLeaveKey(event)) {
        leave()
        return false
      }
      return true
    })
    const socket = new WebSocket(terminalUrl(instanceId, { cols: term.cols, rows: term.rows }, command))
    socket.binaryType = "arraybuffer"
    let disposed = false
    let opened = false
    let exitCode: number | null | undefined
    let closedReason: string | undefined
    const encoder = new TextEncoder()
    const send = (data: string | Uint8Array) => socket.readyState === WebSocket.OPEN && socket.send(data)
    socket.onopen = () => {
      opened = true
      onStatus({ state: "open" })
      term.focus()
    }
    socket.onmessage = (message) => {
      if (message.data instanceof ArrayBuffer) return term.write(new Uint8Array(message.data))
      const control = JSON.parse(String(message.data)) as { type: string; exit_code?: number | null; reason?: string }
      if (control.type === "exit") exitCode = control.exit_code ?? null
      if (control.type === "closed") closedReason = control.reason
    }
    socket.onclose = (close) => {
      if (disposed) return
      const message =
        exitCode !== undefined
          ? `exited with status ${exitCode ?? "unknown"}`
          : closedReason !== undefined
            ? `closed: ${closedReason}`
            : !opened
              ? // The upgrade's refusal (role, instance not connected, …) reaches a browser only as a drop.
                "could not be opened: the gateway refused it or is out of reach (is the instance's agent connected?)"
              : close.code === 1000
                ? "was closed"
                : `closed: ${CLOSED[close.code] ?? (close.reason || `the connection dropped (code ${close.code})`)}`
      onStatus({ state: "ended", message, failed: exitCode !== 0 })
    }
    const typed = term.onData((data) => send(encoder.encode(data)))
    const binary = term.onBinary((data) => send(Uint8Array.from(data, (c) => c.charCodeAt(0))))
    const resized = term.onResize(({ cols, rows }) => send(JSON.stringify({ type: "resize", cols, rows })))
    const observer = new ResizeObserver(() => fit.fit())
    observer.observe(host.current)
    return () => {
      disposed = true
      observer.disconnect()
      typed.dispose()
      binary.dispose()
      resized.dispose()
      socket.close(1000)
      term.dispose()
    }
  }, [instanceId, command])
  return <div class="terminal" ref={host} data-terminal={instanceId} />
}

/** `sh -c <line>` for a command typed in the form; nothing for a login shell. */
const asCommand = (line: string) => (line.trim() === "" ? undefined : ["sh", "-c", line])

const TerminalView = ({ instanceId }: { instanceId: string }) => {
  const catalog = useCatalog()
  const instance = useLive(
    () => run("system_get_instance", { instance_id: instanceId }) as Promise<InstanceRow>,
    (event) => event.data.instance_id === instanceId,
    [instanceId]
  )
  const [line, setLine] = useState("")
  const [opened, setOpened] = useState<{ command: ReadonlyArray<string> | undefined; attempt: number; open: boolean }>({
    command: undefined,
    attempt: 0,
    open: true
  })
  const [status, setStatus] = useState<Status>({ state: "connecting" })
  const closeButton = useRef<HTMLButtonElement>(null)
  const name = instance.value?.hostname ?? instanceId
  return (
    <section aria-labelledby="terminal-title">
      <p>
        <a href="#/">← Instances</a>
      </p>
      <h1 id="terminal-title">Terminal on {name}</h1>
      <Alert message={instance.error} />
      <form
        class="filters"
        onSubmit={(event) => {
          event.preventDefault()
          setOpened(({ attempt }) => ({ command: asCommand(line), attempt: attempt + 1, open: true }))
        }}
      >
        <label>
          Command (run with sh -c; empty for a login shell)
          <input name="command" value={line} onInput={(e) => setLine((e.target as HTMLInputElement).value)} placeholder="journalctl -u k3s -n 200" size={40} />
        </label>
        <button type="submit">{status.state === "ended" ? "Open again" : "Restart"}</button>
        <button
          type="button"
          ref={closeButton}
          disabled={status.state === "ended"}
          onClick={() => {
            setOpened((o) => ({ ...o, open: false }))
            setStatus({ state: "ended", message: "was closed", failed: false })
          }}
        >
          Close
        </button>
      </form>
      <p role="status" class={status.state === "ended" && status.failed ? "warn" : "muted"} data-terminal-status={status.state}>
        {status.state === "ended"
          ? `The terminal ${status.message}.`
          : status.state === "open"
            ? "Connected. Ctrl+] leaves the terminal (for the keyboard)."
            : "Connecting…"}
      </p>
      {!catalog.canOpenTerminals ? (
        // The gateway refuses the socket too; a browser would only see it drop, so say why here.
        <Alert message={`this API key's role (${catalog.role}) may not open terminals, which needs admin`} />
      ) : (
        opened.open && (
          <XTerm key={opened.attempt} instanceId={instanceId} command={opened.command} onStatus={setStatus} leave={() => closeButton.current?.focus()} />
        )
      )}
    </section>
  )
}

const InstanceList = () => {
  const instances = useLive(
    () => run("system_list_instances", { status: "running" }).then((r: { instances: Array<InstanceRow> }) => r.instances),
    (event) => event.type.startsWith("agent.")
  )
  return (
    <section aria-labelledby="terminal-title">
      <h1 id="terminal-title">Terminal</h1>
      <p class="muted">A shell on a node through its agent's session. Every terminal is audited (who, where, when, how many bytes), never its content.</p>
      <Alert message={instances.error} />
      {instances.value === undefined ? (
        <p class="muted">Loading…</p>
      ) : (
        <Table columns={["Instance", "Cluster role", "Agent", ""]} caption={`${instances.value.length} running instances`}>
          {instances.value.map((instance) => (
            <tr data-instance={instance.hostname ?? instance.id}>
              <td>{instance.hostname ?? instance.id}</td>
              <td>{instance.role ?? "—"}</td>
              <td class={`status-${instance.agent}`}>{instance.agent}</td>
              <td>{instance.agent === "connected" && <a href={`#/${encodeURIComponent(instance.id)}`}>Open terminal</a>}</td>
            </tr>
          ))}
        </Table>
      )}
    </section>
  )
}

export const TerminalPage = ({ id }: { id: string | undefined }) => (id === undefined || id === "" ? <InstanceList /> : <TerminalView instanceId={id} />)
