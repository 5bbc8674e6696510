/**
 * `GET /v1/instances/{id}/terminal` on the admin port, upgraded to a WebSocket: binary
 * frames are the terminal's bytes both ways; text frames are JSON control messages
 * (`{"type":"resize","cols":…,"rows":…}` from the operator; `{"type":"exit",…}` or
 * `{"type":"closed",…}` to the operator). Query: `command` (a JSON array, default: a login
 * shell), `cols`, `rows`. The API key's account must own the instance (another account's
 * instance answers exactly like a missing one).
 *
 * A browser cannot put a key in a WebSocket's headers: the web console's session cookie opens
 * it instead, from the gateway's own origin only (`Origin` must name this host) and with the
 * session's CSRF token in the `csrf` query parameter.
 */
import { STATUS_CODES, type IncomingMessage } from "node:http"
import { randomUUID } from "node:crypto"
import type { Duplex } from "node:stream"
import { WebSocketServer } from "ws"
import { Effect } from "effect"
import { Actions, errorStatus, roleAllows, type Fleet } from "@fleetplane/sdk"
import type { SessionRegistry } from "../agent/session-registry"
import type { GatewayMetrics } from "../admin/metrics"
import type { Logger } from "../log"
import type { ApiKeyGuard } from "../admin/api-key-guard"
import { SESSION_COOKIE, sameToken, type ConsoleSessions } from "../admin/console-sessions"
import { Cookies } from "effect/http"
import { TerminalBridge, TerminalCloseCode } from "./terminal-bridge"

export const TERMINAL_PATH = /^\/v1\/instances\/([A-Za-z0-9_]+)\/terminal$/

export interface TerminalEndpointOptions {
  readonly maxTerminalsPerInstance: number
  readonly idleTimeoutMs: number
  /** Agent sessions' send bound: terminal input is kept well under it. */
  readonly maxBufferedBytes: number
}

const reject = (socket: Duplex, status: number, code: string, message: string, retryAfterMs?: number) => {
  const body = JSON.stringify({ error: { code, message, ...(retryAfterMs === undefined ? {} : { details: { retry_after_ms: retryAfterMs } }) } })
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      (retryAfterMs === undefined ? "" : `Retry-After: ${Math.ceil(retryAfterMs / 1000)}\r\n`) +
      `Connection: close\r\n\r\n${body}`
  )
}

const originHost = (origin: string | undefined) => {
  try {
    return origin === undefined ? undefined : new URL(origin).host
  } catch {
    return undefined
  }
}

export const createTerminalEndpoint = (
  options: TerminalEndpointOptions,
  deps: {
    fleet: Fleet
    keys: ApiKeyGuard
    consoleSessions: ConsoleSessions
    registry: SessionRegistry
    log: Logger
    metrics: Pick<GatewayMetrics, "terminalCreditViolations">
  }
) => {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 })

  const handleUpgrade = async (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(request.url ?? "/", "http://admin")
    const match = url.pathname.match(TERMINAL_PATH)
    if (match === null) return reject(socket, 404, "not_found", "WebSocket upgrades are served on /v1/instances/{id}/terminal only")
    const instanceId = match[1]!
    let authorization = request.headers.authorization
    if (authorization === undefined) {
      const session = deps.consoleSessions.find(Cookies.parseHeader(request.headers.cookie ?? "")[SESSION_COOKIE])
      if (session !== undefined) {
        // Cross-site WebSocket hijacking: a cookie rides along from any page, so the page must be ours.
        if (originHost(request.headers.origin) !== request.headers.host) {
          return reject(socket, 403, "origin_not_allowed", "a terminal opened with the console's session must come from the console's own origin")
        }
        if (!sameToken(url.searchParams.get("csrf") ?? "", session.csrfToken)) {
          return reject(socket, 403, "csrf_token_invalid", "a terminal opened with the console's session needs its CSRF token in the csrf query parameter")
        }
        authorization = `Bearer ${session.key}`
      }
    }
    // The same door as every admin request: a terminal upgrade is no way around the key throttle.
    const checked = await deps.keys.check(authorization, request.socket.remoteAddress ?? "unknown")
    if (!checked.ok) return reject(socket, checked.status, checked.code, checked.message, checked.retryAfterMs)
    const who = checked.identity
    // A terminal is a root shell on the node: admin keys only.
    if (!roleAllows(who.role, "admin")) {
      return reject(socket, 403, "forbidden_for_role", `this API key's role (${who.role}) may not open terminals, which needs admin`)
    }
    // The key's account must own the instance: a domain error (not found, which is also what
    // another account's instance gives) by its tag, at the status of the SDK's one mapping.
    const lookup = await deps.fleet
      .run(
        Effect.service(Actions).pipe(
          Effect.flatMap((actions) => actions.execute(who.account_id, "system_get_instance", { instance_id: instanceId }, { role: who.role, api_key_id: who.api_key_id, name: who.name })),
          Effect.as(undefined),
          Effect.catch((e) => Effect.succeed({ status: errorStatus[e._tag].http, code: e.code, message: e.message }))
        )
      )
      .catch(() => ({ status: 500, code: "internal_error", message: "could not look the instance up" }))
    if (lookup !== undefined) return reject(socket, lookup.status, lookup.code, lookup.message)
    const session = deps.registry.get(instanceId)
    if (session === undefined) return reject(socket, 409, "instance_not_connected", `instance ${instanceId} has no agent session on this gateway; check that its agent runs`)
    if (!session.capabilities.includes("terminal")) return reject(socket, 409, "terminal_not_supported", "this instance's agent does not offer terminals")
    if (session.terminals.size >= options.maxTerminalsPerInstance) {
      return reject(socket, 429, "too_many_terminals", `instance ${instanceId} already has ${session.terminals.size} terminals open (at most ${options.maxTerminalsPerInstance})`)
    }
    let command: Array<string> | null = null
    const commandParam = url.searchParams.get("command")
    if (commandParam !== null && commandParam !== "") {
      try {
        const parsed = JSON.parse(commandParam) as unknown
        if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((part) => typeof part === "string")) throw new Error()
        command = parsed as Array<string>
      } catch {
        return reject(socket, 400, "invalid_command", 'command must be a JSON array of strings, e.g. ["journalctl","-u","k3s.service","-n","200"]')
      }
    }
    const dimension = (name: string, fallback: number) => Math.min(1000, Math.max(1, Number(url.searchParams.get(name) ?? fallback) || fallback))
    wss.handleUpgrade(request, socket, head, (operator) => {
      const bridge = new TerminalBridge(session, operator, `term_${randomUUID()}`, command, {
        who: { api_key_id: who.api_key_id, name: who.name },
        record: (type, data) =>
          void deps.fleet.recordEvent(who.account_id, type, data).catch((error) => deps.log.error("terminal.audit_failed", { error: String(error) })),
        onCreditExceeded: (sent, granted) => {
          deps.metrics.terminalCreditViolations.inc()
          deps.log.warn("terminal.credit_exceeded", { instance_id: instanceId, channel_id: bridge.channelId, sent_bytes: sent, credit_bytes: granted })
        }
      }, options.maxBufferedBytes)
      bridge.start(dimension("cols", 80), dimension("rows", 24), options.idleTimeoutMs)
      // A root shell must not outlive the key that opened it.
      const unwatch = deps.keys.watch(checked.key, () => bridge.end(TerminalCloseCode.KeyRevoked, "api_key_revoked", "the API key that opened this terminal was revoked"))
      operator.once("close", unwatch)
      deps.log.info("terminal.opened", { instance_id: instanceId, api_key_id: who.api_key_id, channel_id: bridge.channelId })
    })
  }

  return {
    handleUpgrade: (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      handleUpgrade(request, socket, head).catch((error) => {
        deps.log.error("terminal.upgrade_failed", { error: String(error) })
        socket.destroy()
      })
    },
    close: () => {
      for (const client of wss.clients) client.close(1001, "gateway shutting down")
      wss.close()
    }
  }
}
