/**
 * Operator terminals end to end: the fleetplane CLI (or a WebSocket) -> the gateway's admin
 * port -> the agent's session -> a real node-pty on the node, and back.
 */
import { PassThrough } from "node:stream"
import { afterEach, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { runCli, type Gateway } from "@fleetplane/gateway"
import type { ReferenceAgent } from "../src/index"
import { terminalInstance, testGateway } from "./support/fixture"
let gateway: Gateway | undefined
const agents: Array<ReferenceAgent> = []
afterEach(async () => {
  for (const agent of agents.splice(0)) agent.stop()
  await gateway?.close()
  gateway = undefined
})

const setup = async (options: { idleMs?: number } = {}) => {
  gateway = await testGateway(options.idleMs === undefined ? {} : { terminalIdleTimeoutMs: options.idleMs })
  const { account, ops, agent, key, keyId, instanceId } = await terminalInstance(gateway)
  agents.push(agent)
  return { gateway, account, key, keyId, instanceId, ops }
}

/** Runs `fleetplane terminal` in-process with a scripted local terminal. */
const cliTerminal = async (env: Record<string, string>, args: Array<string>, typed: Array<string> = []) => {
  const input = new PassThrough()
  let output = ""
  const run = runCli(["terminal", ...args], {
    out: () => undefined,
    err: () => undefined,
    ask: undefined,
    terminal: { input, output: (bytes) => (output += Buffer.from(bytes).toString()), size: () => ({ cols: 100, rows: 30 }), onResize: () => () => undefined }
  }, env)
  for (const line of typed) {
    await new Promise((resolve) => setTimeout(resolve, 150))
    input.write(line)
  }
  const code = await run
  return { code, output }
}

const openSocket = (gateway: Gateway, key: string, instanceId: string, query: Record<string, string>) =>
  new WebSocket(`${gateway.adminUrl.replace("http", "ws")}/v1/instances/${instanceId}/terminal?${new URLSearchParams(query)}`, { headers: { authorization: `Bearer ${key}` } })

describe("operator terminal", () => {
  it("fleetplane terminal -- <command> shows the command's output and exits with its status; the terminal is audited without its content", async () => {
    const { gateway, key, keyId, instanceId, ops } = await setup()
    const env = { FLEETPLANE_URL: gateway.adminUrl, FLEETPLANE_API_KEY: key }
    const result = await cliTerminal(env, [instanceId, "--", "bash", "-c", "echo secret-output-$((6*7)); tput cols; exit 7"])
    expect(result.code).toBe(7)
    expect(result.output).toContain("secret-output-42")
    expect(result.output).toContain("100")
    await new Promise((resolve) => setTimeout(resolve, 100))
    const events = await ops.events.list({ limit: 1000 })
    const opened = events.find((e) => e.type === "terminal.opened")
    const closed = events.find((e) => e.type === "terminal.closed")
    expect(opened?.data).toMatchObject({ instance_id: instanceId, command: ["bash", "-c", "echo secret-output-$((6*7)); tput cols; exit 7"], by: { api_key_id: keyId, name: "oncall" } })
    expect(closed?.data).toMatchObject({ instance_id: instanceId, exit_code: 7, reason: "exited" })
    expect(closed?.data.bytes_out).toBeGreaterThan(10)
    expect(typeof closed?.data.started_at).toBe("string")
    expect(typeof closed?.data.ended_at).toBe("string")
    expect(JSON.stringify(events)).not.toContain("secret-output-42")
  }, 20_000)

  it("typed input reaches the program and a resize is visible to it (tput cols)", async () => {
    const { gateway, key, instanceId } = await setup()
    const socket = openSocket(gateway, key, instanceId, { command: JSON.stringify(["bash", "-c", "read line; echo got:$line; read again; tput cols"]), cols: "80", rows: "24" })
    let output = ""
    let exit: { exit_code: number } | undefined
    socket.on("message", (data: Buffer, isBinary: boolean) => (isBinary ? (output += data.toString()) : (exit = JSON.parse(data.toString()))))
    await new Promise((resolve) => socket.once("open", resolve))
    await new Promise((resolve) => setTimeout(resolve, 200))
    socket.send(Buffer.from("ping\r"), { binary: true })
    while (!output.includes("got:ping")) await new Promise((resolve) => setTimeout(resolve, 20))
    socket.send(JSON.stringify({ type: "resize", cols: 133, rows: 40 }))
    await new Promise((resolve) => setTimeout(resolve, 100))
    socket.send(Buffer.from("\r"), { binary: true })
    await new Promise((resolve) => socket.once("close", resolve))
    expect(output).toContain("133")
    expect(exit).toMatchObject({ type: "exit", exit_code: 0 })
  }, 20_000)

  it("an idle terminal is closed after the idle timeout", async () => {
    const { gateway, key, instanceId } = await setup({ idleMs: 300 })
    const socket = openSocket(gateway, key, instanceId, { command: JSON.stringify(["sleep", "30"]) })
    const closed = await new Promise<{ code: number; reason: string }>((resolve) => socket.on("close", (code, reason) => resolve({ code, reason: reason.toString() })))
    expect(closed).toEqual({ code: 4503, reason: "idle timeout" })
  }, 20_000)

  it("another account's key is refused exactly like a missing instance", async () => {
    const { gateway, instanceId } = await setup()
    const other = await gateway.fleet.createAccount({ name: "other" })
    const otherKey = await gateway.fleet.createApiKey({ account_id: other.id, name: "x", role: "admin" })
    const env = { FLEETPLANE_URL: gateway.adminUrl, FLEETPLANE_API_KEY: otherKey.api_key }
    const foreign = await cliTerminal(env, [instanceId, "--", "id"])
    const missing = await cliTerminal(env, ["ins_0000000000000000000000000", "--", "id"])
    expect(foreign.code).toBe(4)
    expect(missing.code).toBe(4)
    const noKey = await cliTerminal({ FLEETPLANE_URL: gateway.adminUrl, FLEETPLANE_API_KEY: "fpk_guess" }, [instanceId, "--", "id"])
    expect(noKey.code).toBe(3)
  }, 20_000)
})
