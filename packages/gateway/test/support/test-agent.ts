/** A scripted agent over a real WebSocket, for gateway tests. */
import { generateKeyPairSync } from "node:crypto"
import { Result } from "effect"
import WebSocket from "ws"
import {
  applyPeerSetChange,
  decodeGatewayFrame,
  encodeFrame,
  PeerSetAssembler,
  PROTOCOL_VERSION,
  renderWireguardConfig,
  type AgentMessage,
  type GatewayMessage,
  type PeerSetState,
  type WireguardPayload
} from "@fleetplane/agent-protocol"

export const wireguardKeyPair = () => {
  const { publicKey, privateKey } = generateKeyPairSync("x25519")
  return {
    publicKey: publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("base64"),
    privateKey: privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32).toString("base64")
  }
}

export class TestAgent {
  readonly received: Array<GatewayMessage> = []
  readonly sent: Array<Buffer> = []
  closed: { code: number; reason: string } | undefined
  private waiters: Array<() => void> = []
  seq = 0
  readonly keys = wireguardKeyPair()
  /** Called for every decoded message, for agents that answer as they go. */
  onMessage: ((message: GatewayMessage) => void) | undefined
  private readonly arrivals = new WeakMap<GatewayMessage, number>()
  /** Each network's peer set as a real agent keeps it, built from the `wireguard` pushes (deltas applied in order). */
  private readonly peerSets = new Map<string, { readonly own: WireguardPayload; readonly peers: PeerSetState }>()
  private readonly peerSetParts = new PeerSetAssembler()
  /** Deltas that did not start at this agent's version (a gateway bug, or a test that wants one). */
  readonly peerSetErrors: Array<string> = []

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data: Buffer) => {
      const decoded = decodeGatewayFrame(data)
      if (Result.isSuccess(decoded)) {
        this.received.push(decoded.success)
        this.arrivals.set(decoded.success, Date.now())
        if (decoded.success.type === "config_push") this.takePeerSet(decoded.success.body)
        this.onMessage?.(decoded.success)
      }
      this.wake()
    })
    socket.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() }
      this.wake()
    })
    socket.on("error", () => this.wake())
  }

  static connect(url: string): Promise<TestAgent> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url)
      const agent = new TestAgent(socket)
      socket.once("open", () => resolve(agent))
      socket.once("error", reject)
    })
  }

  private wake() {
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }

  send(message: AgentMessage) {
    const bytes = Buffer.from(encodeFrame(message))
    this.sent.push(bytes)
    this.socket.send(bytes, { binary: true })
  }

  sendRaw(data: Buffer | string, binary = true) {
    this.socket.send(data, { binary })
  }

  hello(instanceId: string, credential: string, extra: Partial<Extract<AgentMessage, { type: "hello" }>["body"]> = {}) {
    this.send({
      type: "hello",
      body: {
        instance_id: instanceId,
        credential,
        agent_version: "test",
        protocol_versions: [PROTOCOL_VERSION],
        capabilities: ["wireguard", "k3s"],
        wireguard_keys: [],
        applied: [],
        held_vips: [],
        ...extra
      }
    })
  }

  heartbeat(networkIds: ReadonlyArray<string> = [], ready = true) {
    this.send({
      type: "heartbeat",
      body: {
        seq: this.seq++,
        k3s: ready ? { service: "active", node_ready: true } : { service: "activating", node_ready: false },
        wireguard: networkIds.map((network_id) => ({ network_id, peers: 1, fresh_handshakes: 1 })),
        load: { cpu_ratio: 0.1, memory_ratio: 0.2 }
      }
    })
  }

  /** Waits until `predicate` holds over what arrived (or the socket closed), up to `timeoutMs`. */
  async until<T>(predicate: (agent: TestAgent) => T | undefined | false, timeoutMs = 5_000, what = "condition"): Promise<T> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const value = predicate(this)
      if (value !== undefined && value !== false) return value
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}; received: ${this.received.map((m) => m.type).join(", ")}; closed: ${JSON.stringify(this.closed)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 100))
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  message<T extends GatewayMessage["type"]>(type: T, where: (m: Extract<GatewayMessage, { type: T }>) => boolean = () => true, timeoutMs?: number) {
    return this.until(
      (agent) => agent.received.find((m): m is Extract<GatewayMessage, { type: T }> => m.type === type && where(m as Extract<GatewayMessage, { type: T }>)),
      timeoutMs,
      type
    )
  }

  waitClosed(timeoutMs?: number) {
    return this.until((agent) => agent.closed, timeoutMs, "close")
  }

  pushes(kind?: string) {
    return this.received.flatMap((m) => (m.type === "config_push" && (kind === undefined || m.body.kind === kind) ? [m.body] : []))
  }

  private takePeerSet(body: Extract<GatewayMessage, { type: "config_push" }>["body"]) {
    const whole = this.peerSetParts.accept(body)
    if (whole?.kind !== "wireguard") return
    try {
      this.peerSets.set(whole.key, { own: whole.payload, peers: applyPeerSetChange(this.peerSets.get(whole.key)?.peers, whole.payload.peers) })
    } catch (error) {
      this.peerSetErrors.push((error as Error).message)
    }
  }

  /** The peer-set version this agent has of each network (for a hello that resumes). */
  peerVersions() {
    return [...this.peerSets].map(([network_id, set]) => ({ network_id, version: set.peers.version }))
  }

  /** The wg-quick file the agent would apply for a network (its only one when not named): peers and VIP routes. */
  wireguardConfig(networkId?: string): string {
    const [key, set] = networkId === undefined ? ([...this.peerSets][0] ?? []) : [networkId, this.peerSets.get(networkId)]
    if (set === undefined) return ""
    const routes = this.pushes("vip_routes").filter((p) => p.key === key).at(-1)
    return renderWireguardConfig({ interface: set.own, peers: set.peers, routes: routes?.kind === "vip_routes" ? routes.payload.routes : [] })
  }

  /** Acks every config push received so far (as an agent that applied them). */
  ackAll() {
    for (const push of this.pushes()) this.send({ type: "config_ack", body: { kind: push.kind, key: push.key, version: push.version, status: "applied" } })
  }

  /** When a received message arrived (Date.now()), for latency measurements. */
  arrivedAt(message: GatewayMessage): number {
    return this.arrivals.get(message) ?? Number.NaN
  }

  close() {
    this.socket.close()
  }
}
