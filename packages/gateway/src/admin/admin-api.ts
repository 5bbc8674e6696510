/**
 * The admin API as one `HttpApi` definition: every endpoint with its input, output and error
 * schemas. The gateway serves it (admin-http.ts), publishes it as OpenAPI 3.1
 * (`/v1/openapi.json`) with a docs page (`/v1/docs`), and the CLI calls it through the client
 * derived from it (admin-client.ts). Nothing here is server code, so clients import it freely.
 *
 *   GET  /healthz, /metrics            liveness and Prometheus text (no key)
 *   GET  /v1/actions                   the catalog: every action's JSON Schemas, and the caller
 *   POST /v1/actions/{name}            one endpoint per action, the action's schemas as its own
 *   GET  /v1/events                    the account's events as Server-Sent Events (resumable)
 *   GET  /v1/approvals                 approvals; POST .../{id}/approve, .../{id}/reject
 */
import { Context, Schema, SchemaTransformation } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, HttpApiSecurity, OpenApi } from "effect/http-api"
import { actionCatalog, ApiKeyRole, FleetEvent, type ActionDefinition, type ApiKeyIdentity } from "@fleetplane/sdk"
import { ActionErrors, Internal, InvalidInput, KeyErrors } from "./api-errors"

export const OPENAPI_PATH = "/v1/openapi.json"
export const DOCS_PATH = "/v1/docs"

/**
 * The caller behind the request's API key (the key itself, to watch it for revocation), and
 * the console session it came through, if any (console-sessions.ts).
 */
export class ApiKeyCaller extends Context.Service<ApiKeyCaller, { readonly identity: ApiKeyIdentity; readonly key: string; readonly sessionId?: string }>()(
  "@fleetplane/gateway/admin/ApiKeyCaller"
) {}

/**
 * `Authorization: Bearer fpk_…`, checked (throttled per address) before every /v1 endpoint; or
 * the web console's session cookie, whose changes also carry its CSRF token (`X-CSRF-Token`).
 */
export class ApiKeyAuth extends HttpApiMiddleware.Service<ApiKeyAuth, { provides: ApiKeyCaller }>()("@fleetplane/gateway/admin/ApiKeyAuth", {
  security: { apiKey: HttpApiSecurity.bearer.pipe(HttpApiSecurity.annotate(OpenApi.Description, "An account API key, `fpk_…` (fleetplane apikey create).")) },
  error: KeyErrors
}) {}

/** Query, header and path values the schemas refuse: answered as `invalid_input`, like an action's input. */
export class RequestErrors extends HttpApiMiddleware.Service<RequestErrors>()("@fleetplane/gateway/admin/RequestErrors", { error: InvalidInput }) {}

const System = HttpApiGroup.make("system", { topLevel: true })
  .add(
    HttpApiEndpoint.get("healthz", "/healthz", {
      success: Schema.Struct({ status: Schema.Literal("ok"), sessions: Schema.Int, uptime_s: Schema.Int, leader: Schema.Boolean })
    }).annotate(OpenApi.Description, "The gateway is up: its sessions, uptime and whether it leads the sensor."),
    HttpApiEndpoint.get("metrics", "/metrics", {
      success: Schema.String.pipe(HttpApiSchema.asText({ contentType: "text/plain" }))
    }).annotate(OpenApi.Description, "Prometheus metrics (text exposition format).")
  )
  .annotate(OpenApi.Title, "Gateway")

const ActionDescription = Schema.Struct({
  name: Schema.String,
  description: Schema.String,
  destructive: Schema.Boolean,
  access: ApiKeyRole,
  input_schema: Schema.Unknown,
  output_schema: Schema.Unknown
})

const SessionInfo = Schema.Struct({
  caller: Schema.Struct({ api_key_id: Schema.String, name: Schema.String, role: ApiKeyRole }),
  csrf_token: Schema.String.annotate({ description: "send it as X-CSRF-Token with every change made with the session cookie" })
})

/** The web console's sign-in: a key exchanged for an HttpOnly, SameSite=Strict session cookie. */
const Session = HttpApiGroup.make("session")
  .add(
    HttpApiEndpoint.post("open", "/v1/session", {
      payload: Schema.Struct({ api_key: Schema.String }),
      success: SessionInfo,
      error: KeyErrors
    }).annotate(OpenApi.Description, "Sign in: the key is checked once and exchanged for a session cookie (fp_session) and a CSRF token."),
    HttpApiEndpoint.get("current", "/v1/session", { success: SessionInfo, error: KeyErrors })
      .middleware(ApiKeyAuth)
      .annotate(OpenApi.Description, "Who the session (or key) is, and the session's CSRF token."),
    HttpApiEndpoint.delete("close", "/v1/session", { success: HttpApiSchema.NoContent, error: KeyErrors })
      .middleware(ApiKeyAuth)
      .annotate(OpenApi.Description, "Sign out: the session ends and its cookie is cleared.")
  )
  .annotate(OpenApi.Title, "Console session")

const Catalog = HttpApiGroup.make("catalog")
  .add(
    HttpApiEndpoint.get("list", "/v1/actions", {
      success: Schema.Struct({
        actions: Schema.Array(ActionDescription),
        caller: Schema.Struct({ api_key_id: Schema.String, name: Schema.String, role: ApiKeyRole })
      }),
      error: Internal
    }).annotate(OpenApi.Description, "Every action with its input and output JSON Schemas, and who the key is (so a client shows only what the key may run).")
  )
  .middleware(ApiKeyAuth)
  .annotate(OpenApi.Title, "Catalog")

const CONFIRMATION_TOKEN = Schema.optionalKey(
  Schema.String.annotate({ description: "the one-time token from a confirmation_required answer (destructive actions)" })
)

/** An action's input or output on the wire: JSON objects (their schemas are the action's own). */
type ActionJson = Schema.Codec<{ readonly [key: string]: unknown }, { readonly [key: string]: unknown }>

/** An action's endpoint: its input (plus `confirmation_token` when destructive) in, its output out. */
const actionEndpoint = (action: ActionDefinition) => {
  const fields = (action.input as unknown as Schema.Struct<Schema.Struct.Fields>).fields
  return HttpApiEndpoint.post(action.name, `/v1/actions/${action.name}`, {
    payload: Schema.Struct(action.destructive ? { ...fields, confirmation_token: CONFIRMATION_TOKEN } : fields) as unknown as ActionJson,
    success: action.output as unknown as ActionJson,
    error: ActionErrors
  }).annotateMerge(
    OpenApi.annotations({
      summary: action.name,
      description: `${action.description}${action.destructive ? " Destructive: answers 428 with a summary and a confirmation_token first." : ""}`
    })
  )
}

type ActionEndpoint = ReturnType<typeof actionEndpoint>

/** Built from the catalog, so its endpoints are typed alike; a client calls one by name. */
const Actions = (Object.values(actionCatalog) as ReadonlyArray<ActionDefinition>)
  .reduce((group, action) => group.add(actionEndpoint(action)), HttpApiGroup.make("actions") as unknown as HttpApiGroup.HttpApiGroup<"actions", ActionEndpoint>)
  .middleware(ApiKeyAuth)
  .annotate(OpenApi.Title, "Actions")

/** What the event stream carries: the account's events, keepalives, and why it ended (a revoked key). */
export const EventStreamItem = Schema.Union([
  Schema.TaggedStruct("Event", { event: FleetEvent }),
  Schema.TaggedStruct("Keepalive", {}),
  Schema.TaggedStruct("Ended", { code: Schema.String, message: Schema.String })
])
export type EventStreamItem = typeof EventStreamItem.Type

const SseFrame = Schema.Struct({ id: Schema.optionalKey(Schema.String), event: Schema.optionalKey(Schema.String), data: Schema.String })
const parseData = (data: string): unknown => {
  try {
    return JSON.parse(data)
  } catch {
    return undefined // the item's schema then refuses it, naming the frame
  }
}

/**
 * An item as an SSE frame: an event is `id: <seq>`, `event: <type>`, `data: <the event as JSON>`
 * (so `Last-Event-ID` resumes after it); a keepalive is `event: keepalive`; the end is `event: error`.
 */
const EventFrame = SseFrame.pipe(
  Schema.decodeTo(
    Schema.toEncoded(EventStreamItem) as unknown as Schema.Codec<typeof EventStreamItem.Encoded>,
    SchemaTransformation.transform({
      decode: (frame): typeof EventStreamItem.Encoded =>
        frame.event === "keepalive"
          ? { _tag: "Keepalive" }
          : frame.event === "error"
            ? { _tag: "Ended", ...(parseData(frame.data) as { code: string; message: string }) }
            : { _tag: "Event", event: parseData(frame.data) as typeof FleetEvent.Encoded },
      encode: (item) =>
        item._tag === "Event"
          ? { id: String(item.event.seq), event: item.event.type, data: JSON.stringify(item.event) }
          : item._tag === "Keepalive"
            ? { event: "keepalive", data: "{}" }
            : { event: "error", data: JSON.stringify({ code: item.code, message: item.message }) }
    })
  ),
  Schema.decodeTo(EventStreamItem)
)

const SequenceNumber = Schema.NumberFromString.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0)).annotate({
  description: "an event sequence number: the stream starts after it"
})

const Events = HttpApiGroup.make("events")
  .add(
    HttpApiEndpoint.get("stream", "/v1/events", {
      query: { since: Schema.optionalKey(SequenceNumber) },
      headers: { "last-event-id": Schema.optionalKey(SequenceNumber) },
      success: HttpApiSchema.StreamSse({ events: EventFrame }),
      error: [InvalidInput, Internal]
    }).annotate(
      OpenApi.Description,
      "The account's events after `since` (or `Last-Event-ID`), backlog first, then live. Keepalives every 15 s; a revoked key ends the stream with `event: error`."
    )
  )
  .middleware(ApiKeyAuth)
  .annotate(OpenApi.Title, "Events")

const approvalAction = (name: "system_list_approvals" | "system_approve" | "system_reject") => actionCatalog[name] as ActionDefinition
const ApprovalId = { id: Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_]+$/)) }

const Approvals = HttpApiGroup.make("approvals")
  .add(
    HttpApiEndpoint.get("list", "/v1/approvals", {
      query: { status: Schema.optionalKey(Schema.Literals(["pending", "approved", "rejected", "expired"])) },
      success: approvalAction("system_list_approvals").output as unknown as ActionJson,
      error: ActionErrors
    }).annotate(OpenApi.Description, "Approvals (default: the pending ones), as system_list_approvals."),
    HttpApiEndpoint.post("approve", "/v1/approvals/:id/approve", {
      params: ApprovalId,
      success: approvalAction("system_approve").output as unknown as ActionJson,
      error: ActionErrors
    }).annotate(OpenApi.Description, "Approve a pending decision (a failover): it runs now."),
    HttpApiEndpoint.post("reject", "/v1/approvals/:id/reject", {
      params: ApprovalId,
      payload: Schema.Struct({ reason: Schema.optionalKey(Schema.String) }),
      success: approvalAction("system_reject").output as unknown as ActionJson,
      error: ActionErrors
    }).annotate(OpenApi.Description, "Reject a pending decision, with an optional reason.")
  )
  .middleware(ApiKeyAuth)
  .annotate(OpenApi.Title, "Approvals")

export class AdminApi extends HttpApi.make("fleetplane-admin")
  .add(System)
  .add(Catalog)
  .add(Actions)
  .add(Events)
  .add(Approvals)
  .add(Session)
  .middleware(RequestErrors)
  .annotateMerge(
    OpenApi.annotations({
      title: "Fleetplane gateway admin API",
      description:
        "Run the action catalog, follow the account's events and decide approvals. Every /v1 endpoint takes an account API key (`Authorization: Bearer fpk_…`) and is scoped to its account; the key's role decides what it may run. Errors are `{ error: { code, message, details, category } }`."
    })
  ) {}
