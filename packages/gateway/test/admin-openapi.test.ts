import { afterEach, describe, expect, it } from "vitest"
import { Effect } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient } from "effect/http-api"
import { describeActions } from "@fleetplane/sdk"
import type { Gateway } from "../src/index"
import { AdminApi } from "../src/admin/admin-api"
import { quietGateway, setupAccount } from "./support/gateway-harness"

let gateway: Gateway | undefined
afterEach(async () => {
  await gateway?.close()
  gateway = undefined
})

/** The client derived from the API's definition, as a TypeScript host would make it. */
const derivedClient = (adminUrl: string, apiKey: string) =>
  HttpApiClient.make(AdminApi, { baseUrl: adminUrl, transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(apiKey)) }).pipe(Effect.provide(FetchHttpClient.layer))

/** Reads an SSE response until `enough` says so; returns the frames' ids and event names. */
const readFrames = async (response: Response, enough: (frames: ReadonlyArray<{ id?: string; event?: string }>) => boolean) => {
  const frames: Array<{ id?: string; event?: string }> = []
  const reader = response.body!.getReader()
  let text = ""
  while (!enough(frames)) {
    const { value, done } = await reader.read()
    if (done) break
    text += new TextDecoder().decode(value)
    let end: number
    while ((end = text.indexOf("\n\n")) !== -1) {
      const lines = text.slice(0, end).split("\n")
      text = text.slice(end + 2)
      const field = (name: string) => lines.find((line) => line.startsWith(`${name}: `))?.slice(name.length + 2)
      frames.push({ ...(field("id") === undefined ? {} : { id: field("id")! }), ...(field("event") === undefined ? {} : { event: field("event")! }) })
    }
  }
  await reader.cancel()
  return frames
}

describe("admin API: OpenAPI document, docs page, derived client", () => {
  it("publishes an OpenAPI 3.1 document in which every action is its own endpoint with its input and output schemas", async () => {
    gateway = await quietGateway()
    // The document describes the API, not an account: it needs no key.
    const response = await fetch(`${gateway.adminUrl}/v1/openapi.json`)
    expect(response.status).toBe(200)
    const spec = (await response.json()) as any
    expect(spec.openapi).toBe("3.1.0")
    expect(spec.components.securitySchemes.apiKey).toMatchObject({ type: "http", scheme: expect.stringMatching(/^bearer$/i) })
    for (const action of describeActions()) {
      const operation = spec.paths[`/v1/actions/${action.name}`]?.post
      expect(operation, action.name).toBeDefined()
      const input = operation.requestBody.content["application/json"].schema
      const expected = Object.keys((action.input_schema as any).schema.properties ?? {})
      expect(Object.keys(input.properties ?? {}).sort(), action.name).toEqual(expected.sort())
      expect(operation.responses["200"].content["application/json"].schema, action.name).toBeDefined()
      // Typed errors, each at the status the SDK's mapping gives its category.
      for (const status of ["400", "401", "403", "404", "409", "428", "503"]) expect(operation.responses[status], `${action.name} ${status}`).toBeDefined()
      expect(operation.security).toEqual([{ apiKey: [] }])
    }
    const events = spec.paths["/v1/events"].get
    expect(Object.keys(events.responses["200"].content)).toEqual(["text/event-stream"])
    expect(events.parameters.map((p: { name: string }) => p.name).sort()).toEqual(["last-event-id", "since"])
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(["/healthz", "/metrics", "/v1/actions", "/v1/approvals", "/v1/approvals/{id}/approve", "/v1/approvals/{id}/reject"]))
  })

  it("serves a docs page from the gateway itself: no CDN, no external fonts (an edge site may be offline)", async () => {
    gateway = await quietGateway()
    const response = await fetch(`${gateway.adminUrl}/v1/docs`)
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toContain("text/html")
    const html = await response.text()
    expect(html).toContain("Fleetplane gateway admin API")
    expect(html).toContain("createApiReference")
    // Nothing is fetched from elsewhere: no script, stylesheet or font by URL, and Scalar's default fonts are off.
    expect(html).not.toMatch(/<script[^>]+src=/i)
    expect(html).not.toMatch(/<link[^>]+href=["']?https?:/i)
    expect(html).toContain(`"withDefaultFonts":false`)
  })

  it("a client derived from the definition gets typed results and the SDK's typed errors", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const node = await account.provision("w1", account.workerTemplateId)
    const outcome = await Effect.runPromise(
      Effect.gen(function* () {
        const client = yield* derivedClient(gateway!.adminUrl, account.apiKey)
        // The action endpoints are built from the catalog, so each is reached by its name.
        const clusters = yield* client.actions.kubernetes_list_clusters!({ payload: {} })
        const missing = yield* Effect.flip(client.actions.kubernetes_get_cluster!({ payload: { id: "clu_nope" } }))
        const confirm = yield* Effect.flip(client.actions.system_terminate_instance!({ payload: { instance_id: node.instanceId } }))
        const approvals = yield* client.approvals.list({ query: {} })
        return { clusters, missing, confirm, approvals }
      }) as Effect.Effect<{ clusters: unknown; missing: unknown; confirm: unknown; approvals: unknown }>
    )
    expect(outcome.clusters).toEqual({ clusters: [] })
    expect(outcome.missing).toMatchObject({ _tag: "NotFoundError", code: "cluster_not_found" })
    expect(outcome.confirm).toMatchObject({ _tag: "ConfirmationRequiredError", code: "confirmation_required" })
    expect((outcome.confirm as { details: { confirmation_token?: string } }).details.confirmation_token).toMatch(/^fpc_/)
    expect(outcome.approvals).toEqual({ approvals: [] })
  })

  it("answers what it does not route with 404 in the one error shape", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const route = await fetch(`${gateway.adminUrl}/v1/nothing-here`)
    expect(route.status).toBe(404)
    expect(((await route.json()) as any).error).toMatchObject({ code: "not_found", category: "NotFoundError" })
    const action = await fetch(`${gateway.adminUrl}/v1/actions/launch_missiles`, { method: "POST", headers: { authorization: `Bearer ${account.apiKey}` }, body: "{}" })
    expect(action.status).toBe(404)
    expect(((await action.json()) as any).error).toMatchObject({ code: "unknown_action", category: "NotFoundError" })
  })

  it("the event stream resumes after Last-Event-ID, and a gateway that stops ends it", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const { events } = (await account.admin.action("system_list_events", { limit: 1000 })).body as { events: Array<{ seq: number }> }
    const resumeAfter = events.at(-3)!.seq
    const resumed = await fetch(`${gateway.adminUrl}/v1/events`, { headers: { authorization: `Bearer ${account.apiKey}`, "last-event-id": String(resumeAfter) } })
    const frames = await readFrames(resumed, (seen) => seen.length >= 2)
    expect(frames.map((frame) => Number(frame.id))).toEqual([resumeAfter + 1, resumeAfter + 2])

    const bad = await fetch(`${gateway.adminUrl}/v1/events?since=-1`, { headers: { authorization: `Bearer ${account.apiKey}` } })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as any).error.category).toBe("InvalidInputError")

    const open = await fetch(`${gateway.adminUrl}/v1/events?since=${events.at(-1)!.seq}`, { headers: { authorization: `Bearer ${account.apiKey}` } })
    const ended = readFrames(open, () => false)
    await gateway.close()
    gateway = undefined
    expect(await ended).toEqual([])
  })
})
