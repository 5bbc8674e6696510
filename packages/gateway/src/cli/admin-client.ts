/** The CLI's client for the admin API: JSON in, JSON out, failures as `CliError` with an exit code. */
import { readFileSync } from "node:fs"
import { request as httpsRequest } from "node:https"
import { Readable } from "node:stream"
import { errorStatus } from "@fleetplane/sdk"

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
  return ((input: string | URL, init: RequestInit = {}) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(String(input))
      if (url.protocol !== "https:") return reject(new TypeError(`a CA file is for https:// admin URLs, not ${url.protocol}//`))
      const request = httpsRequest(url, { method: init.method ?? "GET", headers: init.headers as Record<string, string>, ca, signal: init.signal ?? undefined }, (response) => {
        const headers = new Headers()
        for (const [name, value] of Object.entries(response.headers)) if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value)
        const status = response.statusCode ?? 502
        const body = status === 204 || status === 304 ? null : (Readable.toWeb(response) as ReadableStream<Uint8Array>)
        resolve(new Response(body, { status, headers }))
      })
      request.on("error", reject)
      request.end(typeof init.body === "string" ? init.body : undefined)
    })) as typeof fetch
}

export const adminApi = (baseUrl: string, apiKey: string | undefined, fetchImpl: typeof fetch = fetch) => {
  const request = async (method: string, path: string, body?: unknown, signal?: AbortSignal) => {
    if (apiKey === undefined || apiKey === "") {
      throw new CliError("no API key: pass --api-key or set FLEETPLANE_API_KEY (create one with `fleetplane apikey create`)", 3, "missing_api_key")
    }
    let response: Response
    try {
      response = await fetchImpl(`${baseUrl.replace(/\/$/, "")}${path}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(signal === undefined ? {} : { signal })
      })
    } catch (error) {
      // fetch says only "fetch failed"; the reason (refused, a certificate not trusted, ...) is its cause.
      const cause = (error as { cause?: { message?: string } }).cause?.message
      const reason = `${(error as Error).message}${cause === undefined ? "" : ` (${cause})`}`
      const hint = /certificate/i.test(reason) ? "pass --ca-file with the CA that signed it (or set the context's ca-file)" : "check --url / FLEETPLANE_URL"
      throw new CliError(`cannot reach the gateway's admin API at ${baseUrl}: ${reason}; ${hint}`, 10, "unreachable")
    }
    return response
  }

  const action = async (name: string, input: Record<string, unknown>): Promise<{ ok: true; result: any } | { ok: false; status: number; error: ApiError }> => {
    const response = await request("POST", `/v1/actions/${name}`, input)
    const body = (await response.json().catch(() => ({}))) as { error?: ApiError }
    if (response.ok) return { ok: true, result: body }
    const error = body.error ?? { code: "http_error", message: `HTTP ${response.status}`, details: {} }
    return { ok: false, status: response.status, error }
  }

  return { request, action }
}
