import { afterEach, describe, expect, it } from "vitest"
import { CloseCode, encodeFrame, PROTOCOL_VERSION } from "@fleetplane/agent-protocol"
import type { Gateway } from "../src/index"
import { quietGateway, setupAccount } from "./support/gateway-harness"
import { TestAgent } from "./support/test-agent"

let gateway: Gateway | undefined
afterEach(async () => {
  await gateway?.close()
  gateway = undefined
})

/** A gateway, an account and one provisioned server instance. */
const gatewayWithInstance = async (options: Parameters<typeof quietGateway>[0] = {}) => {
  gateway = await quietGateway(options)
  const account = await setupAccount(gateway)
  return { gateway, node: await account.provision("s1", account.serverTemplateId) }
}

/** An agent that completed hello -> welcome. */
const authenticated = async (url: string, node: { instanceId: string; credential: string }) => {
  const agent = await TestAgent.connect(url)
  agent.hello(node.instanceId, node.credential)
  await agent.message("welcome")
  return agent
}

describe("agent endpoint: authentication", () => {
  it("closes with 4001 for a wrong credential and for an unknown instance", async () => {
    const { node } = await gatewayWithInstance()
    for (const [instance, credential] of [
      [node.instanceId, "fpa_wrong"],
      ["ins_unknown", node.credential]
    ] as const) {
      const agent = await TestAgent.connect(gateway!.agentUrl)
      agent.hello(instance, credential)
      expect((await agent.waitClosed()).code).toBe(CloseCode.AuthenticationFailed)
      expect(agent.received).toEqual([])
    }
  })

  it("welcomes a valid hello with the heartbeat settings", async () => {
    const { gateway, node } = await gatewayWithInstance()
    const agent = await TestAgent.connect(gateway.agentUrl)
    agent.hello(node.instanceId, node.credential)
    const welcome = await agent.message("welcome")
    expect(welcome.body).toMatchObject({ protocol_version: PROTOCOL_VERSION, heartbeat_interval_ms: 200, silence_threshold_ms: 600 })
    agent.close()
  })

  it("closes with 4002 when no hello arrives before the deadline", async () => {
    gateway = await quietGateway({ helloTimeoutMs: 200 })
    const agent = await TestAgent.connect(gateway.agentUrl)
    expect((await agent.waitClosed(2_000)).code).toBe(CloseCode.HelloTimeout)
  })

  it("closes with 4009 when something other than hello comes first", async () => {
    gateway = await quietGateway()
    const agent = await TestAgent.connect(gateway.agentUrl)
    agent.heartbeat()
    expect((await agent.waitClosed()).code).toBe(CloseCode.NotAuthenticated)
  })

  it("closes with 4004 when no protocol version is shared", async () => {
    const { gateway, node } = await gatewayWithInstance()
    const agent = await TestAgent.connect(gateway.agentUrl)
    agent.hello(node.instanceId, node.credential, { protocol_versions: [99] })
    expect((await agent.waitClosed()).code).toBe(CloseCode.UnsupportedProtocolVersion)
  })

  it("closes with 4004 an agent of an older release, whose frames carry an older wire version", async () => {
    const { gateway, node } = await gatewayWithInstance()
    const agent = await TestAgent.connect(gateway.agentUrl)
    // The previous release's hello: this release's encoding with the envelope's `v` (msgpack "v",
    // then a fixint) set to the version before this one.
    const previous = PROTOCOL_VERSION - 1
    const frame = Buffer.from(
      encodeFrame({
        type: "hello",
        body: { instance_id: node.instanceId, credential: node.credential, agent_version: "0.9", protocol_versions: [previous], capabilities: [], wireguard_keys: [], applied: [], held_vips: [] }
      })
    )
    const at = frame.indexOf(Buffer.from([0xa1, 0x76, PROTOCOL_VERSION]))
    expect(at).toBeGreaterThanOrEqual(0)
    frame[at + 2] = previous
    agent.sendRaw(frame)
    expect((await agent.waitClosed()).code).toBe(CloseCode.UnsupportedProtocolVersion)
  })

  it("slows down repeated failures from one address with 4008", async () => {
    const { gateway, node } = await gatewayWithInstance({
      authThrottle: { freeFailures: 2, baseDelayMs: 60_000, maxDelayMs: 60_000, forgetAfterMs: 600_000, maxTrackedAddresses: 100 }
    })
    const codes: Array<number> = []
    for (let i = 0; i < 4; i++) {
      const agent = await TestAgent.connect(gateway.agentUrl)
      agent.hello(node.instanceId, "fpa_guess")
      codes.push((await agent.waitClosed()).code)
    }
    expect(codes).toEqual([CloseCode.AuthenticationFailed, CloseCode.AuthenticationFailed, CloseCode.AuthenticationFailed, CloseCode.RateLimited])
    // Even the right credential waits out the delay from that address.
    const agent = await TestAgent.connect(gateway.agentUrl)
    agent.hello(node.instanceId, node.credential)
    expect((await agent.waitClosed()).code).toBe(CloseCode.RateLimited)
  })

  it("a second connection of the same instance replaces the first (4003)", async () => {
    const { gateway, node } = await gatewayWithInstance()
    const first = await authenticated(gateway.agentUrl, node)
    const second = await authenticated(gateway.agentUrl, node)
    expect((await first.waitClosed()).code).toBe(CloseCode.SessionReplaced)
    expect(gateway.sessions.size).toBe(1)
    expect(second.closed).toBeUndefined()
    second.close()
  })
})

describe("agent endpoint: hostile frames", () => {
  it("closes only the offending session, with the right code, while others keep working", async () => {
    const { gateway, node: good } = await gatewayWithInstance()
    const healthy = await authenticated(gateway.agentUrl, good)
    const cases: Array<[string, (agent: TestAgent) => void, number]> = [
      ["text frame", (a) => a.sendRaw("hello", false), CloseCode.UnsupportedData],
      ["garbage bytes", (a) => a.sendRaw(Buffer.from([0xc1, 0x00, 0xff])), CloseCode.ProtocolError],
      ["truncated msgpack", (a) => a.sendRaw(Buffer.from([0x83, 0xa1, 0x76])), CloseCode.ProtocolError],
      ["oversized frame", (a) => a.sendRaw(Buffer.alloc(2 * 1024 * 1024, 0x90)), CloseCode.MessageTooBig]
    ]
    for (const [, misbehave, code] of cases) {
      const agent = await TestAgent.connect(gateway.agentUrl)
      misbehave(agent)
      expect((await agent.waitClosed()).code).toBe(code)
    }
    // The healthy session is still there and still answered.
    const before = gateway.metrics.heartbeats.value
    healthy.heartbeat()
    await healthy.until(() => gateway.metrics.heartbeats.value > before, 2_000, "heartbeat counted")
    expect(healthy.closed).toBeUndefined()
    expect(gateway.sessions.get(good.instanceId)).toBeDefined()
    healthy.close()
  })

  it("a malformed frame after authentication closes that session with 4000 and the error code as reason", async () => {
    const { gateway, node } = await gatewayWithInstance()
    const agent = await authenticated(gateway.agentUrl, node)
    agent.sendRaw(Buffer.from([0x81, 0xa9, ...Buffer.from("__proto__"), 0xc0]))
    const closed = await agent.waitClosed()
    expect(closed.code).toBe(CloseCode.ProtocolError)
    expect(closed.reason).toBe("disallowed_key")
  })
})
