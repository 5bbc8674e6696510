/**
 * What the MCP server needs of a fleet, for one caller: the catalog, running an action, and
 * the account's events. Two ways to get it: in the gateway's process (`/v1/mcp`, the caller's
 * API key already checked) or over the admin API (`fleetplane mcp` on a desktop).
 */
import { FleetplaneError, type ActionDescription, type ApiKeyIdentity, type ApiKeyRole, type Fleet, type FleetEvent } from "@fleetplane/sdk"
import { adminApi } from "../cli/admin-client"

export interface McpCaller {
  readonly role: ApiKeyRole
  readonly name: string
}

export interface FleetBackend {
  readonly caller: () => Promise<McpCaller>
  readonly describeActions: () => Promise<ReadonlyArray<ActionDescription>>
  /** Runs an action; a refusal is thrown as a `FleetplaneError` (code, message, details, category). */
  readonly execute: (name: string, input: Record<string, unknown>) => Promise<unknown>
  /** Calls `listener` for each new event of the account; resolves to the unsubscribe. */
  readonly subscribeEvents: (listener: (event: FleetEvent) => void) => Promise<() => void>
}

/** In the gateway: the caller's key was checked at the door; its role decides in the SDK. */
export const inProcessBackend = (fleet: Fleet, identity: ApiKeyIdentity): FleetBackend => {
  const ops = fleet.forApiKey(identity)
  return {
    caller: async () => ({ role: identity.role, name: identity.name }),
    describeActions: async () => fleet.describeActions(),
    execute: (name, input) => ops.execute(name, input),
    subscribeEvents: (listener) => ops.events.subscribe(listener)
  }
}

/** Over the admin API (`fleetplane mcp`): the same answers, by HTTP. */
export const adminApiBackend = (baseUrl: string, apiKey: string | undefined): FleetBackend => {
  const api = adminApi(baseUrl, apiKey)
  let catalog: Promise<{ actions: ReadonlyArray<ActionDescription>; caller: McpCaller }> | undefined
  const loadCatalog = () =>
    (catalog ??= (async () => {
      const response = await api.request("GET", "/v1/actions")
      const body = (await response.json().catch(() => ({}))) as { actions?: ReadonlyArray<ActionDescription>; caller?: McpCaller; error?: { code: string; message: string; category?: string } }
      if (!response.ok || body.actions === undefined || body.caller === undefined) {
        catalog = undefined
        throw new FleetplaneError(body.error?.code ?? "http_error", body.error?.message ?? `the admin API answered HTTP ${response.status}`, {}, (body.error?.category as never) ?? "InternalError")
      }
      return { actions: body.actions, caller: body.caller }
    })())
  return {
    caller: async () => (await loadCatalog()).caller,
    describeActions: async () => (await loadCatalog()).actions,
    execute: async (name, input) => {
      const answer = await api.action(name, input)
      if (answer.ok) return answer.result
      throw new FleetplaneError(answer.error.code, answer.error.message, answer.error.details ?? {}, (answer.error.category as never) ?? "InternalError")
    },
    subscribeEvents: async (listener) => {
      // Only what happens from now on: the backlog is a resource read away.
      const since = await lastSeq(api)
      const controller = new AbortController()
      const response = await api.request("GET", `/v1/events?since=${since}`, undefined, controller.signal)
      if (!response.ok || response.body === null) throw new FleetplaneError("stream_failed", `the event stream answered HTTP ${response.status}`)
      void (async () => {
        const decoder = new TextDecoder()
        let buffer = ""
        try {
          for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
            buffer += decoder.decode(chunk, { stream: true })
            let end: number
            while ((end = buffer.indexOf("\n\n")) !== -1) {
              const lines = buffer.slice(0, end).split("\n")
              buffer = buffer.slice(end + 2)
              const data = lines.find((line) => line.startsWith("data: "))
              if (data !== undefined && !lines.includes("event: error")) listener(JSON.parse(data.slice(6)) as FleetEvent)
            }
          }
        } catch {
          // Aborted by the unsubscribe, or the gateway went away: the subscription ends.
        }
      })()
      return () => controller.abort()
    }
  }
}

const lastSeq = async (api: ReturnType<typeof adminApi>) => {
  let since = 0
  for (;;) {
    const page = await api.action("system_list_events", { since, limit: 1000 })
    if (!page.ok) return since
    const events = (page.result as { events: Array<FleetEvent> }).events
    if (events.length === 0) return since
    since = events.at(-1)!.seq
    if (events.length < 1000) return since
  }
}
