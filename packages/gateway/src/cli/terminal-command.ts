/**
 * `fleetplane terminal` (a shell or one command on an instance, over the gateway's terminal
 * WebSocket; the remote exit status becomes the CLI's) and `fleetplane mcp` (this account's
 * fleet for an AI client, on stdio).
 */
import { readFileSync } from "node:fs"
import type { Command } from "commander"
import WebSocket from "ws"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { adminApiBackend } from "../mcp/fleet-backend"
import { createFleetMcpServer } from "../mcp/mcp-server"
import { GATEWAY_VERSION } from "../version"
import { CliError, exitCodeFor } from "./admin-client"
import type { CliSession } from "./cli-session"

export const registerTerminalCommands = (program: Command, session: CliSession, setExitCode: (code: number) => void) => {
  const { io } = session

  program
    .command("mcp")
    .description("serve this account's fleet to an AI client over MCP on stdio: tools from the action catalog (what the key's role allows), resources, runbook prompts")
    .action(async () => {
      const { url, apiKey } = session.connection()
      const backend = adminApiBackend(url, apiKey)
      // Fail before the client starts talking: a gateway out of reach or a bad key is said once, plainly.
      try {
        await backend.caller()
      } catch (error) {
        const e = error as { code?: string; message?: string; category?: string; exitCode?: number }
        if (error instanceof CliError) throw error
        throw new CliError(`${e.message ?? String(error)}`, exitCodeFor(e.category), e.code ?? "mcp_unavailable")
      }
      const server = createFleetMcpServer(backend, { version: GATEWAY_VERSION })
      const closed = new Promise<void>((resolve) => {
        const previous = server.onclose
        server.onclose = () => {
          previous?.()
          resolve()
        }
      })
      await server.connect(new StdioServerTransport())
      // The client closing its end of stdin ends the server.
      process.stdin.once("end", () => void server.close())
      await closed
    })

  program
    .command("terminal <instance> [command...]")
    .description("open a terminal on an instance: a login shell, or one command after -- (e.g. -- journalctl -u k3s.service -n 200)")
    .action(async (instance: string, command: Array<string>) => {
      const { url, apiKey, caFile } = session.connection()
      if (apiKey === undefined || apiKey === "") throw new CliError("no API key: pass --api-key or set FLEETPLANE_API_KEY", 3, "missing_api_key")
      const local = io.terminal ?? {
        input: process.stdin,
        output: (bytes: Uint8Array) => process.stdout.write(bytes),
        size: () => ({ cols: process.stdout.columns ?? 80, rows: process.stdout.rows ?? 24 }),
        onResize: (listener: () => void) => {
          process.stdout.on("resize", listener)
          return () => process.stdout.off("resize", listener)
        }
      }
      const { cols, rows } = local.size()
      const query = new URLSearchParams({ cols: String(cols), rows: String(rows), ...(command.length > 0 ? { command: JSON.stringify(command) } : {}) })
      const target = `${url.replace(/^http/, "ws").replace(/\/$/, "")}/v1/instances/${encodeURIComponent(instance)}/terminal?${query}`
      const code = await new Promise<number>((resolve, reject) => {
        const socket = new WebSocket(target, { headers: { authorization: `Bearer ${apiKey}` }, ...(caFile === undefined ? {} : { ca: readFileSync(caFile) }) })
        let exitCode: number | undefined
        const raw = local.input.isTTY === true && typeof local.input.setRawMode === "function"
        const onInput = (chunk: Buffer | string) => socket.readyState === WebSocket.OPEN && socket.send(Buffer.from(chunk), { binary: true })
        const stopResize = local.onResize(() => {
          const size = local.size()
          if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "resize", cols: size.cols, rows: size.rows }))
        })
        const restore = () => {
          stopResize()
          local.input.off("data", onInput)
          if (raw) local.input.setRawMode!(false)
          local.input.pause()
        }
        socket.on("unexpected-response", (_request, response) => {
          let body = ""
          response.on("data", (chunk: Buffer) => (body += chunk.toString()))
          response.on("end", () => {
            restore()
            const error = (JSON.parse(body || "{}") as { error?: { code: string; message: string } }).error
            const status = response.statusCode ?? 0
            reject(new CliError(error?.message ?? `HTTP ${status}`, status === 401 ? 3 : status === 404 ? 4 : status === 400 ? 2 : 6, error?.code ?? "terminal_refused"))
          })
        })
        socket.on("open", () => {
          if (raw) local.input.setRawMode!(true)
          local.input.on("data", onInput)
          local.input.resume()
        })
        socket.on("message", (data: Buffer, isBinary: boolean) => {
          if (isBinary) return local.output(data)
          const control = JSON.parse(data.toString()) as { type: string; exit_code?: number | null; reason?: string }
          if (control.type === "exit") exitCode = control.exit_code ?? 1
          if (control.type === "closed") io.err(`\r\nterminal closed: ${control.reason}\r\n`)
        })
        socket.on("close", () => {
          restore()
          resolve(exitCode ?? 1)
        })
        socket.on("error", (error) => {
          restore()
          reject(new CliError(`cannot open the terminal: ${error.message}`, 10, "unreachable"))
        })
      })
      setExitCode(code)
    })
}
