/**
 * Backpressure (#9.6): an agent that stops reading while the gateway keeps sending. An
 * operator pasting into its terminal is held back by the terminal's input window (the
 * gateway stops reading the operator's socket), so input alone never swells the agent's
 * queue; when configs keep changing for it, it is closed as a slow consumer (4010) once its
 * unsent data passes `maxBufferedBytes`. What the gateway holds stays bounded, the operator's
 * terminal ends cleanly, and nothing pushed to it is lost: on reconnect it receives the
 * config version it missed.
 */
import { afterEach, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { Effect } from "effect"
import { CloseCode } from "@fleetplane/agent-protocol"
import { Transactor } from "@fleetplane/sdk"
import type { Gateway } from "../src/index"
import { SLOW_CONSUMER_GRACE_MS } from "../src/agent/agent-session"
import { quietGateway, setupAccount } from "./support/gateway-harness"
import { recordSoak } from "./support/soak-report"
import { TestAgent } from "./support/test-agent"

const MAX_BUFFERED = 256 * 1024
const CHUNK = Buffer.alloc(64 * 1024, 0x61)
/** Loopback socket buffers absorb a few MiB before the gateway's own queue grows at all. */
const STREAM_LIMIT = 64 * 1024 * 1024

let gateway: Gateway | undefined
const sockets: Array<{ close: () => void }> = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close()
  await gateway?.close()
  gateway = undefined
})

describe("gateway: agents that stop reading", () => {
  it("closes a stalled agent with 4010 at a bounded queue, ends its terminal, and redelivers what it missed", async () => {
    gateway = await quietGateway({ maxBufferedBytes: MAX_BUFFERED })
    const account = await setupAccount(gateway)
    const slowNode = await account.provision("slow-1", account.workerTemplateId)
    const slow = await TestAgent.connect(gateway.agentUrl)
    sockets.push(slow)
    slow.hello(slowNode.instanceId, slowNode.credential, {
      capabilities: ["wireguard", "k3s", "terminal"],
      wireguard_keys: [{ network_id: account.networkId, public_key: slow.keys.publicKey }]
    })
    await slow.message("welcome")
    const firstConfig = await slow.until((a) => a.pushes("wireguard")[0], 5_000, "first wireguard config")
    slow.ackAll()

    // An operator opens a terminal on the node; then the node stops reading its socket.
    const operator = new WebSocket(`${gateway.adminUrl.replace("http", "ws")}/v1/instances/${slowNode.instanceId}/terminal`, {
      headers: { authorization: `Bearer ${account.apiKey}` }
    })
    sockets.push(operator)
    const operatorClosed = new Promise<number>((resolve) => operator.on("close", (code) => resolve(code)))
    await new Promise((resolve, reject) => operator.once("open", resolve).once("error", reject))
    await slow.message("terminal_open")
    ;(slow.socket as unknown as { _socket: { pause: () => void; resume: () => void } })._socket.pause()

    // The operator pastes far more than the agent reads: the gateway stops taking it (the
    // terminal's input window), so the paste stalls instead of piling up in the gateway.
    let streamed = 0
    let stalled = false
    while (operator.readyState === WebSocket.OPEN && streamed < STREAM_LIMIT) {
      const sent = await Promise.race([
        new Promise<boolean>((resolve) => operator.send(CHUNK, { binary: true }, (error) => resolve(error === undefined || error === null))),
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1_000))
      ])
      if (sent === undefined) {
        stalled = true
        break
      }
      if (sent) streamed += CHUNK.length
    }
    expect(stalled).toBe(true)
    // Accepted: the input window plus what loopback socket buffers hold — not what the operator wanted to send.
    expect(streamed).toBeLessThan(MAX_BUFFERED + 24 * 1024 * 1024)
    expect(gateway.metrics.slowConsumers.value).toBe(0) // input alone never overflows the agent's queue

    // While it is stalled a large config is decided for it, then its WireGuard config changes
    // (a new peer comes up): the queue is past the bound when that change is sent.
    await gateway.fleet.run(
      Effect.flatMap(Effect.service(Transactor), ({ transact }) =>
        transact((ctx) =>
          Effect.map(
            ctx.tx.putDesiredConfig(slowNode.instanceId as never, "kubeconfig", "clu_large", { cluster_id: "clu_large", content: "x".repeat(MAX_BUFFERED * 2) }, ctx.nowIso),
            ({ record }) => ctx.touch(slowNode.instanceId as never, record)
          )
        )
      )
    )
    const otherNode = await account.provision("other-1", account.workerTemplateId)
    const other = await TestAgent.connect(gateway.agentUrl)
    sockets.push(other)
    other.hello(otherNode.instanceId, otherNode.credential, { wireguard_keys: [{ network_id: account.networkId, public_key: other.keys.publicKey }] })
    await other.message("welcome")
    expect(await operatorClosed).toBe(4502) // the agent's session ended under the operator
    expect(gateway.metrics.slowConsumers.value).toBe(1)
    // Reading again within the grace, the agent finds the 4010 close frame behind what was queued for it.
    ;(slow.socket as unknown as { _socket: { resume: () => void } })._socket.resume()
    expect((await slow.waitClosed(5_000)).code).toBe(CloseCode.SlowConsumer)

    // The session is gone from the gateway (a reader that stays stuck is destroyed after a grace).
    await other.until(() => gateway!.sessions.get(slowNode.instanceId) === undefined, SLOW_CONSUMER_GRACE_MS + 2_000, "the stalled session to be dropped")

    // It reconnects stating what it applied, and receives the config it missed — with the new peer.
    const back = await TestAgent.connect(gateway.agentUrl)
    sockets.push(back)
    back.hello(slowNode.instanceId, slowNode.credential, {
      wireguard_keys: [{ network_id: account.networkId, public_key: slow.keys.publicKey }],
      applied: [{ kind: "wireguard", key: firstConfig.key, version: firstConfig.version }],
      peer_versions: slow.peerVersions()
    })
    const missed = await back.until((a) => a.pushes("wireguard").find((p) => p.version > firstConfig.version), 5_000, "the missed wireguard config")
    // Only what changed since the peer set it has: the new peer, as a delta.
    expect(missed.kind === "wireguard" && missed.payload.peers).toMatchObject({ full: false, from_version: slow.peerVersions()[0]!.version })
    expect(missed.kind === "wireguard" && missed.payload.peers.upserts.map((entry) => entry.public_key)).toContain(other.keys.publicKey)
    expect(back.pushes("wireguard")).toHaveLength(1) // only what is newer than what it applied
    const audit = await account.admin.action("system_list_events", {})
    expect(JSON.stringify(audit.body)).toContain("agent_disconnected")
    recordSoak({ suite: "backpressure (stalled agent)", faults: 1, inputs: streamed / CHUNK.length, sessions: 2, violations: 0, lost: 0 })
  }, 60_000)
})
