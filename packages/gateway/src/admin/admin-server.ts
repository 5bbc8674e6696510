/**
 * The admin HTTP server, on its own port: the admin API (admin-api.ts, served by
 * admin-handlers.ts on Effect's HTTP router), its OpenAPI document (`/v1/openapi.json`) and
 * docs page (`/v1/docs`, Scalar bundled in the gateway: no CDN, no external fonts), and the MCP
 * server (`/v1/mcp`, Streamable HTTP on node's own request objects). node-http-adapter.ts
 * serves the router from node:http. Every /v1 request but the
 * document and the docs carries an account's API key (`Authorization: Bearer fpk_…`) and is
 * scoped to that account.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Context, Deferred, Effect, Layer } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { HttpApiBuilder, HttpApiScalar } from "effect/http-api"
import type { ApiKeyIdentity, Fleet } from "@fleetplane/sdk"
import { AdminApi, DOCS_PATH, OPENAPI_PATH } from "./admin-api"
import { adminHandlersLayer, apiKeyAuthLayer, PeerAddress, requestErrorsLayer } from "./admin-handlers"
import type { ApiKeyGuard } from "./api-key-guard"
import { MAX_BODY_BYTES, sendError, sendJson } from "./http-io"
import { nodeHttpHandler } from "./node-http-adapter"
import type { ConsoleSessions } from "./console-sessions"
import { consoleRoutes } from "./console-assets"
import { MCP_PATH } from "../mcp/mcp-endpoint"
import { failureMessage, type Logger } from "../log"
import type { Metrics } from "./metrics"

export interface AdminServerDeps {
  readonly fleet: Fleet
  readonly metrics: Metrics
  readonly log: Logger
  readonly health: () => { readonly sessions: number; readonly uptime_s: number; readonly leader: boolean }
  /** API keys: checked (throttled per address) and watched for revocation. */
  readonly keys: ApiKeyGuard
  /** `/v1/mcp`: the MCP server (Streamable HTTP), for requests whose key was checked. */
  /** Web console sessions (shared with the terminal endpoint). */
  readonly consoleSessions: ConsoleSessions
  /** The admin API is served over https (console session cookies are then `Secure`). */
  readonly secureCookies?: boolean
  readonly mcp?: { readonly handle: (request: IncomingMessage, response: ServerResponse, caller: ApiKeyIdentity, key: string) => Promise<void> }
}

/** Anything the API does not route: the one error shape, naming where to look. */
const notFound = HttpRouter.add("*", "/*", (request) =>
  Effect.succeed(
    HttpServerResponse.jsonUnsafe(
      {
        error: request.url.startsWith("/v1/actions/")
          ? { code: "unknown_action", message: `there is no action named "${request.url.slice(12, 92)}"; GET /v1/actions lists them`, details: {}, category: "NotFoundError" }
          : { code: "not_found", message: `no route ${request.method} ${request.url.slice(0, 200)}; see ${DOCS_PATH} or GET /v1/actions`, details: {}, category: "NotFoundError" }
      },
      { status: 404 }
    )
  )
)

export const createAdminHandler = async (deps: AdminServerDeps) => {
  const closing = Deferred.makeUnsafe<void>()
  const handlerDeps = {
    metrics: deps.metrics,
    log: deps.log,
    health: deps.health,
    keys: deps.keys,
    consoleSessions: deps.consoleSessions,
    secureCookies: deps.secureCookies ?? false,
    closing
  }
  const routes = Layer.mergeAll(
    HttpApiBuilder.layer(AdminApi, { openapiPath: OPENAPI_PATH }),
    // The bundled Scalar script (no CDN) without its default web fonts: an edge site may be offline.
    HttpApiScalar.layer(AdminApi, { path: DOCS_PATH, scalar: { withDefaultFonts: false, hideModels: true } }),
    ...consoleRoutes(),
    notFound
  ).pipe(
    Layer.provide(adminHandlersLayer(handlerDeps)),
    Layer.provide(requestErrorsLayer),
    Layer.provide(apiKeyAuthLayer(handlerDeps)),
    Layer.provide(Layer.succeedContext(await deps.fleet.services())),
    Layer.provide(HttpServer.layerServices)
  )
  const api = await nodeHttpHandler(routes, {
    maxBodyBytes: MAX_BODY_BYTES,
    tooLarge: (response) => {
      response.shouldKeepAlive = false
      sendJson(
        response,
        413,
        { error: { code: "body_too_large", message: "the request body is larger than 1 MiB; send less", details: { max_bytes: MAX_BODY_BYTES }, category: "InvalidInputError" } },
        { connection: "close" }
      )
    },
    requestContext: (incoming) => Context.make(PeerAddress, incoming.socket.remoteAddress ?? "unknown") as Context.Context<never>,
    onError: (error) => deps.log.error("admin.request_failed", { error: failureMessage(error) })
  })

  /** MCP's transport wants node's request objects: its key is checked here, as the API's middleware does. */
  const handleMcp = async (request: IncomingMessage, response: ServerResponse, mcp: NonNullable<AdminServerDeps["mcp"]>) => {
    const checked = await deps.keys.check(request.headers.authorization, request.socket.remoteAddress ?? "unknown")
    if (checked.ok) return mcp.handle(request, response, checked.identity, checked.key)
    if (checked.retryAfterMs !== undefined) {
      return sendJson(
        response,
        checked.status,
        { error: { code: checked.code, message: checked.message, details: { retry_after_ms: checked.retryAfterMs }, category: checked.category } },
        { "retry-after": String(Math.ceil(checked.retryAfterMs / 1000)) }
      )
    }
    sendError(response, checked.status, checked.code, checked.message, {}, checked.category)
  }

  return {
    handle: (request: IncomingMessage, response: ServerResponse) => {
      const path = (request.url ?? "/").split("?")[0]
      const done = path === MCP_PATH && deps.mcp !== undefined ? handleMcp(request, response, deps.mcp) : api.handle(request, response)
      done.catch((error: unknown) => {
        deps.log.error("admin.request_failed", { path, error: failureMessage(error) })
        if (!response.headersSent) sendError(response, 500, "internal_error", "the gateway failed to answer; retry, and report it if it persists")
        else response.end()
      })
    },
    /** Ends every open event stream (graceful shutdown), then the router's services. */
    closeStreams: () => {
      Deferred.doneUnsafe(closing, Effect.void)
      return api.dispose()
    }
  }
}
