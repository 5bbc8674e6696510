/**
 * The agent side of a session, for anyone writing an agent: connect, hello with the
 * credential and what is already applied, heartbeat on the gateway's interval, apply pushes
 * through a handler and ack each version (or the error), follow VIP directives, and
 * reconnect with capped exponential backoff and full jitter — so ten thousand agents do not
 * come back in lock-step after a gateway restart — to the next gateway it knows when one fails
 * or drains.
 */
import { Result } from "effect"
import WebSocket from "ws"
import { CloseCode } from "../codes"
import { decodeGatewayFrame, encodeFrame } from "../codec/codec"
import type { AgentMessage, GatewayMessage } from "../messages/index"
import type { ConfigPushBody } from "../messages/config"
import type { AppliedConfig, HeldVip, K3sState, Load, ModuleName, WireguardInterfaceState, WireguardKeyEntry } from "../messages/fields"
import type { JoinAcceptedBody, JoinRejectedBody } from "../messages/join"
import type { TerminalOpenBody } from "../messages/terminal"
import type { VipAssignBody, VipReleaseBody } from "../messages/vip"
import type { ErrorBody, VipProbeReport, WelcomeBody } from "../messages/session"
import { PROTOCOL_VERSION } from "../version"
import { isIP } from "node:net"
import { GatewayList, resolveAllAddresses, type DialTarget, type ResolveAddresses } from "./gateway-list"
import { PeerSetAssembler } from "../peer-set"

export interface BackoffOptions {
  readonly initialDelayMs: number
  readonly maxDelayMs: number
  readonly multiplier: number
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialDelayMs: 500, maxDelayMs: 30_000, multiplier: 2 }

/** "Full jitter": a uniformly random delay in [0, min(max, initial × multiplier^attempt)]. */
export const backoffDelay = (attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number =>
  Math.floor(random() * Math.min(options.maxDelayMs, options.initialDelayMs * options.multiplier ** Math.min(attempt, 30)))

/** Close codes after which reconnecting cannot help. */
const FATAL_CLOSE_CODES = new Set<number>([CloseCode.AuthenticationFailed, CloseCode.InstanceTerminated, CloseCode.UnsupportedProtocolVersion])

/** What the agent does with what the gateway sends. Every handler is optional except `applyConfig`. */
export interface AgentHandlers {
  /** Apply one config. Resolve when applied (acked `applied`); throw to ack `failed` with the error's message. */
  readonly applyConfig: (push: ConfigPushBody) => Promise<void>
  readonly onWelcome?: (welcome: WelcomeBody) => void | Promise<void>
  readonly onVipAssign?: (assign: VipAssignBody) => void | Promise<void>
  readonly onVipRelease?: (release: VipReleaseBody) => void | Promise<void>
  readonly onTerminalOpen?: (open: TerminalOpenBody, channel: TerminalChannel) => void
  readonly onTerminalData?: (channelId: string, data: Uint8Array) => void
  readonly onTerminalResize?: (channelId: string, cols: number, rows: number) => void
  /** The gateway lets the agent send `bytes` more output on a channel. */
  readonly onTerminalCredit?: (channelId: string, bytes: number) => void
  readonly onTerminalClose?: (channelId: string, reason: string) => void
  /** The gateway refused something the agent sent (`pod_subnet_refused`, `wireguard_key_in_use`, `invalid_endpoint`, ...). */
  readonly onError?: (error: ErrorBody) => void
  readonly onClosed?: (code: number, reason: string, willReconnect: boolean) => void
  /**
   * The gateway refused the credential (4001). Return `true` when `identity` now gives another
   * credential worth trying (a newly provisioned one, say): the client reconnects with it
   * instead of stopping. Called before `onClosed`.
   */
  readonly onAuthenticationFailed?: () => boolean
}

/** Lets a terminal handler write output back, within the credit the gateway grants. */
export interface TerminalChannel {
  readonly id: string
  readonly write: (data: Uint8Array) => void
  readonly exit: (exitCode: number | null, signal: string | null, bytesOut: number) => void
  readonly close: (reason: string) => void
}

export interface NodeState {
  readonly k3s: K3sState
  readonly wireguard: ReadonlyArray<WireguardInterfaceState>
  readonly load: Load
  /** A reporter's VIP probe results (`VipProber.reports()`); omitted when empty. */
  readonly vip_probes?: ReadonlyArray<VipProbeReport>
}

export interface AgentClientOptions {
  /**
   * `wss://gateway:7443/v1/agent`, or several gateways' endpoints, the first preferred (see
   * gateway-list.ts for how the next one is chosen). Gateways named in `welcome` are added.
   */
  readonly url: string | ReadonlyArray<string>
  readonly instanceId: string
  readonly credential: string
  /**
   * When given, asked at every connect in place of `instanceId` and `credential`, so an agent
   * can switch to a rotated credential (an `agent_credential` push) or to a fallback.
   */
  readonly identity?: () => { readonly instanceId: string; readonly credential: string }
  readonly agentVersion: string
  readonly capabilities?: ReadonlyArray<string>
  /** The agent's WireGuard public keys by network id, each with the endpoint it advertises (sent in `hello`). */
  readonly wireguardKeys: () => ReadonlyArray<WireguardKeyEntry>
  /** Called for networks named in welcome that have no key yet; returns the new public key. */
  readonly ensureWireguardKey?: (networkId: string) => Promise<string>
  /**
   * The UDP endpoint (`host:port`) peers should use to reach this node on a network, given the
   * network's interface and listen port from `welcome`; `undefined` advertises none.
   */
  readonly advertisedEndpoint?: (network: WelcomeNetwork) => string | undefined
  /** Config versions applied on the node (persisted by the agent across restarts). */
  readonly applied: () => ReadonlyArray<AppliedConfig>
  /** The peer-set version the node has of each network (persisted with the peer set): changes then arrive as deltas. */
  readonly peerVersions?: () => ReadonlyArray<{ readonly network_id: string; readonly version: number }>
  readonly heldVips: () => ReadonlyArray<HeldVip>
  /** The node's state for each heartbeat. */
  readonly nodeState: () => NodeState
  readonly handlers: AgentHandlers
  readonly backoff?: BackoffOptions
  readonly random?: () => number
  /** TLS options for `wss://` (e.g. `ca`). */
  readonly tls?: { readonly ca?: string | Buffer }
  /** How a gateway's host name becomes addresses (default: the system resolver, every A and AAAA). */
  readonly resolveAddresses?: ResolveAddresses
}

/** A network as `welcome` describes it. */
export interface WelcomeNetwork {
  readonly network_id: string
  readonly interface_name?: string
  readonly listen_port?: number
}

/** The code a failed apply is acked with: the error's own (`peer_set_out_of_sync`, ...) when it has one. */
const errorCodeOf = (error: unknown) => {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === "string" && /^[a-z][a-z0-9_]{0,63}$/.test(code) ? code : "apply_failed"
}

type JoinAnswer = { readonly accepted: true; readonly body: JoinAcceptedBody } | { readonly accepted: false; readonly body: JoinRejectedBody }

export class AgentClient {
  private socket: WebSocket | undefined
  private heartbeatTimer: NodeJS.Timeout | undefined
  private reconnectTimer: NodeJS.Timeout | undefined
  private seq = 0
  private stopped = true
  private welcome: WelcomeBody | undefined
  /** Join requests awaiting their answer; a closed socket fails them (the request is asked again after the reconnect). */
  private readonly peerSetParts = new PeerSetAssembler()
  private readonly joinWaiters = new Map<string, { readonly resolve: (answer: JoinAnswer) => void; readonly reject: (error: Error) => void }>()
  private readonly welcomeWaiters: Array<(welcome: WelcomeBody) => void> = []
  private work: Promise<void> = Promise.resolve()
  private requestCounter = 0
  /** The key entries the last hello carried, so welcome sends only what changed. */
  private helloKeys: ReadonlyArray<WireguardKeyEntry> = []
  /** Delays actually waited before each reconnect (for tests and diagnostics). */
  readonly reconnectDelays: Array<number> = []
  /** The gateways this agent knows, and which one it dials next. */
  readonly gateways: GatewayList
  private welcomedThisSocket = false

  constructor(private readonly options: AgentClientOptions) {
    this.gateways = new GatewayList(typeof options.url === "string" ? [options.url] : options.url)
  }

  /** The gateway of the current (or next) connection. */
  /** The address the connection is pinned to when the gateway's name resolves to several. */
  get gatewayAddress(): string | undefined {
    return this.gateways.currentAddress
  }

  get gatewayUrl(): string {
    return this.gateways.current
  }

  get connected(): boolean {
    return this.welcome !== undefined && this.socket?.readyState === WebSocket.OPEN
  }

  /** Connects and keeps reconnecting until `stop()`. Resolves at the first welcome. */
  start(): Promise<WelcomeBody> {
    this.stopped = false
    const welcomed = this.nextWelcome()
    this.connect()
    return welcomed
  }

  stop() {
    this.stopped = true
    clearTimeout(this.reconnectTimer)
    clearInterval(this.heartbeatTimer)
    this.socket?.close(CloseCode.Normal, "agent stopping")
  }

  /** Resolves at the next welcome (after a reconnect, for instance). */
  nextWelcome(): Promise<WelcomeBody> {
    return new Promise((resolve) => this.welcomeWaiters.push(resolve))
  }

  send(message: AgentMessage): boolean {
    if (this.socket?.readyState !== WebSocket.OPEN) return false
    this.socket.send(encodeFrame(message), { binary: true })
    return true
  }

  /** Reports a state change (k3s ready, a module upgraded). */
  reportStatus(k3s: K3sState, modules: Extract<AgentMessage, { type: "status_report" }>["body"]["modules"] = [], note?: string) {
    return this.send({ type: "status_report", body: { k3s, modules, ...(note === undefined ? {} : { note }) } })
  }

  /** One join request; resolves with the answer. */
  requestJoin(moduleName: ModuleName, targetClusterId: string | null, tokenFingerprint?: string): Promise<JoinAnswer> {
    const request_id = `join-${++this.requestCounter}`
    const answer = new Promise<JoinAnswer>((resolve, reject) => this.joinWaiters.set(request_id, { resolve, reject }))
    const sent = this.send({
      type: "join_request",
      body: { request_id, module_name: moduleName, target_cluster_id: targetClusterId, ...(tokenFingerprint === undefined ? {} : { token_fingerprint: tokenFingerprint }) }
    })
    if (!sent) {
      this.joinWaiters.delete(request_id)
      return Promise.reject(new Error("not connected"))
    }
    return answer
  }

  /**
   * Asks to join until accepted, waiting each rejection's `retry_after_ms` (and for a
   * reconnect when the connection drops). `onRejected` sees every rejection.
   */
  async joinUntilAccepted(
    moduleName: ModuleName,
    targetClusterId: string | null,
    onRejected: (rejection: JoinRejectedBody) => void = () => undefined,
    sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
  ): Promise<JoinAcceptedBody> {
    while (!this.stopped) {
      if (!this.connected) await this.nextWelcome()
      const answer = await this.requestJoin(moduleName, targetClusterId).catch(() => undefined)
      if (answer === undefined) continue
      if (answer.accepted) return answer.body
      onRejected(answer.body)
      await sleep(answer.body.retry_after_ms)
    }
    throw new Error("agent stopped")
  }

  private connect() {
    void this.gateways.target(this.options.resolveAddresses ?? resolveAllAddresses).then((target) => {
      if (!this.stopped) this.open(target)
    })
  }

  private open(target: DialTarget) {
    const socket = new WebSocket(target.url, {
      ...(this.options.tls?.ca === undefined ? {} : { ca: this.options.tls.ca }),
      // One address of a name that resolves to several; TLS still checks the certificate against the name.
      ...(target.address === undefined ? {} : { lookup: pinnedLookup(target.address) })
    })
    this.socket = socket
    this.welcomedThisSocket = false
    socket.binaryType = "nodebuffer"
    socket.on("open", () => {
      this.helloKeys = [...this.options.wireguardKeys()]
      const identity = this.options.identity?.() ?? { instanceId: this.options.instanceId, credential: this.options.credential }
      socket.send(
        encodeFrame({
          type: "hello",
          body: {
            instance_id: identity.instanceId,
            credential: identity.credential,
            agent_version: this.options.agentVersion,
            protocol_versions: [PROTOCOL_VERSION],
            capabilities: [...(this.options.capabilities ?? ["wireguard", "k3s"])],
            wireguard_keys: [...this.helloKeys],
            applied: [...this.options.applied()],
            ...(this.options.peerVersions === undefined ? {} : { peer_versions: this.options.peerVersions().map(({ network_id, version }) => ({ network_id, version })) }),
            held_vips: [...this.options.heldVips()]
          }
        }),
        { binary: true }
      )
    })
    socket.on("message", (data: Buffer) => {
      const decoded = decodeGatewayFrame(data)
      if (Result.isFailure(decoded)) {
        socket.close(CloseCode.ProtocolError, decoded.failure.code)
        return
      }
      this.dispatch(decoded.success)
    })
    socket.on("close", (code: number, reason: Buffer) => this.onClose(socket, code, reason.toString()))
    socket.on("error", () => {
      // "close" follows; reconnecting is decided there.
    })
  }

  private onClose(socket: WebSocket, code: number, reason: string) {
    if (this.socket !== socket) return
    clearInterval(this.heartbeatTimer)
    this.welcome = undefined
    this.peerSetParts.reset()
    for (const [id, waiter] of [...this.joinWaiters]) {
      this.joinWaiters.delete(id)
      waiter.reject(new Error(`session closed (${code}) before the join was answered`))
    }
    const retryAuthentication = code === CloseCode.AuthenticationFailed && !this.stopped && this.options.handlers.onAuthenticationFailed?.() === true
    const willReconnect = !this.stopped && (!FATAL_CLOSE_CODES.has(code) || retryAuthentication)
    this.options.handlers.onClosed?.(code, reason, willReconnect)
    if (!willReconnect) return
    const round = this.gateways.ended(this.welcomedThisSocket, code === CloseCode.GoingAway)
    // A replaced session backs off longer, so two copies of an agent do not fight.
    const attempt = code === CloseCode.SessionReplaced ? round + 5 : round
    const delay = backoffDelay(attempt, this.options.backoff ?? DEFAULT_BACKOFF, this.options.random)
    this.reconnectDelays.push(delay)
    this.reconnectTimer = setTimeout(() => this.connect(), delay)
  }

  /** Gateway messages are handled one at a time, in order. */
  private dispatch(message: GatewayMessage) {
    this.work = this.work.then(() => this.handle(message)).catch(() => undefined)
  }

  private async handle(message: GatewayMessage) {
    const { handlers } = this.options
    switch (message.type) {
      case "welcome": {
        this.welcome = message.body
        this.welcomedThisSocket = true
        this.gateways.welcomed()
        if (message.body.gateways !== undefined) this.gateways.learn(message.body.gateways)
        clearInterval(this.heartbeatTimer)
        this.heartbeatTimer = setInterval(() => this.heartbeat(), message.body.heartbeat_interval_ms)
        this.heartbeat()
        await this.registerKeys(message.body.networks ?? (message.body.network_ids ?? []).map((network_id) => ({ network_id })))
        await handlers.onWelcome?.(message.body)
        for (const waiter of this.welcomeWaiters.splice(0)) waiter(message.body)
        return
      }
      case "config_push": {
        // A peer set split over several frames is applied (and acked) once, when whole.
        const push = this.peerSetParts.accept(message.body)
        if (push === undefined) return
        const { kind, key, version } = push
        try {
          await handlers.applyConfig(push)
          this.send({ type: "config_ack", body: { kind, key, version, status: "applied" } })
        } catch (error) {
          const text = error instanceof Error ? error.message : String(error)
          this.send({ type: "config_ack", body: { kind, key, version, status: "failed", error: { code: errorCodeOf(error), message: text.slice(0, 4000) } } })
        }
        return
      }
      case "join_accepted":
      case "join_rejected": {
        const waiter = this.joinWaiters.get(message.body.request_id)
        this.joinWaiters.delete(message.body.request_id)
        waiter?.resolve(message.type === "join_accepted" ? { accepted: true, body: message.body } : { accepted: false, body: message.body })
        return
      }
      case "vip_assign":
        await handlers.onVipAssign?.(message.body)
        this.send({ type: "vip_ack", body: { vip_id: message.body.vip_id, epoch: message.body.epoch, held: true } })
        return
      case "vip_release":
        await handlers.onVipRelease?.(message.body)
        this.send({ type: "vip_ack", body: { vip_id: message.body.vip_id, epoch: message.body.epoch, held: false } })
        return
      case "terminal_open":
        handlers.onTerminalOpen?.(message.body, this.terminalChannel(message.body.channel_id))
        return
      case "terminal_data":
        handlers.onTerminalData?.(message.body.channel_id, message.body.data)
        return
      case "terminal_resize":
        handlers.onTerminalResize?.(message.body.channel_id, message.body.cols, message.body.rows)
        return
      case "terminal_close":
        handlers.onTerminalClose?.(message.body.channel_id, message.body.reason)
        return
      case "terminal_credit":
        handlers.onTerminalCredit?.(message.body.channel_id, message.body.bytes)
        return
      case "error":
        handlers.onError?.(message.body)
        return
    }
  }

  /**
   * After welcome: a key for every network that has none yet, and the endpoint to advertise on
   * each (it needs the network's listen port, which welcome carries); only what differs from
   * the hello is sent.
   */
  private async registerKeys(networks: ReadonlyArray<WelcomeNetwork>) {
    const sent = new Map(this.helloKeys.map((entry) => [entry.network_id, entry]))
    const keys: Array<WireguardKeyEntry> = []
    for (const network of networks) {
      const before = sent.get(network.network_id)
      let publicKey = before?.public_key
      if (publicKey === undefined) {
        if (this.options.ensureWireguardKey === undefined) continue
        publicKey = await this.options.ensureWireguardKey(network.network_id)
      }
      const endpoint = this.options.advertisedEndpoint?.(network) ?? before?.endpoint
      if (before === undefined || before.endpoint !== endpoint) {
        keys.push({ network_id: network.network_id, public_key: publicKey, ...(endpoint === undefined ? {} : { endpoint }) })
      }
    }
    if (keys.length > 0) this.send({ type: "wireguard_keys", body: { keys } })
  }

  private heartbeat() {
    const state = this.options.nodeState()
    const probes = state.vip_probes ?? []
    this.send({
      type: "heartbeat",
      body: { seq: this.seq++, k3s: state.k3s, wireguard: [...state.wireguard], load: state.load, ...(probes.length === 0 ? {} : { vip_probes: [...probes] }) }
    })
  }

  private terminalChannel(id: string): TerminalChannel {
    return {
      id,
      write: (data) => {
        this.send({ type: "terminal_data", body: { channel_id: id, data } })
      },
      exit: (exit_code, signal, bytes_out) => {
        this.send({ type: "terminal_exit", body: { channel_id: id, exit_code, signal, bytes_out } })
      },
      close: (reason) => {
        this.send({ type: "terminal_close", body: { channel_id: id, reason } })
      }
    }
  }
}

/** A `lookup` for `net.connect` that answers with one given address (both of Node's callback shapes). */
const pinnedLookup =
  (address: string) =>
  (_hostname: string, options: { readonly all?: boolean }, callback: (...args: Array<unknown>) => void) => {
    const family = isIP(address)
    if (options.all === true) callback(null, [{ address, family }])
    else callback(null, address, family)
  }
