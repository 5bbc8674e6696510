/**
 * `/v1/mcp` on the admin port: MCP's Streamable HTTP transport, one MCP session per client,
 * each bound to the API key that opened it (the key is checked at the admin port's door on
 * every request, and a session answers only to its own key — another key gets 404, as for a
 * session that does not exist). Sessions are bounded in number, end when idle, and end when
 * their key is revoked.
 */
import { randomUUID } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import type { ApiKeyIdentity, Fleet } from "@fleetplane/sdk"
import type { ApiKeyGuard } from "../admin/api-key-guard"
import { readJson, sendError, sendJson } from "../admin/http-io"
import type { Logger } from "../log"
import { inProcessBackend } from "./fleet-backend"
import { createFleetMcpServer } from "./mcp-server"

export const MCP_PATH = "/v1/mcp"

export interface McpEndpointOptions {
  readonly maxSessions?: number
  readonly idleTimeoutMs?: number
  readonly version: string
}

interface McpSession {
  readonly transport: StreamableHTTPServerTransport
  readonly apiKeyId: string
  lastSeen: number
  readonly unwatch: () => void
}

export const createMcpEndpoint = (deps: { readonly fleet: Fleet; readonly keys: ApiKeyGuard; readonly log: Logger }, options: McpEndpointOptions) => {
  const maxSessions = options.maxSessions ?? 256
  const idleTimeoutMs = options.idleTimeoutMs ?? 30 * 60_000
  const sessions = new Map<string, McpSession>()

  const end = (id: string) => {
    const session = sessions.get(id)
    if (session === undefined) return
    sessions.delete(id)
    session.unwatch()
    void session.transport.close().catch(() => undefined)
  }

  const sweep = setInterval(() => {
    const now = Date.now()
    for (const [id, session] of sessions) if (now - session.lastSeen > idleTimeoutMs) end(id)
  }, Math.min(idleTimeoutMs, 60_000))
  sweep.unref()

  /** A new MCP session: its own server, acting as the key that opened it. */
  const open = async (identity: ApiKeyIdentity, key: string) => {
    const server = createFleetMcpServer(inProcessBackend(deps.fleet, identity), { version: options.version })
    let sessionId: string | undefined
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessionId = id
        sessions.set(id, { transport, apiKeyId: identity.api_key_id, lastSeen: Date.now(), unwatch: deps.keys.watch(key, () => end(id)) })
        deps.log.info("mcp.session_opened", { session_id: id, api_key_id: identity.api_key_id })
      }
    })
    transport.onclose = () => {
      if (sessionId !== undefined && sessions.has(sessionId)) {
        sessions.get(sessionId)!.unwatch()
        sessions.delete(sessionId)
      }
    }
    await server.connect(transport)
    return transport
  }

  const handle = async (request: IncomingMessage, response: ServerResponse, identity: ApiKeyIdentity, key: string) => {
    let body: unknown
    if (request.method === "POST") {
      try {
        body = await readJson(request)
      } catch (error) {
        const e = error as Error & { code: string }
        return sendError(response, e.code === "body_too_large" ? 413 : 400, e.code, e.message)
      }
    }
    const header = request.headers["mcp-session-id"]
    const sessionId = Array.isArray(header) ? header[0] : header
    if (sessionId !== undefined) {
      const session = sessions.get(sessionId)
      // A session answers only to the key that opened it.
      if (session === undefined || session.apiKeyId !== identity.api_key_id) {
        return sendJson(response, 404, { jsonrpc: "2.0", error: { code: -32001, message: "no such MCP session (it ended, or belongs to another key); initialize a new one" }, id: null })
      }
      session.lastSeen = Date.now()
      await session.transport.handleRequest(request, response, body)
      if (request.method === "DELETE") end(sessionId)
      return
    }
    if (request.method !== "POST") {
      return sendJson(response, 400, { jsonrpc: "2.0", error: { code: -32000, message: "send initialize (POST) first; other requests need the Mcp-Session-Id it returns" }, id: null })
    }
    if (sessions.size >= maxSessions) {
      return sendError(response, 503, "too_many_mcp_sessions", `this gateway already serves ${maxSessions} MCP sessions; close one (DELETE with its Mcp-Session-Id) or retry later`)
    }
    const transport = await open(identity, key)
    await transport.handleRequest(request, response, body)
  }

  return {
    handle,
    get sessionCount() {
      return sessions.size
    },
    close: () => {
      clearInterval(sweep)
      for (const id of [...sessions.keys()]) end(id)
    }
  }
}
