/** JSON in and out on the admin port: bounded bodies, and errors in the one shape clients parse. */
import type { IncomingMessage, ServerResponse } from "node:http"
import { HttpServerResponse } from "effect/http"

export const MAX_BODY_BYTES = 1024 * 1024

export const sendJson = (response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const text = JSON.stringify(body)
  response.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(text)), ...headers })
  response.end(text)
}

/**
 * A JSON answer of the HttpApi, kept as text: node writes the headers and the text in one
 * write, where `HttpServerResponse.jsonUnsafe` first copies every answer into a new buffer
 * (a tenth of a cluster list's CPU went to encoding, allocating and writing it).
 */
export const jsonAnswer = (body: unknown, status = 200) => {
  const text = JSON.stringify(body)
  return HttpServerResponse.raw(text, { status, contentType: "application/json", contentLength: Buffer.byteLength(text) })
}

/** `category` is the SDK's error category (`NotFoundError`, ...), which clients map to exit codes. */
export const sendError = (
  response: ServerResponse,
  status: number,
  code: string,
  message: string,
  details: Record<string, unknown> = {},
  category: string = status === 401 ? "UnauthorizedError" : status === 404 ? "NotFoundError" : status >= 500 ? "InternalError" : "InvalidInputError"
) => sendJson(response, status, { error: { code, message, details, category } })

export const readJson = (request: IncomingMessage): Promise<unknown> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    let tooLarge = false
    request.on("data", (chunk: Buffer) => {
      if (tooLarge) return // the rest is read and dropped, so the client can read the 413
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        tooLarge = true
        chunks.length = 0
        reject(Object.assign(new Error("the request body is larger than 1 MiB; send less"), { code: "body_too_large" }))
        return
      }
      chunks.push(chunk)
    })
    request.on("end", () => {
      if (tooLarge) return
      if (chunks.length === 0) return resolve({})
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")))
      } catch {
        reject(Object.assign(new Error("the request body is not valid JSON"), { code: "invalid_json" }))
      }
    })
    request.on("error", reject)
  })
