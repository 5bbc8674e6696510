/**
 * Terminal relay over a real session and a real node-pty: a scripted gateway opens
 * channels and reads what the agent sends back.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Result } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { WebSocketServer, type WebSocket } from "ws"
import { decodeAgentFrame, encodeFrame, type AgentMessage, type GatewayMessage } from "@fleetplane/agent-protocol"
import { startReferenceAgent, type ReferenceAgent } from "../src/index"

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const setup = async () => {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  await new Promise<void>((resolve) => server.once("listening", () => resolve()))
  const received: Array<AgentMessage> = []
  let socket: WebSocket | undefined
  const connected = new Promise<void>((resolve) => {
    server.on("connection", (ws) => {
      socket = ws
      ws.on("message", (data: Buffer) => {
        const decoded = decodeAgentFrame(data)
        if (Result.isFailure(decoded)) return
        received.push(decoded.success)
        if (decoded.success.type === "hello") {
          ws.send(
            encodeFrame({
              type: "welcome",
              body: { session_id: "s", gateway_id: "g", protocol_version: 1, heartbeat_interval_ms: 1_000, silence_threshold_ms: 3_000, server_time_ms: 0, max_frame_bytes: 1 << 20 }
            })
          )
          resolve()
        }
      })
    })
  })
  cleanups.push(() => new Promise<void>((resolve) => {
    for (const client of server.clients) client.terminate()
    server.close(() => resolve())
  }))
  const agent: ReferenceAgent = await startReferenceAgent({
    gatewayUrl: `ws://127.0.0.1:${(server.address() as { port: number }).port}/v1/agent`,
    stateDir: mkdtempSync(join(tmpdir(), "fleetplane-term-state-")),
    root: mkdtempSync(join(tmpdir(), "fleetplane-term-root-")),
    instanceId: "ins_term",
    credential: "fpa_x",
    simulate: true,
    log: () => undefined
  })
  cleanups.push(() => agent.stop())
  await connected
  const send = (message: GatewayMessage) => socket!.send(encodeFrame(message))
  const output = (channel: string) =>
    Buffer.concat(received.flatMap((m) => (m.type === "terminal_data" && m.body.channel_id === channel ? [Buffer.from(m.body.data)] : []))).toString("utf8")
  const waitFor = async (check: () => boolean, what: string, timeoutMs = 5_000) => {
    const deadline = Date.now() + timeoutMs
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; received ${received.map((m) => m.type).join(",")}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  return { send, received, output, waitFor }
}

const open = (channel_id: string, command: Array<string> | null, extra: Partial<Extract<GatewayMessage, { type: "terminal_open" }>["body"]> = {}): GatewayMessage => ({
  type: "terminal_open",
  body: { channel_id, command, cols: 91, rows: 24, idle_timeout_ms: 10_000, initial_credit_bytes: 1 << 20, ...extra }
})

describe("terminal relay (node-pty)", () => {
  it("runs a command in a pseudo-terminal and returns its output, its terminal size and its exit code", async () => {
    const { send, received, output, waitFor } = await setup()
    send(open("ch1", ["bash", "-c", "echo hello-from-node; tput cols; exit 3"]))
    await waitFor(() => received.some((m) => m.type === "terminal_exit"), "exit")
    expect(output("ch1")).toContain("hello-from-node")
    expect(output("ch1")).toContain("91")
    const exit = received.find((m) => m.type === "terminal_exit")
    expect(exit?.body).toMatchObject({ channel_id: "ch1", exit_code: 3 })
  })

  it("passes input to the program and applies resizes", async () => {
    const { send, received, output, waitFor } = await setup()
    send(open("ch2", ["bash", "-c", "read line; echo got:$line; read again; tput cols"]))
    await new Promise((resolve) => setTimeout(resolve, 200))
    send({ type: "terminal_data", body: { channel_id: "ch2", data: Buffer.from("ping\r") } })
    await waitFor(() => output("ch2").includes("got:ping"), "echo of the input")
    send({ type: "terminal_resize", body: { channel_id: "ch2", cols: 132, rows: 40 } })
    await new Promise((resolve) => setTimeout(resolve, 100))
    send({ type: "terminal_data", body: { channel_id: "ch2", data: Buffer.from("\r") } })
    await waitFor(() => received.some((m) => m.type === "terminal_exit"), "exit")
    expect(output("ch2")).toContain("132")
  })

  it("sends no more output than the credit granted, and the rest once credit arrives", async () => {
    const { send, received, output, waitFor } = await setup()
    send(open("ch3", ["bash", "-c", "head -c 3000 /dev/zero | tr '\\0' x; echo; echo done"], { initial_credit_bytes: 500 }))
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(Buffer.byteLength(output("ch3"))).toBeLessThanOrEqual(500)
    expect(received.some((m) => m.type === "terminal_exit")).toBe(false)
    send({ type: "terminal_credit", body: { channel_id: "ch3", bytes: 1 << 20 } })
    await waitFor(() => received.some((m) => m.type === "terminal_exit"), "exit")
    expect(output("ch3")).toContain("done")
    expect((output("ch3").match(/x/g) ?? []).length).toBe(3000)
  })

  it("closes a terminal with no traffic for its idle timeout", async () => {
    const { send, received, waitFor } = await setup()
    send(open("ch4", ["sleep", "30"], { idle_timeout_ms: 200 }))
    await waitFor(() => received.some((m) => m.type === "terminal_close"), "idle close")
    expect(received.find((m) => m.type === "terminal_close")?.body).toEqual({ channel_id: "ch4", reason: "idle timeout" })
  })
})
