/**
 * What the MCP server needs of a fleet, for one caller: the catalog, running an action, and
 * the account's events. Two ways to get it: in the gateway's process (`/v1/mcp`, the caller's
 * API key already checked) or over the admin API (`fleetplane mcp` on a desktop).
 */
import { FleetplaneError, type ActionDescription, type ApiKeyIdentity, type ApiKeyRole, type Fleet, type FleetEvent } from "@fleetplane/sdk"
import { adminApi, type Catalog } from "../cli/admin-client"

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
  let catalog: Promise<Catalog> | undefined
  const loadCatalog = () =>
    (catalog ??= (async () => {
      const answer = await api.catalog()
      if (answer.ok) return answer.result
      catalog = undefined
      throw new FleetplaneError(answer.error.code, answer.error.message, answer.error.details, (answer.error.category as never) ?? "InternalError")
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
      let opened!: () => void
      let refused!: (error: unknown) => void
      const open = new Promise<void>((resolve, reject) => ((opened = resolve), (refused = reject)))
      // Ends when aborted by the unsubscribe, or when the gateway goes away.
      api.events(since, { onOpen: opened, onEvent: listener, signal: controller.signal }).then(
        () => refused(new FleetplaneError("stream_failed", "the event stream ended before it opened")),
        (error: unknown) => refused(new FleetplaneError("stream_failed", `the event stream failed: ${error instanceof Error ? error.message : String(error)}`))
      )
      await open
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
