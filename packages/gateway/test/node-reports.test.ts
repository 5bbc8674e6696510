/**
 * What the gateway does with agent reports the SDK refuses (an `error` to the agent, the
 * session kept, nothing changed) and with a terminated instance's live session (R25: 4006 now).
 */
import { afterEach, describe, expect, it } from "vitest"
import { CloseCode, RefusalCode } from "@fleetplane/agent-protocol"
import type { Gateway } from "../src/index"
import { quietGateway, setupAccount } from "./support/gateway-harness"
import { TestAgent } from "./support/test-agent"

let gateway: Gateway | undefined
afterEach(async () => {
  await gateway?.close()
  gateway = undefined
})

describe("agent reports the SDK refuses", () => {
  it("a key another peer holds and a malformed endpoint get an error each; the session stays open and the welcome names the network's listen port", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const first = await account.provision("s1", account.serverTemplateId)
    const second = await account.provision("s2", account.serverTemplateId)
    const a = await TestAgent.connect(gateway.agentUrl)
    a.hello(first.instanceId, first.credential, { wireguard_keys: [{ network_id: account.networkId, public_key: a.keys.publicKey, endpoint: "203.0.113.1:51820" }] })
    const welcome = await a.message("welcome")
    expect(welcome.body.networks).toEqual([{ network_id: account.networkId, interface_name: "wg-sdwan-prod", listen_port: 51820 }])

    const b = await TestAgent.connect(gateway.agentUrl)
    b.hello(second.instanceId, second.credential, { wireguard_keys: [{ network_id: account.networkId, public_key: a.keys.publicKey }] })
    await b.message("welcome")
    const stolen = await b.message("error", (m) => m.body.code === RefusalCode.WireguardKeyInUse)
    expect(stolen.body.ref_type).toBe("hello")
    b.send({ type: "wireguard_keys", body: { keys: [{ network_id: account.networkId, public_key: b.keys.publicKey, endpoint: "not an endpoint" }] } })
    const malformed = await b.message("error", (m) => m.body.code === RefusalCode.InvalidEndpoint)
    expect(malformed.body.ref_type).toBe("wireguard_keys")
    expect(b.closed).toBeUndefined()
    // With a key of its own and a valid endpoint it is accepted, and the other peer's config lists it there.
    b.send({ type: "wireguard_keys", body: { keys: [{ network_id: account.networkId, public_key: b.keys.publicKey, endpoint: "203.0.113.2:51820" }] } })
    await a.until(() => a.wireguardConfig().includes(`PublicKey = ${b.keys.publicKey}\nEndpoint = 203.0.113.2:51820`), 5_000, "b in a's config")
    const endpoints = [...a.wireguardConfig().matchAll(/Endpoint = (\S+)/g)].map((m) => m[1])
    // The address the WebSockets came from (127.0.0.1) is never anyone's endpoint.
    expect(endpoints.some((e) => e?.startsWith("127.0.0.1"))).toBe(false)
    a.close()
    b.close()
  })
})

describe("R25 terminating an instance", () => {
  it("closes its live session with 4006 at once, not at its next hello", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const worker = await account.provision("w1", account.workerTemplateId)
    const agent = await TestAgent.connect(gateway.agentUrl)
    agent.hello(worker.instanceId, worker.credential)
    await agent.message("welcome")
    const terminated = await account.admin.confirmed("system_terminate_instance", { instance_id: worker.instanceId })
    expect(terminated.status).toBe(200)
    expect((await agent.waitClosed(2_000)).code).toBe(CloseCode.InstanceTerminated)
    // Its credential no longer works either.
    const again = await TestAgent.connect(gateway.agentUrl)
    again.hello(worker.instanceId, worker.credential)
    expect((await again.waitClosed()).code).toBe(CloseCode.InstanceTerminated)
  })
})
