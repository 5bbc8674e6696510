/**
 * Serves an Effect HTTP router from `node:http`, request by request, without turning each
 * request and response into web `Request`/`Response` objects and streams (which cost more than
 * a small action: a tenth of a cluster list's CPU). `@effect/platform-node` does this, but needs
 * Node 22; this is the part of it the admin API needs:
 *
 * - the body is read up front and bounded (an oversized one gets 413 in the API's error shape
 *   before any handler runs; the rest is read and dropped, so the client reads the answer);
 * - the request reaches Effect as a web-shaped view of node's message (method, URL, headers,
 *   the buffered body), which is all `HttpServerRequest.fromWeb` reads;
 * - the response is written from Effect's own `HttpServerResponse`: bytes at once, streams
 *   chunk by chunk with backpressure (the event stream), and a client that leaves interrupts
 *   the request's fiber.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Cause, Context, Effect, Exit, Latch, Layer, Scope, Stream } from "effect"
import { Cookies, HttpEffect, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"

export interface NodeHttpAdapterOptions {
  /** Bodies larger than this are refused with 413 (`tooLarge` writes the answer). */
  readonly maxBodyBytes: number
  readonly tooLarge: (response: ServerResponse) => void
  /** Services per request (the peer's address, for instance). */
  readonly requestContext: (incoming: IncomingMessage) => Context.Context<never>
  readonly onError: (error: unknown) => void
}

/** What `HttpServerRequest.fromWeb` reads of a web Request: here, node's message and its read body. */
class BufferedRequest {
  readonly body = null
  constructor(
    readonly method: string,
    readonly url: string,
    readonly headers: Record<string, string | Array<string> | undefined>,
    readonly bytes: Buffer
  ) {}
  arrayBuffer(): Promise<ArrayBuffer> {
    return Promise.resolve(this.bytes.buffer.slice(this.bytes.byteOffset, this.bytes.byteOffset + this.bytes.byteLength) as ArrayBuffer)
  }
}

const EMPTY = Buffer.alloc(0)

/** The body the adapter read, without another trip through promises (`undefined`: not served here). */
export const bufferedBody = (request: HttpServerRequest.HttpServerRequest): Buffer | undefined =>
  request.source instanceof BufferedRequest ? request.source.bytes : undefined

/** Reads the whole body, or `undefined` when it passes `max` (the rest is drained). */
const readBody = (incoming: IncomingMessage, max: number): Promise<Buffer | undefined> => {
  const declared = Number(incoming.headers["content-length"] ?? 0)
  if (declared === 0 && incoming.headers["transfer-encoding"] === undefined) return Promise.resolve(EMPTY)
  return new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    incoming.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size <= max) chunks.push(chunk)
    })
    incoming.on("end", () => resolve(size > max ? undefined : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)))
    incoming.on("error", reject)
  })
}

/** Writes an Effect response to node's response; a stream is written as it comes, with backpressure. */
const writeResponse = (outgoing: ServerResponse, method: string, response: HttpServerResponse.HttpServerResponse): Effect.Effect<void> => {
  if (outgoing.destroyed || outgoing.writableEnded) return Effect.void
  const headers: Record<string, string | Array<string>> = { ...response.headers }
  if (!Cookies.isEmpty(response.cookies)) headers["set-cookie"] = Cookies.toSetCookieHeaders(response.cookies)
  const body = response.body
  if (body._tag !== "Empty") {
    if (body.contentType !== undefined && headers["content-type"] === undefined) headers["content-type"] = body.contentType
    if (body.contentLength !== undefined && headers["content-length"] === undefined) headers["content-length"] = String(body.contentLength)
  }
  outgoing.writeHead(response.status, headers)
  if (method === "HEAD" || HttpServerResponse.omitsBody(response)) {
    outgoing.end()
    return Effect.void
  }
  switch (body._tag) {
    case "Empty":
      outgoing.end()
      return Effect.void
    case "Uint8Array":
      outgoing.end(body.body)
      return Effect.void
    case "Raw":
      outgoing.end(typeof body.body === "string" || body.body instanceof Uint8Array ? body.body : undefined)
      return Effect.void
    case "FormData":
      outgoing.end()
      return Effect.void
    case "Stream": {
      outgoing.flushHeaders()
      const drained = Latch.makeUnsafe(true)
      outgoing.on("drain", () => drained.openUnsafe())
      return body.stream.pipe(
        Stream.runForEachArray((chunks) => {
          const ok = outgoing.write(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))
          if (ok) return Effect.void
          drained.closeUnsafe()
          return drained.await
        }),
        Effect.ignoreCause,
        Effect.ensuring(Effect.sync(() => outgoing.end()))
      )
    }
  }
}

/**
 * Builds `routes` once and answers each request on its own fiber; `dispose` interrupts what
 * runs (open event streams among it) and releases the routes' services.
 */
export const nodeHttpHandler = async (routes: Layer.Layer<never, never, HttpRouter.HttpRouter | HttpRouter.Request<"Requires", unknown>>, options: NodeHttpAdapterOptions) => {
  const scope = Scope.makeUnsafe()
  // The routes' per-request requirements are met per request (requestContext), not here.
  const context = await Effect.runPromise(Layer.buildWithScope(Layer.provideMerge(routes, HttpRouter.layer), scope) as Effect.Effect<Context.Context<HttpRouter.HttpRouter>>)
  const app = Context.get(context, HttpRouter.HttpRouter).asHttpEffect()
  const responses = new WeakMap<HttpServerRequest.HttpServerRequest, ServerResponse>()
  const handled = HttpEffect.toHandled(app, (request, response) => writeResponse(responses.get(request)!, request.method, response))
  const running = new Set<{ readonly interruptUnsafe: () => void }>()

  const handle = async (incoming: IncomingMessage, outgoing: ServerResponse) => {
    const bytes = await readBody(incoming, options.maxBodyBytes)
    if (bytes === undefined) return options.tooLarge(outgoing)
    const request = HttpServerRequest.fromWeb(new BufferedRequest(incoming.method ?? "GET", `http://admin${incoming.url ?? "/"}`, incoming.headers, bytes) as unknown as Request)
    responses.set(request, outgoing)
    const fiber = Effect.runForkWith(Context.add(Context.merge(context, options.requestContext(incoming)), HttpServerRequest.HttpServerRequest, request))(
      handled as Effect.Effect<void>
    )
    if (fiber.pollUnsafe() !== undefined) return
    const entry = { interruptUnsafe: () => fiber.interruptUnsafe() }
    running.add(entry)
    outgoing.on("close", () => {
      if (!outgoing.writableEnded) fiber.interruptUnsafe()
    })
    fiber.addObserver((exit) => {
      running.delete(entry)
      if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) options.onError(Cause.squash(exit.cause))
    })
  }

  return {
    handle: (incoming: IncomingMessage, outgoing: ServerResponse) => handle(incoming, outgoing),
    dispose: async () => {
      for (const fiber of running) fiber.interruptUnsafe()
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }
}
