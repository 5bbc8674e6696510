/**
 * The admin API's handlers (admin-api.ts has the contract): each runs on the fleet's own
 * Effect services, so an action's typed error leaves as its tag's status and body, with no
 * Promise or string matching in between.
 */
import { Context, Deferred, Effect, Layer, Option, PubSub, Redacted, Stream } from "effect"
import { HttpEffect, HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApiBuilder, HttpApiMiddleware } from "effect/http-api"
import { describeSchemaError } from "@fleetplane/agent-protocol"
import { Actions, ForbiddenError, InvalidInputError, Signals, StoreError, UnauthorizedError, type ActionCaller, type ApiKeyIdentity, type FleetEvent } from "@fleetplane/sdk"
import { AdminApi, ApiKeyAuth, ApiKeyCaller, RequestErrors, type EventStreamItem } from "./admin-api"
import { InternalError, TooManyFailedKeysError } from "./api-errors"
import type { ApiKeyGuard } from "./api-key-guard"
import { CSRF_HEADER, SESSION_COOKIE, sameToken, type ConsoleSessions } from "./console-sessions"
import type { Metrics } from "./metrics"
import { jsonAnswer } from "./http-io"
import { bufferedBody } from "./node-http-adapter"
import type { Logger } from "../log"

const SSE_KEEPALIVE_MS = 15_000
const EVENT_PAGE = 1000

/** The request's peer address, for the key check's per-address throttle (the node adapter provides it). */
export class PeerAddress extends Context.Service<PeerAddress, string>()("@fleetplane/gateway/admin/PeerAddress") {}

export interface AdminHandlerDeps {
  readonly metrics: Metrics
  readonly log: Logger
  readonly health: () => { readonly sessions: number; readonly uptime_s: number; readonly leader: boolean }
  readonly keys: ApiKeyGuard
  /** Web console sessions (cookie sign-in). */
  readonly consoleSessions: ConsoleSessions
  /** The admin API is served over https: session cookies are `Secure`. */
  readonly secureCookies: boolean
  /** Ends every open event stream (graceful shutdown) when it completes. */
  readonly closing: Deferred.Deferred<void>
}

const callerOf = (identity: ApiKeyIdentity): ActionCaller => ({ role: identity.role, api_key_id: identity.api_key_id, name: identity.name })

/** The guard's verdict on a key, as the typed error a refusal is. */
const checkKey = (deps: AdminHandlerDeps, authorization: string | undefined) =>
  Effect.gen(function* () {
    const peer = Option.getOrElse(yield* Effect.serviceOption(PeerAddress), () => "unknown")
    const checked = yield* Effect.promise(() => deps.keys.check(authorization, peer))
    if (checked.ok) return { identity: checked.identity, key: checked.key }
    const fields = { code: checked.code, message: checked.message, details: {} as Record<string, unknown> }
    if (checked.retryAfterMs !== undefined) {
      const seconds = String(Math.ceil(checked.retryAfterMs / 1000))
      yield* HttpEffect.appendPreResponseHandler((_request, response) => Effect.succeed(HttpServerResponse.setHeader(response, "retry-after", seconds)))
      return yield* new TooManyFailedKeysError({ ...fields, details: { retry_after_ms: checked.retryAfterMs } })
    }
    if (checked.category === "StoreError") return yield* new StoreError(fields)
    if (checked.category === "UnauthorizedError") return yield* new UnauthorizedError(fields)
    return yield* new InternalError(fields)
  })

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"])

/**
 * The key check, in front of every /v1 endpoint: a bearer key, or else the console's session
 * cookie (its key checked again, so a revoked key ends the session; a change needs the
 * session's CSRF token).
 */
export const apiKeyAuthLayer = (deps: AdminHandlerDeps) =>
  Layer.succeed(ApiKeyAuth)({
    apiKey: (httpEffect, { credential }) =>
      Effect.gen(function* () {
        const token = Redacted.value(credential)
        const request = yield* HttpServerRequest.HttpServerRequest
        const session = token === "" ? deps.consoleSessions.find(request.cookies[SESSION_COOKIE]) : undefined
        if (session === undefined) {
          const caller = yield* checkKey(deps, token === "" ? undefined : `Bearer ${token}`)
          return yield* Effect.provideService(httpEffect, ApiKeyCaller, caller)
        }
        const caller = yield* checkKey(deps, `Bearer ${session.key}`).pipe(Effect.tapError(() => Effect.sync(() => deps.consoleSessions.close(session.id))))
        if (!SAFE_METHODS.has(request.method) && !sameToken(String(request.headers[CSRF_HEADER] ?? ""), session.csrfToken)) {
          return yield* new ForbiddenError({
            code: "csrf_token_invalid",
            message: `a change made with the console's session needs its CSRF token in ${CSRF_HEADER} (GET /v1/session returns it); reload the console`,
            details: {}
          })
        }
        return yield* Effect.provideService(httpEffect, ApiKeyCaller, { ...caller, sessionId: session.id })
      })
  })

/** A value a schema refused (a query, a header, a path segment), in the words action inputs use. */
export const requestErrorsLayer = HttpApiMiddleware.layerSchemaErrorTransform(RequestErrors, (error) =>
  Effect.fail(
    new InvalidInputError({
      code: "invalid_input",
      message: `invalid ${error.kind === "Params" ? "path" : error.kind.toLowerCase()}: ${describeSchemaError(error.cause)}`,
      details: { where: error.kind.toLowerCase() }
    })
  )
)

/** A failure that is not one of the API's typed errors: logged, and answered 500 with no detail. */
const internal = (deps: AdminHandlerDeps, where: string) =>
  Effect.catchDefect((defect: unknown) => {
    deps.log.error("admin.request_failed", { where, error: defect instanceof Error ? defect.message : String(defect) })
    return Effect.fail(new InternalError({ code: "internal_error", message: "the gateway failed to answer; retry, and report it if it persists", details: {} }))
  })

/** The JSON body (the adapter already read and bounded it); none is `{}`. */
const readJsonBody = (request: HttpServerRequest.HttpServerRequest) => {
  const parse = (text: string) => {
    if (text === "") return Effect.succeed({} as unknown)
    try {
      return Effect.succeed(JSON.parse(text) as unknown)
    } catch {
      return Effect.fail(new InvalidInputError({ code: "invalid_json", message: "the request body is not valid JSON", details: {} }))
    }
  }
  const bytes = bufferedBody(request)
  return bytes === undefined ? Effect.flatMap(Effect.orDie(request.text), parse) : parse(bytes.toString("utf8"))
}

export const adminHandlersLayer = (deps: AdminHandlerDeps) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const actions = yield* Actions
      const signals = yield* Signals
      const run = (name: string, input: unknown) =>
        Effect.flatMap(Effect.service(ApiKeyCaller), ({ identity }) => actions.execute(identity.account_id, name, input, callerOf(identity))).pipe(internal(deps, name))
      // An action's result is already its output schema's type (the compiler checks each action's
      // run against it) and plain JSON: written as is, not encoded again (a tenth of a list's CPU).
      const answer = (name: string, input: unknown) => Effect.map(run(name, input), (result) => jsonAnswer(result))

      const system = HttpApiBuilder.group(AdminApi, "system", (handlers) =>
        handlers.handleAll({
          healthz: () => Effect.sync(() => ({ status: "ok" as const, ...deps.health() })),
          metrics: () =>
            Effect.promise(() => deps.metrics.render()).pipe(Effect.map((text) => HttpServerResponse.text(text, { contentType: deps.metrics.contentType })))
        })
      )

      const catalog = HttpApiBuilder.group(AdminApi, "catalog", (handlers) =>
        handlers.handleAll({
          list: () =>
            Effect.map(Effect.service(ApiKeyCaller), ({ identity }) => ({
              actions: actions.describe(),
              // Who the key is and its role, so a client shows only what the key may run.
              caller: { api_key_id: identity.api_key_id, name: identity.name, role: identity.role }
            }))
        })
      )

      // Raw: the executor decodes the input itself, after the role check, strictly and with its
      // own error codes (a key that may not run an action learns nothing else about it).
      const actionGroup = HttpApiBuilder.group(AdminApi, "actions", (handlers) => {
        for (const name of Object.keys(AdminApi.groups.actions.endpoints)) {
          // The result is already the output schema's type (the compiler checks each action's run
          // against it) and plain JSON: written as is, not encoded again (a tenth of a list's CPU).
          handlers.handleRaw(name as never, ({ request }) =>
            readJsonBody(request).pipe(
              Effect.flatMap((input) => run(name, input)),
              Effect.map((result) => jsonAnswer(result))
            )
          )
        }
        return handlers as unknown as HttpApiBuilder.Handlers<never, {}>
      })

      const approvals = HttpApiBuilder.group(AdminApi, "approvals", (handlers) =>
        handlers.handleAll({
          list: ({ query }) => answer("system_list_approvals", { status: query.status ?? "pending" }),
          approve: ({ params }) => answer("system_approve", { approval_id: params.id }),
          reject: ({ params, payload }) => answer("system_reject", { approval_id: params.id, ...(payload.reason === undefined ? {} : { reason: payload.reason }) })
        })
      )

      const events = HttpApiBuilder.group(AdminApi, "events", (handlers) =>
        handlers.handleAll({
          stream: ({ query, headers }) =>
            Effect.map(Effect.service(ApiKeyCaller), ({ identity, key }) => eventStream(identity, key, headers["last-event-id"] ?? query.since ?? 0))
        })
      )

      /**
       * The account's events after `since`: subscribed first, then the stored backlog paged in,
       * then live, each event once (by seq). A revoked key ends it with an `Ended` item.
       */
      const eventStream = (identity: ApiKeyIdentity, key: string, since: number): Stream.Stream<EventStreamItem> =>
        Stream.unwrap(
          Effect.gen(function* () {
            const subscription = yield* PubSub.subscribe(signals)
            const revoked = yield* Deferred.make<void>()
            const unwatch = deps.keys.watch(key, () => Deferred.doneUnsafe(revoked, Effect.void))
            yield* Effect.addFinalizer(() => Effect.sync(unwatch))
            const page = (from: number) =>
              actions.execute(identity.account_id, "system_list_events", { since: from, limit: EVENT_PAGE }, callerOf(identity)).pipe(
                Effect.map(({ events }) => [events, events.length < EVENT_PAGE ? Option.none() : Option.some(events.at(-1)!.seq)] as const),
                Effect.orDie
              )
            const live = Stream.fromSubscription(subscription).pipe(
              Stream.flatMap((signal) => (signal._tag === "EventsAppended" && signal.accountId === identity.account_id ? Stream.fromIterable(signal.events) : Stream.empty))
            )
            let last = since
            const fresh = (event: FleetEvent) => {
              if (event.seq <= last) return false
              last = event.seq
              return true
            }
            const fleetEvents = Stream.concat(Stream.paginate(since, page), live).pipe(
              Stream.filter(fresh),
              Stream.map((event): EventStreamItem => ({ _tag: "Event", event }))
            )
            const keepalive = Stream.tick(SSE_KEEPALIVE_MS).pipe(
              Stream.drop(1),
              Stream.map((): EventStreamItem => ({ _tag: "Keepalive" }))
            )
            const ended: EventStreamItem = { _tag: "Ended", code: "api_key_revoked", message: "this API key was revoked; the stream has ended" }
            return Stream.merge(fleetEvents, keepalive, { haltStrategy: "left" }).pipe(
              Stream.interruptWhen(Deferred.await(revoked)),
              Stream.concat(Stream.suspend(() => (Deferred.isDoneUnsafe(revoked) ? Stream.make(ended) : Stream.empty))),
              Stream.interruptWhen(Deferred.await(deps.closing))
            )
          })
        )

      const sessionInfo = (identity: ApiKeyIdentity, csrfToken: string) => ({
        caller: { api_key_id: identity.api_key_id, name: identity.name, role: identity.role },
        csrf_token: csrfToken
      })
      const cookie = (value: string, maxAgeMs: number) =>
        HttpEffect.appendPreResponseHandler((_request, response) =>
          Effect.succeed(
            HttpServerResponse.setCookieUnsafe(response, SESSION_COOKIE, value, {
              httpOnly: true,
              sameSite: "strict",
              path: "/",
              secure: deps.secureCookies,
              maxAge: `${Math.floor(maxAgeMs / 1000)} seconds`
            })
          )
        )
      const session = HttpApiBuilder.group(AdminApi, "session", (handlers) =>
        handlers.handleAll({
          open: ({ payload }) =>
            Effect.gen(function* () {
              const caller = yield* checkKey(deps, `Bearer ${payload.api_key}`)
              const opened = deps.consoleSessions.open(caller.identity, caller.key)
              yield* cookie(opened.id, deps.consoleSessions.ttlMs)
              return sessionInfo(caller.identity, opened.csrfToken)
            }),
          current: () =>
            Effect.gen(function* () {
              const caller = yield* ApiKeyCaller
              const found = caller.sessionId === undefined ? undefined : deps.consoleSessions.find(caller.sessionId)
              return sessionInfo(caller.identity, found?.csrfToken ?? "")
            }),
          close: () =>
            Effect.gen(function* () {
              const caller = yield* ApiKeyCaller
              if (caller.sessionId !== undefined) deps.consoleSessions.close(caller.sessionId)
              yield* cookie("", 0)
            })
        })
      )

      return Layer.mergeAll(system, catalog, actionGroup, approvals, events, session)
    })
  )
