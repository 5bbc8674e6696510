/**
 * Fleetplane as an MCP server, for one caller (an API key). Everything is derived from the
 * action catalog, so a new action is a new tool with no MCP code:
 *
 * - **Tools**: one per action the key's role allows, named as in the runbook, with the
 *   action's input and output JSON Schemas and annotations (read-only, destructive,
 *   idempotent); results come back as structured content that matches the output schema.
 * - **Destructive tools stay confirmed**: the first call changes nothing and returns the
 *   summary and a `confirmation_token` as structured content; the same call with the token
 *   executes. A client that supports elicitation is asked directly instead.
 * - **Errors an AI can act on**: a refused call is a tool error carrying the typed code,
 *   message and details; bad arguments never reach further than the SDK's decoder.
 * - **Resources** (clusters, networks, the event log; subscribable) and **prompts** (the
 *   runbook's phases and troubleshooting table).
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import {
  CallToolRequestSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ErrorCode,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
  type Tool
} from "@modelcontextprotocol/sdk/types.js"
import { FleetplaneError, roleAllows, type ActionDescription, type FleetEvent } from "@fleetplane/sdk"
import type { FleetBackend } from "./fleet-backend"
import { CONCIERGE_INSTRUCTIONS, RUNBOOK_PROMPTS } from "./runbook-prompts"

export const MCP_SERVER_NAME = "fleetplane"

/** The action's input schema as one self-contained JSON Schema (an MCP tool's `inputSchema`). */
const toInputSchema = (description: ActionDescription): Tool["inputSchema"] => {
  const document = description.input_schema as { schema: Record<string, unknown>; definitions?: Record<string, unknown> }
  const definitions = document.definitions ?? {}
  return {
    ...document.schema,
    type: "object",
    // Unknown fields are refused by the SDK: say so in the schema, so clients do not send them.
    additionalProperties: false,
    ...(Object.keys(definitions).length === 0 ? {} : { $defs: definitions })
  }
}

/** What a destructive tool answers before it is confirmed (and when the user declines). */
const CONFIRMATION_REQUIRED = {
  type: "object",
  properties: {
    confirmation_required: { const: true },
    summary: { type: "string" },
    changes: { anyOf: [{ type: "object" }, { type: "null" }] },
    confirmation_token: { type: "string" },
    expires_at: { anyOf: [{ type: "string" }, { type: "null" }] }
  },
  required: ["confirmation_required", "summary", "changes", "confirmation_token", "expires_at"],
  additionalProperties: false
}
const CANCELLED = {
  type: "object",
  properties: { cancelled: { const: true }, summary: { type: "string" } },
  required: ["cancelled", "summary"],
  additionalProperties: false
}

/** A refused call (`isError: true`): the SDK's typed error. */
const TOOL_ERROR = {
  type: "object",
  properties: {
    error: {
      type: "object",
      properties: { code: { type: "string" }, message: { type: "string" }, details: { type: "object" }, category: { type: "string" } },
      required: ["code", "message", "details", "category"]
    }
  },
  required: ["error"],
  additionalProperties: false
}

/**
 * The action's output schema as an MCP tool's `outputSchema` (an object schema): what the
 * action returns, the typed error of a refused call (clients validate structured content
 * even on errors), and for a destructive tool the confirmation answer.
 */
const toOutputSchema = (description: ActionDescription): NonNullable<Tool["outputSchema"]> => {
  const document = description.output_schema as { schema: Record<string, unknown>; definitions?: Record<string, unknown> }
  const definitions = document.definitions ?? {}
  const results = (document.schema.anyOf as Array<Record<string, unknown>> | undefined) ?? [document.schema]
  const variants = [...results, TOOL_ERROR, ...(description.destructive ? [CONFIRMATION_REQUIRED, CANCELLED] : [])]
  return {
    anyOf: variants,
    type: "object",
    ...(Object.keys(definitions).length === 0 ? {} : { $defs: definitions })
  }
}

export const toTool = (description: ActionDescription): Tool => ({
  name: description.name,
  description: description.destructive
    ? `${description.description} Destructive: the first call changes nothing and returns a summary and a confirmation_token; call again with the same arguments and confirmation_token once the user agrees.`
    : description.description,
  inputSchema: toInputSchema(description),
  outputSchema: toOutputSchema(description),
  annotations: {
    readOnlyHint: description.access === "read",
    destructiveHint: description.destructive,
    idempotentHint: description.access === "read",
    openWorldHint: false
  }
})

const json = (value: unknown) => JSON.stringify(value, null, 2)

const toolError = (error: unknown): CallToolResult => {
  const e = error instanceof FleetplaneError ? error : new FleetplaneError("internal_error", error instanceof Error ? error.message : String(error))
  const payload = { error: { code: e.code, message: e.message, details: e.details, category: e.category } }
  return { isError: true, content: [{ type: "text", text: `${e.code}: ${e.message}` }], structuredContent: payload }
}

const succeeded = (result: unknown): CallToolResult => ({
  content: [{ type: "text", text: json(result) }],
  ...(typeof result === "object" && result !== null && !Array.isArray(result) ? { structuredContent: result as Record<string, unknown> } : {})
})

/** Resources: each a read of one action (so the caller's role and account apply unchanged). */
const RESOURCES = [
  { uri: "fleetplane://clusters", name: "clusters", title: "K3s clusters", description: "The account's clusters with status, API endpoint (VIP) and address family.", action: "kubernetes_list_clusters", input: {} },
  { uri: "fleetplane://networks", name: "networks", title: "SD-WAN networks", description: "The account's SD-WAN networks: interfaces, overlay and pod prefixes.", action: "system_sdwan_list_networks", input: {} },
  { uri: "fleetplane://approvals", name: "approvals", title: "Pending approvals", description: "Decisions waiting for a person (VIP failovers under require_approval).", action: "system_list_approvals", input: { status: "pending" } }
] as const
const EVENTS_URI = "fleetplane://events"
const CLUSTER_TEMPLATE = "fleetplane://clusters/{cluster}"
const RECENT_EVENTS = 200

/** Which resources an event changes (clients re-read those they subscribed to). */
const resourcesChangedBy = (event: FleetEvent): ReadonlyArray<string> => {
  const changed = [EVENTS_URI]
  if (event.type.startsWith("kubernetes.") || event.type.startsWith("sdwan.vip")) {
    changed.push("fleetplane://clusters")
    const clusterId = (event.data as { cluster_id?: unknown }).cluster_id
    if (typeof clusterId === "string") changed.push(`fleetplane://clusters/${clusterId}`)
  }
  if (event.type.startsWith("sdwan.network") || event.type.startsWith("sdwan.peer")) changed.push("fleetplane://networks")
  if (event.type.includes("approval") || event.type.startsWith("sdwan.vip_failover")) changed.push("fleetplane://approvals")
  return changed
}

export const createFleetMcpServer = (backend: FleetBackend, options: { readonly version: string }) => {
  const server = new Server(
    { name: MCP_SERVER_NAME, title: "Fleetplane", version: options.version },
    { capabilities: { tools: {}, resources: { subscribe: true }, prompts: {} }, instructions: CONCIERGE_INSTRUCTIONS }
  )

  const visibleTools = async () => {
    const caller = await backend.caller()
    return (await backend.describeActions()).filter((action) => roleAllows(caller.role, action.access))
  }

  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: (await visibleTools()).map(toTool) }))

  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    const name = request.params.name
    const args = (request.params.arguments ?? {}) as Record<string, unknown>
    const action = (await visibleTools()).find((a) => a.name === name)
    if (action === undefined) {
      return toolError(new FleetplaneError("unknown_tool", `there is no tool "${name.slice(0, 64)}" for this API key (its role, or the catalog); list the tools to see what it may call`, {}, "NotFoundError"))
    }
    try {
      return succeeded(await backend.execute(name, args))
    } catch (error) {
      if (!(error instanceof FleetplaneError) || error.code !== "confirmation_required") return toolError(error)
      return confirmDestructive(name, args, error)
    }
  })

  /** A destructive call without its token: ask the user (elicitation) or hand the token back. */
  const confirmDestructive = async (name: string, args: Record<string, unknown>, pending: FleetplaneError): Promise<CallToolResult> => {
    const summary = String(pending.details.summary ?? name)
    const token = String(pending.details.confirmation_token ?? "")
    if (server.getClientCapabilities()?.elicitation !== undefined) {
      const answer = await server.elicitInput({
        mode: "form",
        message: `${summary}\n\nThis is destructive. Go ahead?`,
        requestedSchema: { type: "object", properties: { confirm: { type: "boolean", title: "Confirm", description: summary } }, required: ["confirm"] }
      })
      if (answer.action !== "accept" || answer.content?.confirm !== true) {
        return { content: [{ type: "text", text: `Not done: the user did not confirm. Nothing was changed. (${summary})` }], structuredContent: { cancelled: true, summary } }
      }
      try {
        return succeeded(await backend.execute(name, { ...args, confirmation_token: token }))
      } catch (error) {
        return toolError(error)
      }
    }
    return {
      content: [
        {
          type: "text",
          text: `Not done yet — ${summary}. This is destructive: show this to the user, and once they agree call ${name} again with the same arguments and confirmation_token "${token}" (valid until ${String(pending.details.expires_at ?? "it expires")}). Nothing was changed.`
        }
      ],
      structuredContent: { confirmation_required: true, summary, changes: pending.details.changes ?? null, confirmation_token: token, expires_at: pending.details.expires_at ?? null }
    }
  }

  // --- resources -------------------------------------------------------------------------------
  server.setRequestHandler(ListResourcesRequestSchema, async () => ({
    resources: [
      ...RESOURCES.map(({ uri, name, title, description }) => ({ uri, name, title, description, mimeType: "application/json" })),
      { uri: EVENTS_URI, name: "events", title: "Event log", description: `The account's newest ${RECENT_EVENTS} events (subscribe for live updates).`, mimeType: "application/json" }
    ]
  }))
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
    resourceTemplates: [{ uriTemplate: CLUSTER_TEMPLATE, name: "cluster", title: "One cluster", description: "A cluster (by id or name) with its nodes.", mimeType: "application/json" }]
  }))
  server.setRequestHandler(ReadResourceRequestSchema, async (request) => {
    const uri = request.params.uri
    const read = async (): Promise<unknown> => {
      const fixed = RESOURCES.find((r) => r.uri === uri)
      if (fixed !== undefined) return backend.execute(fixed.action, { ...fixed.input })
      if (uri === EVENTS_URI) return { events: await recentEvents() }
      const cluster = uri.match(/^fleetplane:\/\/clusters\/([^/]{1,128})$/)
      if (cluster !== null) {
        const ref = decodeURIComponent(cluster[1]!)
        const [detail, nodes] = await Promise.all([backend.execute("kubernetes_get_cluster", { id: ref }), backend.execute("kubernetes_list_nodes", { cluster_id: ref })])
        return { ...(detail as Record<string, unknown>), nodes: (nodes as { nodes: unknown }).nodes }
      }
      throw new McpError(ErrorCode.InvalidParams, `no resource ${uri.slice(0, 128)}; list the resources to see them`)
    }
    try {
      return { contents: [{ uri, mimeType: "application/json", text: json(await read()) }] }
    } catch (error) {
      if (error instanceof McpError) throw error
      const e = error instanceof FleetplaneError ? error : new FleetplaneError("internal_error", String(error))
      throw new McpError(e.category === "NotFoundError" ? ErrorCode.InvalidParams : ErrorCode.InternalError, `${e.code}: ${e.message}`, { code: e.code, details: e.details })
    }
  })

  const recentEvents = async () => {
    let since = 0
    let recent: Array<FleetEvent> = []
    for (;;) {
      const page = ((await backend.execute("system_list_events", { since, limit: 1000 })) as { events: Array<FleetEvent> }).events
      recent = [...recent, ...page].slice(-RECENT_EVENTS)
      if (page.length < 1000) return recent
      since = page.at(-1)!.seq
    }
  }

  // Subscriptions: one event subscription for the session, opened at the first subscribe.
  const subscribed = new Set<string>()
  let unsubscribeEvents: Promise<() => void> | undefined
  server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    subscribed.add(request.params.uri)
    unsubscribeEvents ??= backend.subscribeEvents((event) => {
      for (const uri of resourcesChangedBy(event)) if (subscribed.has(uri)) void server.sendResourceUpdated({ uri }).catch(() => undefined)
    })
    await unsubscribeEvents
    return {}
  })
  server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    subscribed.delete(request.params.uri)
    return {}
  })

  // --- prompts ---------------------------------------------------------------------------------
  server.setRequestHandler(ListPromptsRequestSchema, async () => ({
    prompts: RUNBOOK_PROMPTS.map(({ name, title, description, arguments: args }) => ({ name, title, description, arguments: args.map((a) => ({ ...a })) }))
  }))
  server.setRequestHandler(GetPromptRequestSchema, async (request) => {
    const prompt = RUNBOOK_PROMPTS.find((p) => p.name === request.params.name)
    if (prompt === undefined) throw new McpError(ErrorCode.InvalidParams, `no prompt ${request.params.name.slice(0, 64)}; list the prompts to see them`)
    const args = request.params.arguments ?? {}
    const missing = prompt.arguments.filter((a) => a.required && (args[a.name] ?? "") === "").map((a) => a.name)
    if (missing.length > 0) throw new McpError(ErrorCode.InvalidParams, `prompt ${prompt.name} needs ${missing.join(", ")}`)
    return { description: prompt.description, messages: [{ role: "user", content: { type: "text", text: prompt.render(args) } }] }
  })

  const previousOnClose = server.onclose
  server.onclose = () => {
    previousOnClose?.()
    void unsubscribeEvents?.then((stop) => stop()).catch(() => undefined)
  }
  return server
}
