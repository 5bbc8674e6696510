/**
 * The CLI's client for the admin API: the client derived from the API's definition
 * (admin-api.ts), so requests are encoded and answers decoded by the same schemas the gateway
 * serves. Typed refusals come back as the wire's plain fields; an unreachable gateway, a
 * refused stream or a bad answer as `CliError` with an exit code.
 */
import { readFileSync } from "node:fs"
import { request as httpsRequest } from "node:https"
import { Readable } from "node:stream"
import { Cause, Effect, Exit, Layer, Schema, Stream } from "effect"
import { FetchHttpClient, HttpClient, HttpClientError, HttpClientRequest } from "effect/http"
import { HttpApiClient } from "effect/http-api"
import { describeSchemaError } from "@fleetplane/agent-protocol"
import { errorStatus, isActionName, type ActionDescription, type FleetEvent } from "@fleetplane/sdk"
import { AdminApi } from "../admin/admin-api"
import { errorFields, type AdminError } from "../admin/api-errors"

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly code: string,
    readonly details: Record<string, unknown> = {}
  ) {
    super(message)
  }
}

export interface ApiError {
  readonly code: string
  readonly message: string
  readonly details: Record<string, unknown>
  readonly category?: string
}

/** The one mapping from error category to exit code lives in the SDK; unknown categories exit 1. */
export const exitCodeFor = (category: string | undefined) =>
  category !== undefined && category in errorStatus ? errorStatus[category as keyof typeof errorStatus].exitCode : 1

/**
 * `fetch` for an https:// admin API whose certificate is signed by a private CA (an edge
 * gateway's own): Node's fetch takes no CA, so this speaks node:https with `ca` and answers a
 * standard Response (streaming body included, for the event stream).
 */
export const fetchTrusting = (caFile: string): typeof fetch => {
  let ca: Buffer
  try {
    ca = readFileSync(caFile)
  } catch (error) {
    throw new CliError(`cannot read the CA file ${caFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}; check --ca-file / FLEETPLANE_CA_FILE or the context's ca-file`, 2, "ca_file_unreadable")
  }
  return (async (input: string | URL | Request, init: RequestInit = {}) => {
    // The derived client hands fetch a URL and an init with Headers and a byte body; normalise both.
    const request = new Request(input, init)
    const body = request.body === null ? undefined : Buffer.from(await request.arrayBuffer())
    const url = new URL(request.url)
    if (url.protocol !== "https:") throw new TypeError(`a CA file is for https:// admin URLs, not ${url.protocol}//`)
    return new Promise<Response>((resolve, reject) => {
      const outgoing = httpsRequest(url, { method: request.method, headers: Object.fromEntries(request.headers), ca, signal: init.signal ?? undefined }, (response) => {
        const headers = new Headers()
        for (const [name, value] of Object.entries(response.headers)) if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value)
        const status = response.statusCode ?? 502
        const responseBody = status === 204 || status === 304 ? null : (Readable.toWeb(response) as ReadableStream<Uint8Array>)
        resolve(new Response(responseBody, { status, headers }))
      })
      outgoing.on("error", reject)
      outgoing.end(body)
    })
  }) as typeof fetch
}

export interface Catalog {
  readonly actions: ReadonlyArray<ActionDescription>
  readonly caller: { readonly api_key_id: string; readonly name: string; readonly role: ActionDescription["access"] }
}

const isAdminError = (error: unknown): error is AdminError =>
  typeof error === "object" && error !== null && "_tag" in error && "code" in error && "message" in error && "details" in error

export const adminApi = (baseUrl: string, apiKey: string | undefined, fetchImpl: typeof fetch = fetch) => {
  const needKey = () => {
    if (apiKey === undefined || apiKey === "") {
      throw new CliError("no API key: pass --api-key or set FLEETPLANE_API_KEY (create one with `fleetplane apikey create`)", 3, "missing_api_key")
    }
    return apiKey
  }
  const unreachable = (error: HttpClientError.HttpClientError) => {
    // fetch says only "fetch failed"; the reason (refused, a certificate not trusted, ...) is its cause.
    const cause = error.reason.cause as { message?: string; cause?: { message?: string } } | undefined
    const reason = cause?.message === undefined ? error.message : `${cause.message}${cause.cause?.message === undefined ? "" : ` (${cause.cause.message})`}`
    const hint = /certificate/i.test(reason) ? "pass --ca-file with the CA that signed it (or set the context's ca-file)" : "check --url / FLEETPLANE_URL"
    return new CliError(`cannot reach the gateway's admin API at ${baseUrl}: ${reason}; ${hint}`, 10, "unreachable")
  }
  const client = (key: string) =>
    HttpApiClient.make(AdminApi, {
      baseUrl: baseUrl.replace(/\/$/, ""),
      transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(key))
    }).pipe(Effect.provide(FetchHttpClient.layer.pipe(Layer.provide(Layer.succeed(FetchHttpClient.Fetch)(fetchImpl)))))

  /** Runs a call: typed refusals as `{ ok: false }`, the rest as `CliError`. */
  const call = async <A>(effect: Effect.Effect<A, unknown>, what: string, signal?: AbortSignal): Promise<{ ok: true; result: A } | { ok: false; status: number; error: ApiError }> => {
    const exit = await Effect.runPromiseExit(effect, signal === undefined ? undefined : { signal })
    if (Exit.isSuccess(exit)) return { ok: true, result: exit.value }
    const error = Cause.findErrorOption(exit.cause)
    if (error._tag === "Some") {
      const failure = error.value
      if (isAdminError(failure)) {
        const fields = errorFields(failure)
        return { ok: false, status: statusOf(fields.category, failure._tag), error: fields }
      }
      if (HttpClientError.isHttpClientError(failure)) {
        if (failure.reason._tag === "TransportError") throw unreachable(failure)
        throw new CliError(`the admin API at ${baseUrl} answered ${what} with something this CLI cannot read (${failure.message}); is it a Fleetplane gateway of the same version?`, 10, "bad_answer")
      }
      if (Schema.isSchemaError(failure)) {
        return { ok: false, status: 400, error: { code: "invalid_input", message: `invalid input for ${what}: ${describeSchemaError(failure)}`, details: { action: what }, category: "InvalidInputError" } }
      }
    }
    throw new CliError(`${what} failed: ${Cause.pretty(exit.cause).split("\n")[0]}`, 1, "internal_error")
  }

  /** Runs an action by name through its own endpoint. */
  const action = (name: string, input: Record<string, unknown>): Promise<{ ok: true; result: any } | { ok: false; status: number; error: ApiError }> => {
    const key = needKey()
    if (!isActionName(name)) {
      return Promise.resolve({ ok: false as const, status: 404, error: { code: "unknown_action", message: `there is no action named "${name.slice(0, 80)}"; fleetplane actions lists them`, details: {}, category: "NotFoundError" } })
    }
    return call(
      Effect.flatMap(client(key), (api) => (api.actions[name] as unknown as (request: { payload: unknown }) => Effect.Effect<unknown, unknown>)({ payload: input })),
      name
    )
  }

  /** The catalog, and who the key is. */
  const catalog = () => {
    const key = needKey()
    return call(Effect.flatMap(client(key), (api) => api.catalog.list()) as Effect.Effect<Catalog, unknown>, "GET /v1/actions")
  }

  /**
   * Follows the account's events after `since` until the stream ends (or `signal` aborts);
   * resolves when it ended, rejects with `CliError` when it was refused or never reached.
   */
  const events = async (since: number, options: { readonly onOpen?: () => void; readonly onEvent: (event: FleetEvent) => void; readonly signal?: AbortSignal }) => {
    const key = needKey()
    const answer = await call(
      Effect.flatMap(client(key), (api) => api.events.stream({ query: { since }, headers: {} })).pipe(
        Effect.tap(() => Effect.sync(() => options.onOpen?.())),
        Effect.flatMap((stream) =>
          Stream.runForEach(stream, (item) =>
            item._tag === "Event"
              ? Effect.sync(() => options.onEvent(item.event))
              : item._tag === "Ended"
                ? Effect.fail(new CliError(item.message, 3, item.code))
                : Effect.void
          )
        )
      ),
      "GET /v1/events",
      options.signal
    ).catch((error: unknown) => {
      if (options.signal?.aborted === true) return { ok: true as const, result: undefined }
      throw error
    })
    if (!answer.ok) throw new CliError(answer.error.message, exitCodeFor(answer.error.category), answer.error.code, answer.error.details)
  }

  return { action, catalog, events }
}

const statusOf = (category: string, tag: string) =>
  tag === "TooManyFailedKeysError" ? 429 : tag === "BodyTooLargeError" ? 413 : category in errorStatus ? errorStatus[category as keyof typeof errorStatus].http : 500
