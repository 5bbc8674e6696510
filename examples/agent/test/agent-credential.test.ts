/**
 * The agent's credential on a node (#15.9, #15.3): rotated over the live session without a
 * lockout, never overwritten by an unverified value given at start, never taken from argv;
 * and no value from the gateway reaches a shell.
 */
import { execFile } from "node:child_process"
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterEach, describe, expect, it } from "vitest"
import type { Gateway } from "@fleetplane/gateway"
import WebSocket from "ws"
import { CloseCode, encodeFrame, PROTOCOL_VERSION } from "@fleetplane/agent-protocol"
import { AgentState, DEFAULT_APPLY_COMMANDS, startReferenceAgent, type ReferenceAgent } from "../src/index"
import { createConfigApplier } from "../src/config-appliers"
import { createNodeCommands } from "../src/node-commands"
import { scratch, serverInstance, testGateway, waitFor } from "./support/fixture"

const run = promisify(execFile)
const CLI = join(__dirname, "..", "bin", "fleetplane-agent.js")

let gateway: Gateway | undefined
const agents: Array<ReferenceAgent> = []
afterEach(async () => {
  for (const agent of agents.splice(0)) agent.stop()
  await gateway?.close()
  gateway = undefined
})

const start = async (gatewayUrl: string, stateDir: string, given: { instanceId?: string; credential?: string } = {}) => {
  const agent = await startReferenceAgent({
    gatewayUrl,
    stateDir,
    root: scratch("root"),
    ...given,
    simulate: true,
    readyDelayMs: 50,
    log: () => undefined
  })
  agents.push(agent)
  return agent
}

/** The close code a bare hello with this credential gets. */
const helloCloseCode = (url: string, instanceId: string, credential: string) =>
  new Promise<number>((resolve, reject) => {
    const socket = new WebSocket(url)
    socket.on("open", () =>
      socket.send(
        encodeFrame({
          type: "hello",
          body: { instance_id: instanceId, credential, agent_version: "test", protocol_versions: [PROTOCOL_VERSION], capabilities: [], wireguard_keys: [], applied: [], held_vips: [] }
        }),
        { binary: true }
      )
    )
    socket.on("close", (code) => resolve(code))
    socket.on("error", reject)
  })

const storedCredential = (stateDir: string) => (JSON.parse(readFileSync(join(stateDir, "identity.json"), "utf8")) as { credential: string }).credential

describe("the agent's credential", () => {
  it("a rotated credential reaches the connected agent, which stores it, confirms it, and uses it after a restart", async () => {
    gateway = await testGateway()
    const { ops, instance } = await serverInstance(gateway)
    const stateDir = scratch("state")
    chmodSync(stateDir, 0o755) // made by an installer with a loose umask: the agent tightens it
    const agent = await start(gateway.agentUrl, stateDir, { instanceId: instance.id, credential: instance.agent_credential })
    await agent.joined

    const rotated = await ops.actions.system_rotate_agent_credential({ instance_id: instance.id })
    expect(rotated.delivery).toBe("pushed to the connected agent")
    await waitFor(() => storedCredential(stateDir) === rotated.agent_credential, "the rotated credential stored")
    await waitFor(async () => (await ops.actions.system_list_events({})).events.some((e: { type: string }) => e.type === "agent.credential_confirmed"), "the rotation confirmed")
    // Stored owner-only, like the first, in a directory only its owner can enter.
    expect(statSync(join(stateDir, "identity.json")).mode & 0o777).toBe(0o600)
    expect(statSync(stateDir).mode & 0o777).toBe(0o700)

    // Restarted with nothing given, it comes back with the new credential.
    agent.stop()
    const again = await start(gateway.agentUrl, stateDir)
    await waitFor(() => again.client.connected, "reconnected with the rotated credential")

    // The old credential is refused now: a copy of it elsewhere is worthless.
    expect(await helloCloseCode(gateway.agentUrl, instance.id, instance.agent_credential)).toBe(CloseCode.AuthenticationFailed)
  })

  it("a wrong credential given at restart does not overwrite the stored one that works", async () => {
    gateway = await testGateway()
    const { instance } = await serverInstance(gateway)
    const stateDir = scratch("state")
    const first = await start(gateway.agentUrl, stateDir, { instanceId: instance.id, credential: instance.agent_credential })
    await first.joined
    first.stop()

    // A stale value left in a unit file or environment.
    const again = await start(gateway.agentUrl, stateDir, { instanceId: instance.id, credential: "fpa_stale_value_from_an_old_unit_file" })
    await waitFor(() => again.client.connected, "connected with the stored credential")
    expect(storedCredential(stateDir)).toBe(instance.agent_credential)
  })

  it("a stored credential the gateway refuses is replaced by the one given at start, once the gateway accepts it", async () => {
    gateway = await testGateway()
    const { instance } = await serverInstance(gateway)
    const stateDir = scratch("state")
    new AgentState(stateDir).saveIdentity({ instanceId: instance.id, credential: "fpa_lost_or_revoked" })

    const agent = await start(gateway.agentUrl, stateDir, { credential: instance.agent_credential })
    await waitFor(() => agent.client.connected, "connected with the given credential")
    expect(storedCredential(stateDir)).toBe(instance.agent_credential)
  })

  it("refuses a credential on the command line, where every user of the machine can read it", async () => {
    const failed = await run(process.execPath, [CLI, "--gateway", "ws://127.0.0.1:1/v1/agent", "--state-dir", scratch("state"), "--credential", "fpa_secret"]).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error
    )
    expect(failed?.code).toBe(2)
    expect(failed?.stderr).toContain("--credential-file")
    expect(failed?.stderr).not.toContain("fpa_secret")
  })

  it("prints its version (the package's) and usage for an unknown flag, without a stack trace", async () => {
    const { stdout } = await run(process.execPath, [CLI, "--version"])
    expect(stdout.trim()).toBe(JSON.parse(readFileSync(join(__dirname, "..", "package.json"), "utf8")).version)
    const unknown = await run(process.execPath, [CLI, "--gatway", "x"]).then(() => undefined, (error: { code: number; stderr: string }) => error)
    expect(unknown?.code).toBe(2)
    expect(unknown?.stderr).toContain("Usage: fleetplane-agent")
    expect(unknown?.stderr).not.toContain("    at ")
  })

  it("takes its credential from --credential-file and stores it once the gateway accepts it", async () => {
    gateway = await testGateway()
    const { instance } = await serverInstance(gateway)
    const stateDir = scratch("state")
    const file = join(scratch("secret"), "credential")
    writeFileSync(file, `${instance.agent_credential}\n`, { mode: 0o600 })
    const child = execFile(process.execPath, [CLI, "--gateway", gateway.agentUrl, "--state-dir", stateDir, "--root", scratch("root"), "--simulate", "--instance", instance.id, "--credential-file", file])
    try {
      await waitFor(() => existsSync(join(stateDir, "identity.json")) && storedCredential(stateDir) === instance.agent_credential, "the credential stored", 20_000)
    } finally {
      child.kill()
    }
  })

  it("a version from the gateway is one argument, never shell text", async () => {
    const marker = join(scratch("inject"), "pwned")
    const node = createNodeCommands({ simulate: false, log: () => undefined })
    const applier = createConfigApplier({
      root: scratch("root"),
      state: new AgentState(scratch("state")),
      commands: { ...DEFAULT_APPLY_COMMANDS, moduleUpgrade: ["echo", "upgrade", "{module}", "to", "{version}"] },
      node,
      simulate: false,
      log: () => undefined
    })
    const version = `v1;touch ${marker};$(touch ${marker})\`touch ${marker}\``
    await applier.apply({ kind: "module_upgrade", key: "mod-k3s-server", version: 1, payload: { module_name: "k3s-server", module_id: "mod-k3s-server", version_id: version, run_id: "run_1" } })
    expect(existsSync(marker)).toBe(false)
    expect(node.executed).toContain(`echo upgrade k3s-server to ${version}`)
  })
})
