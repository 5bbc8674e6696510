import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync } from "node:fs"
import { createServer as createHttpsServer } from "node:https"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Result } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { WebSocketServer, type WebSocket } from "ws"
import { AgentClient, backoffDelay, DEFAULT_BACKOFF, type AgentClientOptions } from "../src/client"
import {
  applyPeerSetChange,
  CloseCode,
  decodeAgentFrame,
  encodeFrame,
  PROTOCOL_VERSION,
  splitPeerSetPush,
  type AgentMessage,
  type ConfigPushBody,
  type GatewayMessage,
  type PeerSetState
} from "../src/index"

/** A scripted stand-in for a gateway: records what agents send and lets the test answer. */
const fakeGateway = async (host = "127.0.0.1", port = 0) => {
  const server = new WebSocketServer({ host, port })
  await new Promise<void>((resolve) => server.once("listening", () => resolve()))
  const received: Array<AgentMessage> = []
  const connections: Array<WebSocket> = []
  const hosts: Array<string | undefined> = []
  let onMessage: (socket: WebSocket, message: AgentMessage) => void = () => undefined
  server.on("connection", (socket, request) => {
    connections.push(socket)
    hosts.push(request.headers.host)
    socket.on("message", (data: Buffer) => {
      const decoded = decodeAgentFrame(data)
      if (Result.isSuccess(decoded)) {
        received.push(decoded.success)
        onMessage(socket, decoded.success)
      }
    })
  })
  const send = (socket: WebSocket, message: GatewayMessage) => socket.send(encodeFrame(message))
  const welcome = (socket: WebSocket, extra: Partial<Extract<GatewayMessage, { type: "welcome" }>["body"]> = {}) =>
    send(socket, {
      type: "welcome",
      body: { session_id: "s", gateway_id: "g", protocol_version: 1, heartbeat_interval_ms: 50, silence_threshold_ms: 150, server_time_ms: 0, max_frame_bytes: 1 << 20, ...extra }
    })
  return {
    url: `ws://${host}:${(server.address() as { port: number }).port}/v1/agent`,
    port: (server.address() as { port: number }).port,
    received,
    connections,
    hosts,
    handle: (f: typeof onMessage) => (onMessage = f),
    send,
    welcome,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of server.clients) socket.terminate()
        server.close(() => resolve())
      })
  }
}

const waitFor = async (check: () => boolean, what: string, timeoutMs = 3_000) => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const clientFor = (url: string | ReadonlyArray<string>, overrides: Partial<AgentClientOptions> = {}) => {
  const applied = new Map<string, number>()
  const client = new AgentClient({
    url,
    instanceId: "ins_1",
    credential: "fpa_secret",
    agentVersion: "test",
    wireguardKeys: () => [],
    applied: () => [...applied].map(([composite, version]) => ({ kind: composite.split("/")[0] as "k3s", key: composite.split("/")[1]!, version })),
    heldVips: () => [],
    nodeState: () => ({ k3s: { service: "active", node_ready: true }, wireguard: [], load: { cpu_ratio: 0.1, memory_ratio: 0.1 } }),
    handlers: {
      applyConfig: async (push) => {
        applied.set(`${push.kind}/${push.key}`, push.version)
      }
    },
    backoff: { initialDelayMs: 20, maxDelayMs: 200, multiplier: 2 },
    ...overrides
  })
  cleanups.push(() => client.stop())
  return { client, applied }
}

describe("reconnect backoff", () => {
  it("is capped and spread: full jitter over [0, min(max, initial × 2^attempt)]", () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const bound = Math.min(DEFAULT_BACKOFF.maxDelayMs, DEFAULT_BACKOFF.initialDelayMs * 2 ** attempt)
      expect(backoffDelay(attempt, DEFAULT_BACKOFF, () => 0)).toBe(0)
      expect(backoffDelay(attempt, DEFAULT_BACKOFF, () => 0.999999)).toBeLessThanOrEqual(bound)
    }
    // 10,000 agents after a restart do not come back in lock-step.
    const delays = Array.from({ length: 10_000 }, () => backoffDelay(8, DEFAULT_BACKOFF))
    const buckets = new Array(10).fill(0)
    for (const delay of delays) buckets[Math.min(9, Math.floor(delay / (DEFAULT_BACKOFF.maxDelayMs / 10)))]++
    for (const count of buckets) {
      expect(count).toBeGreaterThan(700)
      expect(count).toBeLessThan(1300)
    }
    expect(Math.max(...delays)).toBeLessThanOrEqual(DEFAULT_BACKOFF.maxDelayMs)
  })
})

describe("agent client", () => {
  it("says hello with its credential and applied versions, heartbeats on the gateway's interval, and acks applied pushes", async () => {
    const gateway = await fakeGateway()
    cleanups.push(gateway.close)
    gateway.handle((socket, message) => {
      if (message.type === "hello") {
        gateway.welcome(socket)
        gateway.send(socket, { type: "config_push", body: { kind: "token", key: "clu_1", version: 3, payload: { cluster_id: "clu_1", token: "K10x::server:y" } } })
      }
    })
    const { client, applied } = clientFor(gateway.url)
    await client.start()
    await waitFor(() => gateway.received.some((m) => m.type === "config_ack"), "ack")
    expect(applied.get("token/clu_1")).toBe(3)
    expect(gateway.received.find((m) => m.type === "config_ack")?.body).toEqual({ kind: "token", key: "clu_1", version: 3, status: "applied" })
    await waitFor(() => gateway.received.filter((m) => m.type === "heartbeat").length >= 3, "heartbeats")
    const hello = gateway.received.find((m) => m.type === "hello")
    expect(hello?.body).toMatchObject({ instance_id: "ins_1", credential: "fpa_secret", protocol_versions: [PROTOCOL_VERSION] })
  })

  it("acks a push its handler could not apply as failed, with the error", async () => {
    const gateway = await fakeGateway()
    cleanups.push(gateway.close)
    gateway.handle((socket, message) => {
      if (message.type === "hello") {
        gateway.welcome(socket)
        gateway.send(socket, { type: "config_push", body: { kind: "k3s", key: "clu_1", version: 1, payload: { cluster_id: "clu_1", role: "worker", content: "x", files: [] } } })
      }
    })
    const { client } = clientFor(gateway.url, {
      handlers: {
        applyConfig: async () => {
          throw new Error("systemctl restart k3s-agent exited 1")
        }
      }
    })
    await client.start()
    await waitFor(() => gateway.received.some((m) => m.type === "config_ack"), "ack")
    expect(gateway.received.find((m) => m.type === "config_ack")?.body).toMatchObject({
      status: "failed",
      error: { code: "apply_failed", message: "systemctl restart k3s-agent exited 1" }
    })
  })

  it("reconnects with bounded, jittered delays and resumes with what it applied, so nothing is applied twice", async () => {
    const gateway = await fakeGateway()
    cleanups.push(gateway.close)
    let applyCount = 0
    gateway.handle((socket, message) => {
      if (message.type !== "hello") return
      gateway.welcome(socket)
      // Level-triggered: send version 1 only to an agent that has not applied it.
      const has = message.body.applied.find((a) => a.kind === "wireguard")?.version ?? 0
      if (has < 1) gateway.send(socket, { type: "config_push", body: { kind: "wireguard", key: "net_1", version: 1, payload: { network_id: "net_1", interface_name: "wg-sdwan-x", listen_port: 51820, self: { peer_id: "peer_1", label: "a", addresses: [] }, peers: { from_version: 0, version: 1, full: true, upserts: [], removed: [] } } } })
    })
    const applied: Array<{ kind: "wireguard"; key: string; version: number }> = []
    const { client } = clientFor(gateway.url, {
      applied: () => applied,
      handlers: {
        applyConfig: async (push) => {
          applyCount++
          applied.push({ kind: "wireguard", key: push.key, version: push.version })
        }
      }
    })
    await client.start()
    await waitFor(() => applyCount === 1, "first apply")
    // The gateway drops the connection three times.
    for (let i = 0; i < 3; i++) {
      const next = client.nextWelcome()
      gateway.connections.at(-1)!.close(CloseCode.GoingAway, "restart")
      await next
    }
    expect(client.reconnectDelays).toHaveLength(3)
    for (const delay of client.reconnectDelays) {
      expect(delay).toBeGreaterThanOrEqual(0)
      expect(delay).toBeLessThanOrEqual(200)
    }
    const hellos = gateway.received.filter((m) => m.type === "hello")
    expect(hellos).toHaveLength(4)
    // Every hello after the first states what was applied, so the push is not sent or applied again.
    for (const hello of hellos.slice(1)) expect(hello.type === "hello" && hello.body.applied).toEqual([{ kind: "wireguard", key: "net_1", version: 1 }])
    expect(applyCount).toBe(1)
  })

  it("puts a peer set split over several frames back together: one apply, one ack; a delta out of step is acked peer_set_out_of_sync; hello lists its peer versions", async () => {
    const gateway = await fakeGateway()
    cleanups.push(gateway.close)
    const entries = Array.from({ length: 2_500 }, (_, i) => ({
      peer_id: `peer_${i}`,
      label: `edge-${i}`,
      public_key: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
      allowed_ips: [`fd00:1::${i.toString(16)}/128`]
    }))
    const whole: ConfigPushBody = {
      kind: "wireguard",
      key: "net_1",
      version: 4,
      payload: { network_id: "net_1", interface_name: "wg-sdwan-x", listen_port: 51820, self: { peer_id: "peer_0", label: "edge-0", addresses: [] }, peers: { from_version: 0, version: 9, full: true, upserts: entries, removed: [] } }
    }
    gateway.handle((socket, message) => {
      if (message.type !== "hello") return
      gateway.welcome(socket)
      for (const part of splitPeerSetPush(whole)) gateway.send(socket, { type: "config_push", body: part })
      gateway.send(socket, { type: "config_push", body: { ...whole, version: 5, payload: { ...whole.payload, peers: { from_version: 3, version: 10, full: false, upserts: [], removed: [] } } } })
    })
    let peers: PeerSetState | undefined
    const applies: Array<number> = []
    const { client } = clientFor(gateway.url, {
      peerVersions: () => (peers === undefined ? [] : [{ network_id: "net_1", version: peers.version }]),
      handlers: {
        applyConfig: async (push) => {
          if (push.kind !== "wireguard") return
          applies.push(push.payload.peers.upserts.length)
          peers = applyPeerSetChange(peers, push.payload.peers)
        }
      }
    })
    await client.start()
    await waitFor(() => gateway.received.filter((m) => m.type === "config_ack").length === 2, "two acks")
    expect(applies).toEqual([2_500, 0])
    const acks = gateway.received.flatMap((m) => (m.type === "config_ack" ? [m.body] : []))
    expect(acks[0]).toEqual({ kind: "wireguard", key: "net_1", version: 4, status: "applied" })
    expect(acks[1]).toMatchObject({ kind: "wireguard", key: "net_1", version: 5, status: "failed", error: { code: "peer_set_out_of_sync" } })
    // Reconnecting, it states the peer-set version it kept.
    const next = client.nextWelcome()
    gateway.connections.at(-1)!.close(CloseCode.GoingAway, "restart")
    await next
    const hello = gateway.received.filter((m) => m.type === "hello").at(-1)
    expect(hello?.type === "hello" && hello.body.peer_versions).toEqual([{ network_id: "net_1", version: 9 }])
  })

  it("stops reconnecting when the credential is refused", async () => {
    const gateway = await fakeGateway()
    cleanups.push(gateway.close)
    const closes: Array<[number, boolean]> = []
    gateway.handle((socket, message) => {
      if (message.type === "hello") socket.close(CloseCode.AuthenticationFailed, "authentication_failed")
    })
    const { client } = clientFor(gateway.url, { handlers: { applyConfig: async () => undefined, onClosed: (code, _reason, again) => closes.push([code, again]) } })
    void client.start()
    await waitFor(() => closes.length === 1, "close")
    await new Promise((resolve) => setTimeout(resolve, 150))
    expect(closes).toEqual([[CloseCode.AuthenticationFailed, false]])
    expect(gateway.received.filter((m) => m.type === "hello")).toHaveLength(1)
  })

  it("honours retry_after_ms between join attempts", async () => {
    const gateway = await fakeGateway()
    cleanups.push(gateway.close)
    let attempts = 0
    const times: Array<number> = []
    gateway.handle((socket, message) => {
      if (message.type === "hello") gateway.welcome(socket)
      if (message.type === "join_request") {
        times.push(Date.now())
        attempts++
        if (attempts < 3) {
          gateway.send(socket, { type: "join_rejected", body: { request_id: message.body.request_id, code: "cluster_not_active", message: "wait", retry_after_ms: 150 } })
        } else {
          gateway.send(socket, {
            type: "join_accepted",
            body: { request_id: message.body.request_id, cluster_id: "clu_1", role: "worker", api_endpoint: "https://[fd00::1]:6443", created_cluster: false }
          })
        }
      }
    })
    const { client } = clientFor(gateway.url)
    await client.start()
    const rejections: Array<string> = []
    const accepted = await client.joinUntilAccepted("k3s-agent", "clu_1", (r) => rejections.push(r.code))
    expect(accepted.cluster_id).toBe("clu_1")
    expect(rejections).toEqual(["cluster_not_active", "cluster_not_active"])
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(140)
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(140)
  })

  it("registers a WireGuard key for a network named in welcome that it had no key for", async () => {
    const gateway = await fakeGateway()
    cleanups.push(gateway.close)
    gateway.handle((socket, message) => {
      if (message.type === "hello") gateway.welcome(socket, { network_ids: ["net_1"] })
    })
    const { client } = clientFor(gateway.url, { ensureWireguardKey: async () => "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=" })
    await client.start()
    await waitFor(() => gateway.received.some((m) => m.type === "wireguard_keys"), "keys")
    expect(gateway.received.find((m) => m.type === "wireguard_keys")?.body).toEqual({
      keys: [{ network_id: "net_1", public_key: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=" }]
    })
  })
})

describe("agent client: several gateways", () => {
  it("moves to the next gateway when one is down, and learns the others from welcome", async () => {
    const dead = await fakeGateway()
    const deadUrl = dead.url
    await dead.close() // nothing listens there any more
    const alive = await fakeGateway()
    alive.handle((socket, message) => {
      if (message.type === "hello") alive.welcome(socket, { gateways: ["ws://127.0.0.1:9/v1/agent"] })
    })
    cleanups.push(alive.close)
    const { client } = clientFor([deadUrl, alive.url])
    await client.start()
    expect(client.gatewayUrl).toBe(alive.url)
    // The first failure costs one short attempt, not a growing delay: there was another gateway to try.
    expect(client.reconnectDelays[0]).toBeLessThanOrEqual(20)
    expect(client.gateways.all).toEqual([deadUrl, alive.url, "ws://127.0.0.1:9/v1/agent"])
  })

  it("a session dropped by a blip is retried on the same gateway; a draining gateway (1001) sends the agent to the preferred one", async () => {
    const preferred = await fakeGateway()
    const other = await fakeGateway()
    cleanups.push(preferred.close, other.close)
    for (const gateway of [preferred, other]) gateway.handle((socket, message) => message.type === "hello" && gateway.welcome(socket))
    const { client } = clientFor([preferred.url, other.url])
    await client.start()
    expect(client.gatewayUrl).toBe(preferred.url)

    // A blip: the same gateway again.
    preferred.connections[0]!.terminate()
    await waitFor(() => preferred.connections.length === 2 && client.connected, "a reconnect to the same gateway")
    expect(other.connections).toHaveLength(0)

    // The preferred one drains: to the other.
    preferred.connections[1]!.close(CloseCode.GoingAway, "gateway shutting down; reconnect")
    await waitFor(() => other.connections.length === 1 && client.connected, "a move to the other gateway")
    expect(client.gatewayUrl).toBe(other.url)

    // The other drains too: back to the preferred one.
    other.connections[0]!.close(CloseCode.GoingAway, "gateway shutting down; reconnect")
    await waitFor(() => preferred.connections.length === 3 && client.connected, "back on the preferred gateway")
    expect(client.gatewayUrl).toBe(preferred.url)
  })

  it("a name that resolves to several addresses is several gateways: a dead address moves the agent to the next, and the gateway is still addressed by its name", async () => {
    // Two gateways behind one name, on two loopback addresses and the same port (as DNS round robin would give).
    const first = await fakeGateway("127.0.0.1")
    const port = first.port
    await first.close() // the first address is down
    const second = await fakeGateway("127.0.0.2", port)
    cleanups.push(second.close)
    second.handle((socket, message) => message.type === "hello" && second.welcome(socket))
    const resolved: Array<string> = []
    const { client } = clientFor(`ws://gateways.fleet.test:${port}/v1/agent`, {
      resolveAddresses: async (hostname) => {
        resolved.push(hostname)
        return ["127.0.0.1", "127.0.0.2"]
      }
    })
    await client.start()
    expect(resolved).toEqual(["gateways.fleet.test"])
    expect(client.gatewayAddress).toBe("127.0.0.2")
    expect(client.gatewayUrl).toBe(`ws://gateways.fleet.test:${port}/v1/agent`)
    // The first failure was one short attempt: the name had another address to try.
    expect(client.reconnectDelays[0]).toBeLessThanOrEqual(20)
    // The gateway saw the URL's name, not the address, as the Host (what TLS and virtual hosts check).
    expect(second.hosts).toEqual([`gateways.fleet.test:${port}`])

    // A blip keeps the agent on the address it had a session with.
    second.connections[0]!.terminate()
    await waitFor(() => second.connections.length === 2 && client.connected, "a reconnect to the same address")
    expect(resolved).toHaveLength(1)
  })

  it("a name that cannot be resolved is a failed attempt like a dead gateway, and the next gateway is tried", async () => {
    const alive = await fakeGateway()
    alive.handle((socket, message) => message.type === "hello" && alive.welcome(socket))
    cleanups.push(alive.close)
    const { client } = clientFor(["ws://nowhere.fleet.test:7443/v1/agent", alive.url], {
      resolveAddresses: async () => {
        throw Object.assign(new Error("getaddrinfo ENOTFOUND nowhere.fleet.test"), { code: "ENOTFOUND" })
      }
    })
    await client.start()
    expect(client.gatewayUrl).toBe(alive.url)
    expect(client.gatewayAddress).toBeUndefined()
  })

  it("over TLS, an agent pinned to one address of a name checks the gateway's certificate against the name", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fleetplane-dns-tls-"))
    const certificate = (name: string) => {
      const certFile = join(dir, `${name}.crt`)
      const keyFile = join(dir, `${name}.key`)
      execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "1", "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`], { stdio: "ignore" })
      return { cert: readFileSync(certFile), key: readFileSync(keyFile) }
    }
    const tlsGateway = async (name: string) => {
      const { cert, key } = certificate(name)
      const server = createHttpsServer({ cert, key })
      const sockets = new WebSocketServer({ server })
      let welcomed = 0
      sockets.on("connection", (socket) =>
        socket.on("message", (data: Buffer) => {
          const decoded = decodeAgentFrame(data)
          if (Result.isSuccess(decoded) && decoded.success.type === "hello") {
            welcomed += 1
            socket.send(encodeFrame({ type: "welcome", body: { session_id: "s", gateway_id: "g", protocol_version: 1, heartbeat_interval_ms: 50, silence_threshold_ms: 150, server_time_ms: 0, max_frame_bytes: 1 << 20 } }))
          }
        })
      )
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.2", resolve))
      cleanups.push(() => new Promise<void>((resolve) => { for (const socket of sockets.clients) socket.terminate(); server.close(() => resolve()) }))
      return { cert, port: (server.address() as { port: number }).port, welcomed: () => welcomed }
    }

    const right = await tlsGateway("gateways.fleet.test")
    const { client } = clientFor(`wss://gateways.fleet.test:${right.port}/v1/agent`, { tls: { ca: right.cert }, resolveAddresses: async () => ["127.0.0.1", "127.0.0.2"] })
    await client.start()
    expect(client.gatewayAddress).toBe("127.0.0.2")
    expect(right.welcomed()).toBe(1)

    // A gateway whose certificate names another host is refused, though the address is the one DNS gave.
    const wrong = await tlsGateway("impostor.fleet.test")
    const refused = clientFor(`wss://gateways.fleet.test:${wrong.port}/v1/agent`, { tls: { ca: wrong.cert }, resolveAddresses: async () => ["127.0.0.1", "127.0.0.2"] })
    void refused.client.start()
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(refused.client.connected).toBe(false)
    expect(refused.client.reconnectDelays.length).toBeGreaterThan(1)
    expect(wrong.welcomed()).toBe(0)
  })
})
