/**
 * The console's only way to the gateway: the admin API, same origin, with the session cookie
 * (HttpOnly: this script never sees it) and the session's CSRF token on every change.
 */
export interface Caller {
  readonly api_key_id: string
  readonly name: string
  readonly role: "read" | "operate" | "admin"
}

export interface FleetEvent {
  readonly seq: number
  readonly type: string
  readonly at: string
  readonly data: Record<string, any>
}

/** A refusal from the API: the typed error's code and message, shown as they are. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, any> = {}
  ) {
    super(message)
  }
}

let csrfToken = ""

const request = async (method: string, path: string, body?: unknown): Promise<any> => {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...(method === "GET" ? {} : { "x-csrf-token": csrfToken }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  if (response.status === 204) return undefined
  const answer = await response.json().catch(() => ({}))
  if (!response.ok) {
    const error = (answer as { error?: { code: string; message: string; details?: Record<string, any> } }).error
    throw new ApiError(response.status, error?.code ?? "http_error", error?.message ?? `the gateway answered HTTP ${response.status}`, error?.details ?? {})
  }
  return answer
}

/** The current session, or undefined when signed out. */
export const currentSession = async (): Promise<Caller | undefined> => {
  try {
    const session = await request("GET", "/v1/session")
    csrfToken = session.csrf_token
    return session.caller
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return undefined
    throw error
  }
}

export const signIn = async (apiKey: string): Promise<Caller> => {
  const session = await request("POST", "/v1/session", { api_key: apiKey })
  csrfToken = session.csrf_token
  return session.caller
}

export const signOut = () => request("DELETE", "/v1/session")

/** Runs an action by name; a destructive one answers ConfirmationRequired first (see confirm). */
export const run = (action: string, input: Record<string, unknown> = {}) => request("POST", `/v1/actions/${action}`, input)

/**
 * The terminal WebSocket of an instance. A browser cannot send a key header on a WebSocket: the
 * session cookie goes with it, and the CSRF token in the query proves the page is ours.
 */
export const terminalUrl = (instanceId: string, size: { cols: number; rows: number }, command?: ReadonlyArray<string>) => {
  const query = new URLSearchParams({ cols: String(size.cols), rows: String(size.rows), csrf: csrfToken })
  if (command !== undefined) query.set("command", JSON.stringify(command))
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/instances/${encodeURIComponent(instanceId)}/terminal?${query}`
}

export const approve = (id: string) => request("POST", `/v1/approvals/${encodeURIComponent(id)}/approve`)
export const reject = (id: string, reason?: string) => request("POST", `/v1/approvals/${encodeURIComponent(id)}/reject`, reason === undefined ? {} : { reason })

/**
 * The account's events, live, for every page: one stream (the cookie goes with it; EventSource
 * cannot listen to every event name, so the frames are read from fetch). After a drop it
 * reconnects and resumes after the last event it delivered.
 */
type Listener = (event: FleetEvent) => void
const listeners = new Set<Listener>()
let latestSeq = 0
let streaming = false

const follow = async () => {
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch(`/v1/events?since=${latestSeq}`, { credentials: "same-origin" })
      if (response.status === 401) return // signed out: the app shows the sign-in form
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ""
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        let end: number
        while ((end = buffer.indexOf("\n\n")) !== -1) {
          const lines = buffer.slice(0, end).split("\n")
          buffer = buffer.slice(end + 2)
          const data = lines.find((line) => line.startsWith("data: "))
          if (data === undefined || !lines.some((line) => line.startsWith("id: "))) continue // keepalives and the end notice
          const event = JSON.parse(data.slice(6)) as FleetEvent
          latestSeq = Math.max(latestSeq, event.seq)
          attempt = 0
          for (const listener of listeners) listener(event)
        }
      }
    } catch {
      // The gateway restarted or the network dropped: retry below.
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 500 * 2 ** attempt)))
  }
}

export const onEvents = (listener: Listener): (() => void) => {
  listeners.add(listener)
  if (!streaming) {
    streaming = true
    void follow()
  }
  return () => void listeners.delete(listener)
}

/** The live stream starts after this event (the page has just read the state up to it). */
export const startEventsAfter = (seq: number) => {
  if (!streaming) latestSeq = Math.max(latestSeq, seq)
}
