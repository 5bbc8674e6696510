/**
 * The agent endpoint: `GET /v1/agent` upgraded to a WebSocket (binary frames, the protocol
 * codec). Authentication comes first — a `hello` before the deadline, its credential checked
 * by the SDK in constant time, repeated failures from one address slowed down — then one
 * session per instance, whose messages session-messages.ts handles. The heartbeat path is:
 * decode -> find session -> update liveness in memory. No database write, no timer, no log
 * line per heartbeat.
 */
import type { IncomingMessage } from "node:http"
import type { Duplex } from "node:stream"
import { Effect, Result, type Clock } from "effect"
import { WebSocketServer, type RawData, type WebSocket } from "ws"
import {
  CloseCode,
  closeCodeForProtocolError,
  closeReason,
  decodeAgentFrame,
  negotiateProtocolVersion,
  PROTOCOL_VERSION,
  ProtocolErrorCode,
  type AgentMessage,
  type Hello
} from "@fleetplane/agent-protocol"
import type { AgentIdentity, AgentLivenessService, AgentPortService, Fleet } from "@fleetplane/sdk"
import type { GatewayMetrics } from "../admin/metrics"
import type { Logger } from "../log"
import { internedStringLists, internedStrings } from "./interned"
import { AgentSession, type SessionHooks } from "./agent-session"
import { createAckBatcher } from "./ack-batcher"
import { createSessionMessages } from "./session-messages"
import { AuthThrottle, type AuthThrottleOptions } from "./auth-throttle"
import { sendPushes, sendVipDirectives } from "./push-dispatcher"
import type { SessionRegistry } from "./session-registry"

export const AGENT_PATH = "/v1/agent"

export interface AgentEndpointOptions {
  readonly gatewayId: string
  /** Other gateways' agent endpoints, told to agents in welcome (where to go when this one fails or drains). */
  readonly peerGateways?: ReadonlyArray<string>
  readonly heartbeatIntervalMs: number
  readonly silenceThresholdMs: number
  /** R26: told to agents in welcome; reporters probe their VIPs this often. */
  readonly vipProbeIntervalMs: number
  readonly helloTimeoutMs: number
  readonly maxFrameBytes: number
  readonly maxBufferedBytes: number
  readonly pingIntervalMs: number
  readonly authThrottle?: AuthThrottleOptions
}

export interface AgentEndpointDeps {
  readonly fleet: Fleet
  readonly port: AgentPortService
  readonly liveness: AgentLivenessService
  readonly registry: SessionRegistry
  readonly metrics: GatewayMetrics
  readonly log: Logger
  /** The fleet's Clock: heartbeats, acks and pushes are stamped on the time its silence sensor reads. */
  readonly clock: Clock.Clock
}

/** How many frames an agent may send between its hello and the welcome. */
const MAX_EARLY_FRAMES = 32

const frameLimits = (maxFrameBytes: number) => ({ maxFrameBytes, maxDepth: 16 })

const asBuffer = (data: RawData): Buffer => (Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data))

export const createAgentEndpoint = (options: AgentEndpointOptions, deps: AgentEndpointDeps) => {
  const { fleet, port, registry, metrics, log } = deps
  const throttle = new AuthThrottle(options.authThrottle)
  const accountIds = internedStrings<AgentIdentity["accountId"]>()
  const capabilitySets = internedStringLists()
  const { handleMessage, recordHeartbeat, sendRefusals } = createSessionMessages({ ...deps, acks: createAckBatcher({ fleet, port }) })
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes, perMessageDeflate: false })
  const limits = frameLimits(options.maxFrameBytes)

  const closeSocket = (socket: WebSocket, code: number, reason: string) => {
    socket.close(code, closeReason(reason))
    // A peer that never answers the close handshake is cut off.
    setTimeout(() => socket.terminate(), 5_000).unref()
  }

  /**
   * Shared by every session (closures made per session cost memory at 10,000 sessions, and
   * ones made inside `handleHello` would share its scope's context: they would keep the hello's
   * locals — its pushes, whole peer sets in a large network — alive while the agent stays).
   */
  const sessionHooks: SessionHooks = {
    maxBufferedBytes: options.maxBufferedBytes,
    onTaskError: (session, error) =>
      log.error("agent.session_task_failed", { instance_id: session.identity.instanceId, error: error instanceof Error ? error.message : String(error) }),
    onSlowConsumer: (session, bufferedBytes) => {
      metrics.slowConsumers.inc()
      log.warn("agent.slow_consumer", { instance_id: session.identity.instanceId, session_id: session.id, buffered_bytes: bufferedBytes })
    }
  }

  const handleHello = async (socket: WebSocket, hello: Hello["body"], remoteAddress: string) => {
    const version = negotiateProtocolVersion(hello.protocol_versions)
    if (version === undefined) {
      closeSocket(socket, CloseCode.UnsupportedProtocolVersion, `this gateway speaks protocol ${PROTOCOL_VERSION}`)
      return undefined
    }
    // The throttle is consulted where the credential is checked: sockets opened in advance
    // cannot run more checks in parallel than the address's allowance.
    const verdict = await throttle.begin(remoteAddress)
    if (!verdict.allowed) {
      metrics.authThrottled.inc()
      closeSocket(socket, CloseCode.RateLimited, `retry after ${verdict.retryAfterMs} ms`)
      return undefined
    }
    // A refusal (by tag) is the agent's fault and counts against its address; anything else
    // (the store failing) is not: the agent retries and its address is not penalised.
    const checked = await fleet
      .run(
        port.authenticate(hello.instance_id, hello.credential).pipe(
          Effect.map((identity) => ({ identity }) as const),
          Effect.catchTag("UnauthorizedError", (refused) => Effect.succeed({ refusal: refused.code } as const))
        )
      )
      .catch((error: unknown) => ({ unavailable: error instanceof Error ? error.message : String(error) }) as const)
    if ("unavailable" in checked) {
      throttle.finish(remoteAddress, undefined)
      log.error("agent.auth_unavailable", { remote: remoteAddress, error: checked.unavailable })
      closeSocket(socket, CloseCode.InternalError, "authentication unavailable; retry")
      return undefined
    }
    if ("refusal" in checked) {
      const { refusal } = checked
      metrics.authFailures.inc()
      throttle.finish(remoteAddress, false)
      log.warn("agent.auth_failed", { remote: remoteAddress, instance_id: hello.instance_id.slice(0, 64), reason: refusal })
      closeSocket(socket, refusal === "instance_terminated" ? CloseCode.InstanceTerminated : CloseCode.AuthenticationFailed, refusal)
      return undefined
    }
    const { identity } = checked
    throttle.finish(remoteAddress, true)
    const session = new AgentSession(
      { ...identity, accountId: accountIds.of(identity.accountId) },
      socket,
      capabilitySets.of(hello.capabilities),
      sessionHooks
    )
    registry.register(session)
    session.recordApplied(hello.applied)
    for (const { network_id, version } of hello.peer_versions ?? []) session.peerVersions.set(network_id, version)
    for (const vip of hello.held_vips) session.heldVips.set(vip.vip_id, vip.epoch)
    // Record keys and endpoints first, so welcome can name the networks the agent needs keys for.
    const helloResult = await fleet.run(port.hello(identity, hello))
    session.send({
      type: "welcome",
      body: {
        session_id: session.id,
        gateway_id: options.gatewayId,
        protocol_version: version,
        heartbeat_interval_ms: options.heartbeatIntervalMs,
        silence_threshold_ms: options.silenceThresholdMs,
        vip_probe_interval_ms: options.vipProbeIntervalMs,
        server_time_ms: deps.clock.currentTimeMillisUnsafe(),
        max_frame_bytes: options.maxFrameBytes,
        network_ids: [...helloResult.networkIds],
        networks: [...helloResult.networks],
        assignments: [...helloResult.assignments],
        ...(options.peerGateways === undefined || options.peerGateways.length === 0 ? {} : { gateways: [...options.peerGateways] })
      }
    })
    sendRefusals(session, helloResult.refusals, "hello")
    log.info("agent.connected", { instance_id: identity.instanceId, hostname: identity.hostname, remote: remoteAddress, session_id: session.id })
    // What the hello read is what the agent lacks: sent as is, without reading the store again.
    await session.enqueue(async () => {
      sendPushes(deps, session, helloResult.pushes)
      sendVipDirectives(session, helloResult.vipDirectives)
    })
    return session
  }

  wss.on("connection", (socket: WebSocket, request: IncomingMessage) => {
    const remoteAddress = request.socket.remoteAddress ?? "unknown"
    let session: AgentSession | undefined
    let authenticating = false
    // Frames an agent pipelines after its hello wait (bounded) until authentication finishes.
    let early: Array<AgentMessage> | undefined = [] // dropped once the session exists
    let helloDeadline: NodeJS.Timeout | undefined = setTimeout(() => {
      if (session === undefined) closeSocket(socket, CloseCode.HelloTimeout, "no hello before the deadline")
    }, options.helloTimeoutMs)

    socket.on("pong", () => {
      if (session !== undefined) session.alive = true
    })
    socket.on("message", (data: RawData, isBinary: boolean) => {
      if (!isBinary) {
        metrics.protocolErrors.inc()
        closeSocket(socket, CloseCode.UnsupportedData, ProtocolErrorCode.TextFrameNotSupported)
        return
      }
      const decoded = decodeAgentFrame(asBuffer(data), limits)
      if (Result.isFailure(decoded)) {
        metrics.protocolErrors.inc()
        log.warn("agent.protocol_error", { remote: remoteAddress, instance_id: session?.identity.instanceId ?? null, code: decoded.failure.code })
        closeSocket(socket, closeCodeForProtocolError(decoded.failure.code as ProtocolErrorCode), decoded.failure.code)
        return
      }
      const message = decoded.success
      if (session !== undefined) {
        if (message.type === "heartbeat") return recordHeartbeat(session, message.body)
        void handleMessage(session, message).catch((error) =>
          log.error("agent.message_failed", { instance_id: session?.identity.instanceId, type: message.type, error: String(error) })
        )
        return
      }
      if (authenticating && message.type !== "hello" && early !== undefined && early.length < MAX_EARLY_FRAMES) {
        early.push(message)
        return
      }
      if (message.type !== "hello" || authenticating) {
        metrics.protocolErrors.inc()
        closeSocket(socket, CloseCode.NotAuthenticated, "send hello first")
        return
      }
      authenticating = true
      void handleHello(socket, message.body, remoteAddress)
        .then((created) => {
          clearTimeout(helloDeadline)
          helloDeadline = undefined // not kept for the session's life
          if (created === undefined) return
          session = created
          if (socket.readyState !== socket.OPEN) return cleanup()
          const pipelined = early ?? []
          early = undefined
          for (const message of pipelined) void handleMessage(created, message)
        })
        .catch((error) => {
          log.error("agent.hello_failed", { remote: remoteAddress, error: String(error) })
          closeSocket(socket, CloseCode.InternalError, "hello failed; retry")
        })
    })

    const cleanup = () => {
      clearTimeout(helloDeadline)
      if (session === undefined) return
      session.closed = true
      session.endTerminals()
      registry.remove(session)
      if (registry.get(session.identity.instanceId) === undefined) {
        const { identity } = session
        void fleet.run(port.disconnected(identity)).catch((error) =>
          log.warn("agent.disconnect_not_recorded", { instance_id: identity.instanceId, error: error instanceof Error ? error.message : String(error) })
        )
      }
      log.info("agent.disconnected", { instance_id: session.identity.instanceId, session_id: session.id })
    }
    socket.on("close", cleanup)
    socket.on("error", (error) => log.warn("agent.socket_error", { remote: remoteAddress, error: error.message }))
  })

  /** Routes an HTTP upgrade: only /v1/agent, and not for an address that is being throttled. */
  const handleUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (request.url ?? "").split("?")[0]
    if (path !== AGENT_PATH) {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n")
      return
    }
    const remoteAddress = request.socket.remoteAddress ?? "unknown"
    wss.handleUpgrade(request, socket, head, (ws) => {
      const verdict = throttle.check(remoteAddress)
      if (!verdict.allowed) {
        closeSocket(ws, CloseCode.RateLimited, `retry after ${verdict.retryAfterMs} ms`)
        return
      }
      wss.emit("connection", ws, request)
    })
  }

  /** One sweep for every session: a connection that did not answer the last ping is dead TCP. */
  const pingSweep = setInterval(() => {
    for (const session of registry.all()) {
      if (!session.alive) {
        log.warn("agent.ping_timeout", { instance_id: session.identity.instanceId })
        session.closed = true
        session.socket.terminate()
        continue
      }
      session.alive = false
      session.socket.ping()
    }
  }, options.pingIntervalMs)
  pingSweep.unref()

  /** Graceful drain: every agent is told to reconnect (here after a restart, or elsewhere). */
  const close = async () => {
    clearInterval(pingSweep)
    for (const session of registry.all()) session.close(CloseCode.GoingAway, "gateway shutting down; reconnect")
    for (const socket of wss.clients) if (socket.readyState === socket.OPEN) socket.close(CloseCode.GoingAway, "gateway shutting down")
    await new Promise<void>((resolve) => wss.close(() => resolve()))
  }

  return { handleUpgrade, close }
}
