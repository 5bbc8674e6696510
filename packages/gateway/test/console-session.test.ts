import { afterEach, describe, expect, it } from "vitest"
import WebSocket from "ws"
import type { Gateway } from "../src/index"
import { quietGateway, setupAccount } from "./support/gateway-harness"
import { CONSOLE_CSP, TERMINAL_CSP } from "../src/admin/console-assets"

let gateway: Gateway | undefined
afterEach(async () => {
  await gateway?.close()
  gateway = undefined
})

/** Signs in as the console does; the session cookie and its CSRF token. */
const openSession = async (adminUrl: string, apiKey: string) => {
  const response = await fetch(`${adminUrl}/v1/session`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ api_key: apiKey }) })
  expect(response.status).toBe(200)
  const setCookie = response.headers.get("set-cookie") ?? ""
  const body = (await response.json()) as { csrf_token: string; caller: { role: string } }
  return { setCookie, cookie: setCookie.split(";")[0]!, csrf: body.csrf_token, caller: body.caller }
}

/** The status a terminal upgrade is answered with (101 when it opened). */
const upgradeStatus = (url: string, headers: Record<string, string>) =>
  new Promise<{ status: number; code?: string }>((resolve, reject) => {
    const socket = new WebSocket(url, { headers })
    socket.on("open", () => {
      socket.close()
      resolve({ status: 101 })
    })
    socket.on("unexpected-response", (_request, response) => {
      let text = ""
      response.on("data", (chunk: Buffer) => (text += chunk.toString()))
      response.on("end", () => resolve({ status: response.statusCode ?? 0, code: (JSON.parse(text) as { error: { code: string } }).error.code }))
    })
    socket.on("error", (error) => (error.message.includes("Unexpected server response") ? undefined : reject(error)))
  })

describe("console sessions", () => {
  it("exchange a key for an HttpOnly SameSite=Strict cookie; changes need the CSRF token; revoking the key or signing out ends it", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const session = await openSession(gateway.adminUrl, account.apiKey)
    expect(session.setCookie).toMatch(/^fp_session=[A-Za-z0-9_-]{43}; /)
    expect(session.setCookie).toMatch(/HttpOnly/)
    expect(session.setCookie).toMatch(/SameSite=Strict/)
    expect(session.setCookie).not.toContain(account.apiKey)
    expect(session.caller.role).toBe("admin")

    const read = await fetch(`${gateway.adminUrl}/v1/actions`, { headers: { cookie: session.cookie } })
    expect(read.status).toBe(200)
    const change = (headers: Record<string, string>) =>
      fetch(`${gateway!.adminUrl}/v1/actions/system_create_template`, { method: "POST", headers: { cookie: session.cookie, "content-type": "application/json", ...headers }, body: JSON.stringify({ name: "from-console" }) })
    const withoutToken = await change({})
    expect(withoutToken.status).toBe(403)
    expect(((await withoutToken.json()) as any).error.code).toBe("csrf_token_invalid")
    expect((await change({ "x-csrf-token": "x".repeat(43) })).status).toBe(403)
    expect((await change({ "x-csrf-token": session.csrf })).status).toBe(200)

    // A bad key opens nothing.
    const refused = await fetch(`${gateway.adminUrl}/v1/session`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ api_key: "fpk_nope" }) })
    expect(refused.status).toBe(401)
    expect(refused.headers.get("set-cookie")).toBeNull()

    // Signing out ends the session.
    const other = await openSession(gateway.adminUrl, account.apiKey)
    expect((await fetch(`${gateway.adminUrl}/v1/session`, { method: "DELETE", headers: { cookie: other.cookie, "x-csrf-token": other.csrf } })).status).toBe(204)
    expect((await fetch(`${gateway.adminUrl}/v1/actions`, { headers: { cookie: other.cookie } })).status).toBe(401)

    // Revoking the key ends every session opened with it.
    const identity = await gateway.fleet.identifyApiKey(account.apiKey)
    await gateway.fleet.revokeApiKey({ account_id: identity.account_id, api_key_id: identity.api_key_id })
    expect((await fetch(`${gateway.adminUrl}/v1/actions`, { headers: { cookie: session.cookie } })).status).toBe(401)
  })

  it("a terminal opens with the session cookie only from the console's own origin and with its CSRF token", async () => {
    gateway = await quietGateway()
    const account = await setupAccount(gateway)
    const node = await account.provision("w1", account.workerTemplateId)
    const session = await openSession(gateway.adminUrl, account.apiKey)
    const origin = gateway.adminUrl
    const base = `${gateway.adminUrl.replace(/^http/, "ws")}/v1/instances/${node.instanceId}/terminal`
    expect(await upgradeStatus(base, { cookie: session.cookie, origin: "https://evil.example" })).toEqual({ status: 403, code: "origin_not_allowed" })
    expect(await upgradeStatus(base, { cookie: session.cookie, origin: "not a url" })).toEqual({ status: 403, code: "origin_not_allowed" })
    expect(await upgradeStatus(base, { cookie: session.cookie, origin })).toEqual({ status: 403, code: "csrf_token_invalid" })
    // Past the door: the instance exists but has no agent here.
    expect(await upgradeStatus(`${base}?csrf=${session.csrf}`, { cookie: session.cookie, origin })).toEqual({ status: 409, code: "instance_not_connected" })
    // Without a cookie or a key, nothing.
    expect(await upgradeStatus(`${base}?csrf=${session.csrf}`, { origin })).toEqual({ status: 401, code: "missing_api_key" })
  })

  it("serves the console's two documents with their own policies and only the files it built", async () => {
    gateway = await quietGateway()
    const get = (path: string) => fetch(`${gateway!.adminUrl}${path}`, { redirect: "manual" })
    const pages = await get("/console/")
    expect(pages.status).toBe(200)
    expect(pages.headers.get("content-security-policy")).toBe(CONSOLE_CSP)
    const terminal = await get("/console/terminal.html")
    expect(terminal.status).toBe(200)
    expect(await terminal.text()).toContain('src="/console/terminal.js"')
    expect(terminal.headers.get("content-security-policy")).toBe(TERMINAL_CSP)
    // Inline styles for xterm.js in the terminal's document only; inline scripts nowhere.
    expect(TERMINAL_CSP).toContain("script-src 'self';")
    expect(CONSOLE_CSP).not.toContain("unsafe-inline")
    const script = await get("/console/terminal.js")
    expect(script.status).toBe(200)
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8")
    // A chunk the pages import is served; a name the build did not write is not, nor anything outside.
    const chunk = (await (await get("/console/app.js")).text()).match(/chunk-\w+\.js/)![0]
    expect((await get(`/console/${chunk}`)).status).toBe(200)
    for (const path of ["/console/missing.js", "/console/..%2Fpackage.json", "/console/%2e%2e/package.json"]) expect((await get(path)).status, path).toBe(404)
  })
})
