/** The reporter's VIP probes (SPEC R26) against real sockets: an API server that answers, one that hangs, none at all. */
import { createServer, type Server, type Socket } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { probeForAnswer, VipProber } from "../src/client"
import type { VipRoute } from "../src/index"

const servers: Array<Server> = []
const sockets: Array<Socket> = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy()
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))))
})

/** A TCP server on 127.0.0.1: `answer` writes a line to whoever connects; otherwise it accepts and stays silent (hung). */
const listen = async (answer: boolean) => {
  const server = createServer((socket) => {
    sockets.push(socket)
    socket.on("error", () => undefined)
    if (answer) socket.end("k3s-prod-server-1\n")
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return (server.address() as { port: number }).port
}

/** A port nobody listens on. */
const closedPort = async () => {
  const port = await listen(false)
  await new Promise((resolve) => servers.pop()!.close(resolve))
  return port
}

const route = (port: number, reporters: Array<string>, epoch = 1): VipRoute => ({
  vip_id: "vip_1",
  address: "10.1.0.1",
  public_key: "k".repeat(43) + "=",
  epoch,
  probe: { address: "127.0.0.1", port, holder_address: "127.0.0.1", reporters }
})

describe("VIP probes", () => {
  it("an API server that answers is reachable; one that accepts but never writes (hung) and a closed port are not", async () => {
    expect((await probeForAnswer("127.0.0.1", await listen(true), 1_000)).ok).toBe(true)
    const hung = await probeForAnswer("127.0.0.1", await listen(false), 300)
    expect(hung.ok).toBe(false)
    // It waited for the timeout: a completed TCP handshake alone did not count.
    expect(hung.rttMs).toBeGreaterThanOrEqual(290)
    expect((await probeForAnswer("127.0.0.1", await closedPort(), 1_000)).ok).toBe(false)
  })

  it("probes only the VIPs whose plan names this instance, and reports how long they have been failing", async () => {
    let now = 1_000
    const prober = new VipProber({ instanceId: "inst_me", now: () => now })
    prober.setRoutes("net_1", [route(await listen(true), ["inst_other"])])
    expect(prober.targetCount).toBe(0)

    const port = await listen(true)
    prober.setRoutes("net_1", [route(port, ["inst_other", "inst_me"])])
    expect(prober.reports()).toEqual([])
    await prober.tick()
    now += 200
    expect(prober.reports()).toEqual([{ vip_id: "vip_1", epoch: 1, ok: true, rtt_ms: expect.any(Number), age_ms: 200, failing_for_ms: 0, holder_ok: true }])

    // The API server goes away: failures accumulate from the first failed probe.
    const stopped = new Promise((resolve) => servers.pop()!.close(resolve))
    for (const socket of sockets.splice(0)) socket.destroy()
    await stopped
    const dead = port
    await prober.tick()
    now += 1_000
    await prober.tick()
    const [failing] = prober.reports()
    expect(failing).toMatchObject({ ok: false, rtt_ms: null, holder_ok: false, age_ms: 0, failing_for_ms: 1_000 })

    // A new holder (epoch) starts afresh: the old failures say nothing about it, and until its VIP
    // has answered once, failing to reach it says nothing either (this node's tunnel may be coming up).
    prober.setRoutes("net_1", [route(dead, ["inst_me"], 2)])
    expect(prober.reports()).toEqual([])
    await prober.tick()
    now += 1_000
    await prober.tick()
    expect(prober.reports()).toEqual([expect.objectContaining({ epoch: 2, ok: false, failing_for_ms: null })])

    prober.setRoutes("net_1", [])
    expect(prober.targetCount).toBe(0)
  })
})
