/**
 * A whole gateway: the SDK on a SQLite file, the agent endpoint (WebSocket, optionally TLS),
 * the push dispatcher, and the admin API on its own port. `close()` drains gracefully:
 * stop accepting, tell every agent to reconnect (1001), end event streams, close the store.
 */
import { readFileSync } from "node:fs"
import { createServer as createHttpServer, type Server } from "node:http"
import { createServer as createHttpsServer } from "node:https"
import type { AddressInfo } from "node:net"
import { hostname } from "node:os"
import { DEFAULT_FRAME_LIMITS } from "@fleetplane/agent-protocol"
import { Effect, Exit, ManagedRuntime, Scope } from "effect"
import { fleetFacade, fleetLayer, Leadership } from "@fleetplane/sdk"
import { createAdminHandler } from "./admin/admin-server"
import { createApiKeyGuard } from "./admin/api-key-guard"
import { createConsoleSessions } from "./admin/console-sessions"
import { createMcpEndpoint } from "./mcp/mcp-endpoint"
import { GATEWAY_VERSION } from "./version"
import { gatewayMetrics } from "./admin/metrics"
import { makeAgentEndpoint } from "./agent/agent-endpoint"
import type { AuthThrottleOptions } from "./agent/auth-throttle"
import { SessionRegistry } from "./agent/session-registry"
import { createLogger, relayLogLine, type Logger, type LogLevel } from "./log"
import { exposedGc, makeMemoryReclaim } from "./memory-reclaim"
import { createTerminalEndpoint } from "./terminal/terminal-endpoint"

/** How often the gateway looks at whether a fan-out left memory to give back (src/memory-reclaim.ts). */
const MEMORY_RECLAIM_CHECK_MS = 5_000

export interface GatewayOptions {
  /** SQLite file (created if missing), or ":memory:". Ignored when `postgres` is set. */
  readonly database?: string
  /** PostgreSQL connection string: several gateways share one state (README: "Running several gateways"). */
  readonly postgres?: string
  /** Where agents connect: `host:port`; default 0.0.0.0:7443. Port 0 picks a free port. */
  readonly listen?: string
  /** The admin API: `host:port`; default 127.0.0.1:7080 (keep it off public networks). */
  readonly adminListen?: string
  /** Serve agents over wss:// with this certificate and key (PEM files). */
  readonly tls?: { readonly certFile: string; readonly keyFile: string }
  /** Serve the admin API over https:// with this certificate and key (PEM files). */
  readonly adminTls?: { readonly certFile: string; readonly keyFile: string }
  readonly gatewayId?: string
  /** Other gateways' agent endpoints (`wss://…/v1/agent`), told to agents in welcome. */
  readonly peerGateways?: ReadonlyArray<string>
  readonly heartbeatIntervalMs?: number
  readonly silenceThresholdMs?: number
  readonly sensorIntervalMs?: number
  /** Several gateways on PostgreSQL: how often agent liveness is shared (default 1 s) and the leader lease retried (default 1 s). */
  readonly livenessSyncMs?: number
  readonly leaseRetryMs?: number
  /** R26: how often reporters probe their VIP over the overlay (default 2 s) and how many of a cluster's nodes do (default 5; 0 turns the peers' view off). */
  readonly vipProbeIntervalMs?: number
  readonly vipProbeReporters?: number
  readonly helloTimeoutMs?: number
  readonly maxFrameBytes?: number
  /** A session whose unsent data exceeds this is closed as a slow consumer (4010). */
  readonly maxBufferedBytes?: number
  readonly pingIntervalMs?: number
  /** Operator terminals: at most this many open per instance (default 4). */
  readonly maxTerminalsPerInstance?: number
  /** A terminal with no traffic this long is closed by the agent (default 15 minutes). */
  readonly terminalIdleTimeoutMs?: number
  readonly authThrottle?: AuthThrottleOptions
  /** How often API keys with an open event stream or terminal are checked again (default 10 s): a revoked key ends them. */
  readonly apiKeyRecheckIntervalMs?: number
  /**
   * How long a checked API key is trusted without reading the store again (default 10 s; 0
   * reads it on every request). Revocations through any gateway or the CLI are seen at once;
   * this only bounds one written to the database behind every gateway's back.
   */
  readonly apiKeyCacheMs?: number
  /**
   * After a fan-out, one compacting collection gives its memory back at once (src/memory-reclaim.ts;
   * needs node --expose-gc). It pauses the event loop ~170 ms at 1,000 agents, ~270 ms at 10,000
   * sessions, once per fan-out; `false` leaves memory to V8's own schedule (default true).
   */
  readonly memoryReclaim?: boolean
  readonly logLevel?: LogLevel
  readonly logger?: Logger
  /**
   * Export traces over OTLP/HTTP to this collector base URL (spans to `<url>/v1/traces`).
   * Default: the `OTEL_EXPORTER_OTLP_ENDPOINT` environment variable; unset, nothing is exported.
   * `OTEL_SERVICE_NAME` names the service (default `fleetplane-gateway`).
   */
  readonly otlpEndpoint?: string
  /** How often batched spans are sent (default 5 s). */
  readonly otlpExportIntervalMs?: number
}

const parseListen = (value: string, fallbackHost: string): { host: string; port: number } => {
  const match = value.match(/^(?:\[?([^\]]*)\]?:)?(\d+)$/)
  if (match === null) throw new Error(`"${value}" is not host:port or a port`)
  return { host: match[1] === undefined || match[1] === "" ? fallbackHost : match[1], port: Number(match[2]) }
}

const isLoopback = (host: string) => host === "localhost" || host === "::1" || /^127\./.test(host)

const listen = (server: Server, address: { host: string; port: number }) =>
  new Promise<AddressInfo>((resolve, reject) => {
    server.once("error", reject)
    server.listen(address.port, address.host, () => resolve(server.address() as AddressInfo))
  })

export const startGateway = async (options: GatewayOptions) => {
  const log = options.logger ?? createLogger(options.logLevel ?? "info")
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 5_000
  const silenceThresholdMs = options.silenceThresholdMs ?? heartbeatIntervalMs * 3
  const vipProbeIntervalMs = options.vipProbeIntervalMs ?? 2_000
  const otlpEndpoint = options.otlpEndpoint ?? (process.env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined)
  if (otlpEndpoint !== undefined && !/^https?:$/.test(URL.canParse(otlpEndpoint) ? new URL(otlpEndpoint).protocol : "")) {
    throw new Error(`the OTLP endpoint "${otlpEndpoint.slice(0, 200)}" is not an http(s) URL: set OTEL_EXPORTER_OTLP_ENDPOINT to the collector's OTLP/HTTP base URL, e.g. http://localhost:4318`)
  }
  // One runtime on `fleetLayer`: the agent endpoint runs on its services directly; the admin
  // API, MCP and terminals use the Promise facade over the same runtime (one store, one signal bus).
  const runtime = ManagedRuntime.make(fleetLayer({
    ...(options.postgres === undefined ? { database: options.database ?? ":memory:" } : { postgres: options.postgres }),
    ...(otlpEndpoint === undefined
      ? {}
      : {
          tracing: {
            otlpEndpoint,
            serviceName: process.env.OTEL_SERVICE_NAME || "fleetplane-gateway",
            ...(options.otlpExportIntervalMs === undefined ? {} : { exportIntervalMs: options.otlpExportIntervalMs })
          }
        }),
    // One log stream: the SDK's lines (Effect's logger, the same JSON format) go through this gateway's logger and level.
    logging: { level: options.logger === undefined ? (options.logLevel ?? "info") : "debug", write: (line) => relayLogLine(log, line) },
    config: {
      heartbeatIntervalMs,
      silenceThresholdMs,
      ...(options.sensorIntervalMs === undefined ? {} : { sensorIntervalMs: options.sensorIntervalMs }),
      ...(options.livenessSyncMs === undefined ? {} : { livenessSyncMs: options.livenessSyncMs }),
      ...(options.leaseRetryMs === undefined ? {} : { leaseRetryMs: options.leaseRetryMs }),
      ...(options.vipProbeReporters === undefined ? {} : { vipProbeReporters: options.vipProbeReporters }),
      ...(options.apiKeyCacheMs === undefined ? {} : { apiKeyCacheMs: options.apiKeyCacheMs }),
      vipProbeIntervalMs
    }
  }))
  const fleet = await fleetFacade(runtime)
  const leadership = await fleet.run(Effect.service(Leadership))
  const registry = new SessionRegistry()
  const metrics = gatewayMetrics()
  metrics.metrics.gauge("fleetplane_agent_sessions", "Agent sessions connected to this gateway.", () => registry.size)
  metrics.metrics.gauge("fleetplane_pushes_pending", "Config pushes sent and not yet acknowledged.", () => {
    let pending = 0
    for (const session of registry.all()) pending += session.pendingPushes
    return pending
  })

  const maxBufferedBytes = options.maxBufferedBytes ?? 8 * 1024 * 1024
  // The endpoint's scope holds its fibers (sessions' work, the push dispatcher): closed before the fleet.
  const endpointScope = await runtime.runPromise(Scope.make())
  const endpoint = await runtime.runPromise(
    Scope.provide(endpointScope)(
      makeAgentEndpoint(
    {
      gatewayId: options.gatewayId ?? hostname(),
      ...(options.peerGateways === undefined ? {} : { peerGateways: options.peerGateways }),
      heartbeatIntervalMs,
      silenceThresholdMs,
      vipProbeIntervalMs,
      helloTimeoutMs: options.helloTimeoutMs ?? 10_000,
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_FRAME_LIMITS.maxFrameBytes,
      maxBufferedBytes,
      pingIntervalMs: options.pingIntervalMs ?? 30_000,
      ...(options.authThrottle === undefined ? {} : { authThrottle: options.authThrottle })
    },
    { registry, metrics, log }
      )
    )
  )
  const startedAt = Date.now()
  // One door for API keys on the admin port: requests and terminal upgrades share its throttle.
  const keys = createApiKeyGuard({ fleet, log, ...(options.apiKeyRecheckIntervalMs === undefined ? {} : { recheckIntervalMs: options.apiKeyRecheckIntervalMs }) })
  const mcp = createMcpEndpoint({ fleet, keys, log }, { version: GATEWAY_VERSION })
  // Web console sign-ins: the admin API and the terminal endpoint both accept their cookie.
  const consoleSessions = createConsoleSessions()
  const admin = await createAdminHandler({
    fleet,
    keys,
    consoleSessions,
    mcp,
    metrics: metrics.metrics,
    log,
    secureCookies: options.adminTls !== undefined,
    // `leader`: this gateway runs the silence sensor and the skill runner (always, on SQLite).
    health: () => ({ sessions: registry.size, uptime_s: Math.round((Date.now() - startedAt) / 1000), leader: leadership.isLeader() })
  })

  const agentServer: Server = options.tls
    ? createHttpsServer({ cert: readFileSync(options.tls.certFile), key: readFileSync(options.tls.keyFile) })
    : createHttpServer()
  agentServer.on("request", (_request, response) => {
    response.writeHead(426, { "content-type": "text/plain" })
    response.end("agents connect with a WebSocket upgrade on /v1/agent\n")
  })
  agentServer.on("upgrade", endpoint.handleUpgrade)
  const adminServer: Server = options.adminTls
    ? createHttpsServer({ cert: readFileSync(options.adminTls.certFile), key: readFileSync(options.adminTls.keyFile) }, admin.handle)
    : createHttpServer(admin.handle)
  const terminals = createTerminalEndpoint(
    { maxTerminalsPerInstance: options.maxTerminalsPerInstance ?? 4, idleTimeoutMs: options.terminalIdleTimeoutMs ?? 15 * 60_000, maxBufferedBytes },
    { fleet, keys, consoleSessions, registry, log, metrics }
  )
  adminServer.on("upgrade", terminals.handleUpgrade)

  const agentListen = parseListen(options.listen ?? "0.0.0.0:7443", "0.0.0.0")
  const adminListen = parseListen(options.adminListen ?? "127.0.0.1:7080", "127.0.0.1")
  // Credentials and API keys cross these ports: say so when they travel in clear beyond this machine.
  for (const [port, address, tls] of [["agent", agentListen, options.tls], ["admin", adminListen, options.adminTls]] as const) {
    if (tls === undefined && !isLoopback(address.host)) {
      log.warn("gateway.listening_without_tls", {
        port,
        listen: `${address.host}:${address.port}`,
        advice: port === "agent" ? "agent credentials travel in clear: use --tls-cert/--tls-key, or listen on a private network only" : "API keys travel in clear: use --admin-tls-cert/--admin-tls-key, or keep the admin API on 127.0.0.1"
      })
    }
  }
  // After a fan-out or a fleet reconnecting, memory comes back within seconds rather than minutes (needs --expose-gc).
  const gc = options.memoryReclaim === false ? undefined : exposedGc()
  const reclaim = gc === undefined ? undefined : makeMemoryReclaim({ gc, work: () => metrics.pushesSent.value + metrics.sessionsOpened.value, log })
  const reclaimTimer = reclaim === undefined ? undefined : setInterval(reclaim, MEMORY_RECLAIM_CHECK_MS).unref()
  let closing: Promise<void> | undefined
  const close = () =>
    (closing ??= (async () => {
      log.info("gateway.stopping", { sessions: registry.size })
      clearInterval(reclaimTimer)
      agentServer.close()
      adminServer.close()
      terminals.close()
      keys.close()
      mcp.close()
      await endpoint.close()
      await admin.closeStreams()
      await runtime.runPromise(Scope.close(endpointScope, Exit.void))
      adminServer.closeAllConnections()
      agentServer.closeAllConnections()
      await fleet.close()
      log.info("gateway.stopped", {})
    })())

  // A port that cannot be taken stops the start cleanly: everything opened so far is closed, so
  // the process exits with the reason instead of hanging on an open database.
  const listenOrExplain = async (server: Server, address: { host: string; port: number }, what: string, flag: string) => {
    try {
      return await listen(server, address)
    } catch (error) {
      await close()
      const code = (error as NodeJS.ErrnoException).code
      const why = code === "EADDRINUSE" ? "the address is already in use (another gateway or program holds it)" : code === "EACCES" ? "permission denied (ports below 1024 need privileges)" : (error as Error).message
      throw Object.assign(new Error(`cannot listen for ${what} on ${address.host}:${address.port}: ${why}; choose another ${flag}`), { code: code ?? "listen_failed" })
    }
  }
  const agentAddress = await listenOrExplain(agentServer, agentListen, "agents", "--listen")
  const adminAddress = await listenOrExplain(adminServer, adminListen, "the admin API", "--admin-listen")
  log.info("gateway.started", {
    agent_url: `${options.tls ? "wss" : "ws"}://${agentAddress.address}:${agentAddress.port}/v1/agent`,
    admin_url: `${options.adminTls ? "https" : "http"}://${adminAddress.address}:${adminAddress.port}`,
    // The connection string may carry a password: only the host is logged.
    store: options.postgres === undefined ? `sqlite:${options.database ?? ":memory:"}` : `postgresql://${new URL(options.postgres).host}`,
    // The collector URL could carry credentials too: its origin only.
    traces: otlpEndpoint === undefined ? "off" : `otlp ${new URL(otlpEndpoint).origin}`,
    memory_reclaim:
      reclaim !== undefined ? "after fan-outs" : options.memoryReclaim === false ? "off (turned off)" : "off (start node with --expose-gc to reclaim memory after fan-outs)"
  })

  return {
    agentPort: agentAddress.port,
    adminPort: adminAddress.port,
    agentUrl: `${options.tls ? "wss" : "ws"}://127.0.0.1:${agentAddress.port}/v1/agent`,
    adminUrl: `${options.adminTls ? "https" : "http"}://127.0.0.1:${adminAddress.port}`,
    fleet,
    sessions: registry,
    metrics,
    close
  }
}

export type Gateway = Awaited<ReturnType<typeof startGateway>>
