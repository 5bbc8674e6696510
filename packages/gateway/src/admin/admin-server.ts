/**
 * The admin HTTP API, on its own port. Every request but /healthz and /metrics carries an
 * account's API key (`Authorization: Bearer fpk_…`) and is scoped to that account.
 *
 *   GET  /healthz                    liveness of the gateway
 *   GET  /metrics                    Prometheus text
 *   GET  /v1/actions                 every action: name, description, destructive, JSON Schema
 *   POST /v1/actions/{name}          run an action (JSON in and out; destructive ones answer 428
 *                                    confirmation_required with a token to repeat the call with)
 *   GET  /v1/events?since=N          the account's events as Server-Sent Events, then live
 *   GET  /v1/approvals               pending approvals
 *   POST /v1/approvals/{id}/approve  approve; POST /v1/approvals/{id}/reject { reason? }
 *   POST|GET|DELETE /v1/mcp          the MCP server (Streamable HTTP; see mcp/)
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { FleetplaneError, type ApiKeyIdentity, type Fleet, type FleetEvent } from "@fleetplane/sdk"
import type { ApiKeyGuard } from "./api-key-guard"
import { MAX_BODY_BYTES, readJson, sendError, sendJson } from "./http-io"
import { MCP_PATH } from "../mcp/mcp-endpoint"
import type { Logger } from "../log"
import type { Metrics } from "./metrics"

const SSE_KEEPALIVE_MS = 15_000

export interface AdminServerDeps {
  readonly fleet: Fleet
  readonly metrics: Metrics
  readonly log: Logger
  readonly health: () => Record<string, unknown>
  /** API keys: checked (throttled per address) and watched for revocation. */
  readonly keys: ApiKeyGuard
  /** `/v1/mcp`: the MCP server (Streamable HTTP), for requests whose key was checked. */
  readonly mcp?: { readonly handle: (request: IncomingMessage, response: ServerResponse, caller: ApiKeyIdentity, key: string) => Promise<void> }
}

export const createAdminHandler = (deps: AdminServerDeps) => {
  const { fleet, log } = deps
  const openStreams = new Set<ServerResponse>()

  const authenticate = async (request: IncomingMessage, response: ServerResponse) => {
    const checked = await deps.keys.check(request.headers.authorization, request.socket.remoteAddress ?? "unknown")
    if (checked.ok) return checked
    if (checked.retryAfterMs !== undefined) {
      sendJson(
        response,
        checked.status,
        { error: { code: checked.code, message: checked.message, details: { retry_after_ms: checked.retryAfterMs }, category: checked.category } },
        { "retry-after": String(Math.ceil(checked.retryAfterMs / 1000)) }
      )
    } else {
      sendError(response, checked.status, checked.code, checked.message, {}, checked.category)
    }
    return undefined
  }

  const runAction = async (response: ServerResponse, caller: ApiKeyIdentity, name: string, input: unknown) => {
    try {
      // The key's role limits what it may run: checked by the SDK, as for every front door.
      const result = await fleet.forApiKey(caller).execute(name, input)
      sendJson(response, 200, result)
    } catch (error) {
      const e = error instanceof FleetplaneError ? error : new FleetplaneError("internal_error", String(error))
      if (e.category === "InternalError") log.error("admin.action_failed", { action: name, error: e.message })
      sendError(response, e.httpStatus, e.code, e.message, e.details, e.category)
    }
  }

  const streamEvents = async (request: IncomingMessage, response: ServerResponse, caller: ApiKeyIdentity, key: string, since: number) => {
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" })
    openStreams.add(response)
    // A stream outlives the request that checked its key: revoking the key ends it.
    const unwatch = deps.keys.watch(key, () => {
      response.write(`event: error\ndata: ${JSON.stringify({ code: "api_key_revoked", message: "this API key was revoked; the stream has ended" })}\n\n`)
      response.end()
    })
    // Cleanup is registered first: a client that leaves during the backlog must not leak a subscription.
    let closed = false
    let unsubscribe: (() => void) | undefined
    const keepalive = setInterval(() => response.write(": keepalive\n\n"), SSE_KEEPALIVE_MS)
    keepalive.unref()
    request.on("close", () => {
      closed = true
      clearInterval(keepalive)
      unsubscribe?.()
      unwatch()
      openStreams.delete(response)
    })
    let last = since
    const write = (event: FleetEvent) => {
      if (event.seq <= last || closed) return
      last = event.seq
      response.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`)
    }
    // Subscribe first, then read the backlog, so nothing falls between the two.
    const buffered: Array<FleetEvent> = []
    let live = false
    const ops = fleet.forApiKey(caller)
    const stop = await ops.events.subscribe((event) => (live ? write(event) : buffered.push(event)))
    if (closed) return stop()
    unsubscribe = stop
    for (;;) {
      const page = await ops.events.list({ since: last, limit: 1000 })
      page.forEach(write)
      if (page.length < 1000 || closed) break
    }
    buffered.forEach(write)
    live = true
  }

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? "/", "http://admin")
    const path = url.pathname
    const method = request.method ?? "GET"

    if (method === "GET" && path === "/healthz") return sendJson(response, 200, { status: "ok", ...deps.health() })
    if (method === "GET" && path === "/metrics") {
      const text = await deps.metrics.render()
      response.writeHead(200, { "content-type": deps.metrics.contentType })
      return response.end(text)
    }
    if (!path.startsWith("/v1/")) return sendError(response, 404, "not_found", `no route ${method} ${path}; see GET /v1/actions`)

    const checked = await authenticate(request, response)
    if (checked === undefined) return
    const caller = checked.identity

    if (path === MCP_PATH && deps.mcp !== undefined) return deps.mcp.handle(request, response, caller, checked.key)

    if (method === "GET" && path === "/v1/actions") {
      // `caller`: who the key is and its role, so a client can show only what the key may run.
      return sendJson(response, 200, { actions: fleet.describeActions(), caller: { api_key_id: caller.api_key_id, name: caller.name, role: caller.role } })
    }
    const action = path.match(/^\/v1\/actions\/([a-z_]+)$/)
    if (method === "POST" && action !== null) {
      let input: unknown
      try {
        input = await readJson(request)
      } catch (error) {
        const e = error as Error & { code: string }
        if (e.code === "body_too_large") {
          response.shouldKeepAlive = false
          return sendJson(response, 413, { error: { code: e.code, message: e.message, details: { max_bytes: MAX_BODY_BYTES }, category: "InvalidInputError" } }, { connection: "close" })
        }
        return sendError(response, 400, e.code, e.message)
      }
      return runAction(response, caller, action[1]!, input)
    }
    if (method === "GET" && path === "/v1/events") {
      const since = Number(request.headers["last-event-id"] ?? url.searchParams.get("since") ?? 0)
      if (!Number.isInteger(since) || since < 0) return sendError(response, 400, "invalid_since", "since must be a non-negative integer event sequence number")
      return streamEvents(request, response, caller, checked.key, since)
    }
    if (method === "GET" && path === "/v1/approvals") {
      return runAction(response, caller, "system_list_approvals", { status: url.searchParams.get("status") ?? "pending" })
    }
    const decision = path.match(/^\/v1\/approvals\/([A-Za-z0-9_]+)\/(approve|reject)$/)
    if (method === "POST" && decision !== null) {
      const body = (await readJson(request).catch(() => ({}))) as { reason?: string }
      return decision[2] === "approve"
        ? runAction(response, caller, "system_approve", { approval_id: decision[1] })
        : runAction(response, caller, "system_reject", { approval_id: decision[1], ...(body.reason === undefined ? {} : { reason: body.reason }) })
    }
    return sendError(response, 404, "not_found", `no route ${method} ${path}; see GET /v1/actions`)
  }

  return {
    handle: (request: IncomingMessage, response: ServerResponse) => {
      handle(request, response).catch((error) => {
        log.error("admin.request_failed", { path: request.url, error: error instanceof Error ? error.message : String(error) })
        if (!response.headersSent) sendError(response, 500, "internal_error", "the gateway failed to answer; retry, and report it if it persists")
        else response.end()
      })
    },
    /** Ends every open event stream (graceful shutdown). */
    closeStreams: () => {
      for (const stream of openStreams) stream.end()
      openStreams.clear()
    }
  }
}
