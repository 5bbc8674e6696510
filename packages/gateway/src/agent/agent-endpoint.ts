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
import { Clock, Effect, FiberSet, Result, type Cause, type Fiber } from "effect"
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
import { AgentLiveness, AgentPort, internedStringLists, internedStrings, type AgentIdentity, type FleetServices } from "@fleetplane/sdk"
import type { GatewayMetrics } from "../admin/metrics"
import { failureMessage, type Logger } from "../log"
import { AgentSession, sessionWork, type SessionHooks } from "./agent-session"
import { makeAckBatcher } from "./ack-batcher"
import { createSessionMessages, type SessionMessagesDeps } from "./session-messages"
import { AuthThrottle, type AuthThrottleOptions } from "./auth-throttle"
import { runPushDispatcher, sendPushes, sendVipDirectives } from "./push-dispatcher"
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
  readonly registry: SessionRegistry
  readonly metrics: GatewayMetrics
  readonly log: Logger
}

/** How many frames an agent may send between its hello and the welcome. */
const MAX_EARLY_FRAMES = 32

/** One agent connection, from its upgrade to its close. */
class Connection {
  session: AgentSession | undefined = undefined
  authenticating = false
  /** Frames pipelined after the hello, handled once the session exists (then dropped). */
  early: Array<AgentMessage> | undefined = []
  helloDeadline: NodeJS.Timeout | undefined = undefined
  constructor(readonly remoteAddress: string) {}
}

const frameLimits = (maxFrameBytes: number) => ({ maxFrameBytes, maxDepth: 16 })

const asBuffer = (data: RawData): Buffer => (Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data))

/**
 * The endpoint on the fleet's services, with its push dispatcher. Scoped: sessions' work, the
 * dispatcher and pending ack commits are fibers of its scope, interrupted when it closes.
 */
export const makeAgentEndpoint = (options: AgentEndpointOptions, deps: AgentEndpointDeps) =>
  Effect.gen(function* () {
    const port = yield* AgentPort
    const liveness = yield* AgentLiveness
    // The fleet's Clock: heartbeats, acks and pushes are stamped on the time its silence sensor reads.
    const clock = yield* Clock.clockWith(Effect.succeed)
    // Forks into this scope: a session's work while it has some, hellos, disconnects.
    const runWork = yield* FiberSet.makeRuntime<FleetServices>()
    const acks = yield* makeAckBatcher(undefined, (count, cause) => deps.log.error("agent.acks_not_recorded", { acks: count, error: failureMessage(cause) }))
    yield* runPushDispatcher({ registry: deps.registry, metrics: deps.metrics, log: deps.log, clock, runWork })
    return agentEndpoint(options, { ...deps, port, liveness, clock, runWork, acks })
  })

/** What the endpoint works with once its services are resolved. */
interface EndpointContext extends AgentEndpointDeps, SessionMessagesDeps {
  readonly runWork: <A, E>(effect: Effect.Effect<A, E, FleetServices>) => Fiber.Fiber<A, E>
}

const agentEndpoint = (options: AgentEndpointOptions, deps: EndpointContext) => {
  const { port, registry, metrics, log, runWork } = deps
  const throttle = new AuthThrottle(options.authThrottle)
  const accountIds = internedStrings<AgentIdentity["accountId"]>()
  const capabilitySets = internedStringLists()
  const { handleMessage, sendRefusals } = createSessionMessages(deps)
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
  const onTaskFailure = (session: AgentSession, cause: Cause.Cause<unknown>) =>
    log.error("agent.session_task_failed", { instance_id: session.identity.instanceId, error: failureMessage(cause) })

  const sessionHooks: SessionHooks = {
    maxBufferedBytes: options.maxBufferedBytes,
    startWork: (session) => void runWork(sessionWork(session)),
    onTaskFailure,
    onSlowConsumer: (session, backlog) => {
      metrics.slowConsumers.inc()
      log.warn("agent.slow_consumer", { instance_id: session.identity.instanceId, session_id: session.id, ...backlog })
    }
  }

  /** Authenticates a hello and opens the session; undefined when the socket was closed with the reason instead. */
  const handleHello = (socket: WebSocket, hello: Hello["body"], remoteAddress: string) =>
    Effect.gen(function* () {
      const version = negotiateProtocolVersion(hello.protocol_versions)
      if (version === undefined) {
        closeSocket(socket, CloseCode.UnsupportedProtocolVersion, `this gateway speaks protocol ${PROTOCOL_VERSION}`)
        return undefined
      }
      // The throttle is consulted where the credential is checked: sockets opened in advance
      // cannot run more checks in parallel than the address's allowance.
      const verdict = yield* Effect.promise(() => throttle.begin(remoteAddress))
      if (!verdict.allowed) {
        metrics.authThrottled.inc()
        closeSocket(socket, CloseCode.RateLimited, `retry after ${verdict.retryAfterMs} ms`)
        return undefined
      }
      // A refusal (by tag) is the agent's fault and counts against its address; anything else
      // (the store failing) is not: the agent retries and its address is not penalised.
      const checked = yield* port.authenticate(hello.instance_id, hello.credential).pipe(
        Effect.map((identity) => ({ identity }) as const),
        Effect.catchTag("UnauthorizedError", (refused) => Effect.succeed({ refusal: refused.code } as const)),
        Effect.catchCause((cause) => Effect.succeed({ unavailable: failureMessage(cause) } as const))
      )
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
      const helloResult = yield* port.hello(identity, hello)
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
      metrics.sessionsOpened.inc()
      log.info("agent.connected", { instance_id: identity.instanceId, hostname: identity.hostname, remote: remoteAddress, session_id: session.id })
      // Resume: what the hello read is what the agent lacks, sent first in the session's queue.
      session.enqueue(
        Effect.sync(() => {
          sendPushes(deps, session, helloResult.pushes)
          sendVipDirectives(session, helloResult.vipDirectives)
        })
      )
      return session
    })

  // One set of listeners for every connection, each finding its connection by its socket: four
  // closures and their scope per connection cost ~300 bytes of heap each at 10,000 sessions (#20).
  const connections = new WeakMap<WebSocket, Connection>()

  function onPong(this: WebSocket) {
    const session = connections.get(this)?.session
    if (session !== undefined) session.alive = true
  }

  function onMessage(this: WebSocket, data: RawData, isBinary: boolean) {
    const socket = this
    const connection = connections.get(socket)
    if (connection === undefined) return
    if (!isBinary) {
      metrics.protocolErrors.inc()
      closeSocket(socket, CloseCode.UnsupportedData, ProtocolErrorCode.TextFrameNotSupported)
      return
    }
    const decoded = decodeAgentFrame(asBuffer(data), limits)
    if (Result.isFailure(decoded)) {
      metrics.protocolErrors.inc()
      log.warn("agent.protocol_error", { remote: connection.remoteAddress, instance_id: connection.session?.identity.instanceId ?? null, code: decoded.failure.code })
      closeSocket(socket, closeCodeForProtocolError(decoded.failure.code as ProtocolErrorCode), decoded.failure.code)
      return
    }
    const message = decoded.success
    if (connection.session !== undefined) {
      return handleMessage(connection.session, message)
    }
    if (connection.authenticating && message.type !== "hello" && connection.early !== undefined && connection.early.length < MAX_EARLY_FRAMES) {
      connection.early.push(message)
      return
    }
    if (message.type !== "hello" || connection.authenticating) {
      metrics.protocolErrors.inc()
      closeSocket(socket, CloseCode.NotAuthenticated, "send hello first")
      return
    }
    connection.authenticating = true
    runWork(
      handleHello(socket, message.body, connection.remoteAddress).pipe(
        Effect.matchCause({
          onSuccess: (created) => {
            clearTimeout(connection.helloDeadline)
            connection.helloDeadline = undefined // not kept for the session's life
            if (created === undefined) return
            connection.session = created
            if (socket.readyState !== socket.OPEN) return cleanup(connection)
            const pipelined = connection.early ?? []
            connection.early = undefined
            for (const message of pipelined) handleMessage(created, message)
          },
          onFailure: (cause) => {
            log.error("agent.hello_failed", { remote: connection.remoteAddress, error: failureMessage(cause) })
            closeSocket(socket, CloseCode.InternalError, "hello failed; retry")
          }
        })
      )
    )
  }

  function onClose(this: WebSocket) {
    const connection = connections.get(this)
    if (connection !== undefined) cleanup(connection)
  }

  function onError(this: WebSocket, error: Error) {
    log.warn("agent.socket_error", { remote: connections.get(this)?.remoteAddress ?? "unknown", error: error.message })
  }

  const cleanup = (connection: Connection) => {
    clearTimeout(connection.helloDeadline)
    const session = connection.session
    if (session === undefined) return
    session.closed = true
    session.endTerminals()
    registry.remove(session)
    if (registry.get(session.identity.instanceId) === undefined) {
      const { identity } = session
      runWork(
        Effect.catchCause(port.disconnected(identity), (cause) =>
          Effect.sync(() => log.warn("agent.disconnect_not_recorded", { instance_id: identity.instanceId, error: failureMessage(cause) }))
        )
      )
    }
    log.info("agent.disconnected", { instance_id: session.identity.instanceId, session_id: session.id })
  }

  wss.on("connection", (socket: WebSocket, request: IncomingMessage) => {
    const connection = new Connection(request.socket.remoteAddress ?? "unknown")
    connection.helloDeadline = setTimeout(() => {
      if (connection.session === undefined) closeSocket(socket, CloseCode.HelloTimeout, "no hello before the deadline")
    }, options.helloTimeoutMs)
    connections.set(socket, connection)
    socket.on("pong", onPong)
    socket.on("message", onMessage)
    socket.on("close", onClose)
    socket.on("error", onError)
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
