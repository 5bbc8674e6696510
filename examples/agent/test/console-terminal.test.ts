/**
 * The web console's terminal in a real browser: Debian's headless Chromium (playwright-core)
 * -> xterm.js -> the gateway's terminal WebSocket -> the reference agent's session -> a real
 * node-pty shell, and back. (The console's other pages are tested with simulated agents in
 * packages/gateway/test/console.test.ts; a terminal needs a real pty.) A screenshot is written
 * to test-artifacts/console/.
 */
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { launchChromium, type Browser, type Page } from "../../../packages/gateway/test/support/chromium"
import WebSocket from "ws"
import type { Gateway } from "@fleetplane/gateway"
import type { ReferenceAgent } from "../src/index"
import { terminalInstance, testGateway, waitFor } from "./support/fixture"

const ARTIFACTS = join(__dirname, "..", "test-artifacts", "console")

let browser: Browser
let gateway: Gateway | undefined
const agents: Array<ReferenceAgent> = []

beforeAll(async () => {
  browser = await launchChromium(ARTIFACTS)
})
afterAll(async () => {
  await browser?.close()
})
afterEach(async () => {
  for (const agent of agents.splice(0)) agent.stop()
  await gateway?.close()
  gateway = undefined
})

/** One node with a real reference agent (simulating k3s and WireGuard, but with real terminals). */
const setup = async () => {
  gateway = await testGateway()
  const { account, ops, agent, key, instanceId } = await terminalInstance(gateway)
  agents.push(agent)
  const reader = await gateway.fleet.createApiKey({ account_id: account.id, name: "dashboard", role: "read" })
  await waitFor(async () => (await ops.actions.system_get_instance({ instance_id: instanceId })).agent === "connected", "the agent's session")
  return { gateway, ops, adminKey: key, readKey: reader.api_key, instanceId }
}

/** A page that records every Content-Security-Policy violation (the console allows no inline style or script). */
const newPage = async (viewport = { width: 1100, height: 700 }) => {
  const page = await browser.newPage({ viewport })
  // Runs in the page before its scripts (a string: this package's types have no DOM).
  await page.addInitScript(`
    window.__cspViolations = []
    document.addEventListener("securitypolicyviolation", (event) => window.__cspViolations.push(event.violatedDirective + ": " + event.blockedURI + " " + event.sample))
  `)
  return page
}

const signIn = async (page: Page, apiKey: string) => {
  await page.goto(`${gateway!.adminUrl}/`)
  await page.getByLabel("API key").fill(apiKey)
  await page.getByRole("button", { name: "Sign in" }).click()
  await page.getByRole("heading", { name: "Fleet" }).waitFor()
}

const screenText = (page: Page) => page.locator(".xterm-rows").innerText()

/** Types a line into the terminal (through xterm's own keyboard handling) and waits for `expected` on screen. */
const typeAndSee = async (page: Page, line: string, expected: RegExp) => {
  await page.keyboard.type(line)
  await page.keyboard.press("Enter")
  await expect.poll(() => screenText(page), { timeout: 10_000 }).toMatch(expected)
}

describe("web console terminal (headless Chromium, reference agent)", () => {
  it("opens a shell on the instance from the Terminal page, runs echo hi, follows a resize, shows the exit status, leaves no CSP violation; the terminal is audited", async () => {
    const { ops, adminKey, instanceId } = await setup()
    const page = await newPage()
    await signIn(page, adminKey)
    await page.getByRole("link", { name: "Terminal", exact: true }).click()
    await page.getByRole("heading", { name: "Terminal" }).waitFor()
    const row = page.locator('tr[data-instance="edge-1"]')
    await expect.poll(() => row.locator("td").nth(2).innerText()).toBe("connected")
    await page.screenshot({ path: join(ARTIFACTS, "terminal-instances.png"), fullPage: true })
    await row.getByRole("link", { name: "Open terminal" }).click()
    await page.getByRole("heading", { name: "Terminal on edge-1" }).waitFor()
    await expect.poll(() => page.getByRole("status").innerText()).toContain("Connected")

    await typeAndSee(page, "echo hi-$((6*7))", /^hi-42$/m)
    // The pty has the size xterm.js fitted to its box; a narrower window narrows both.
    await typeAndSee(page, "echo cols=$(tput cols)", /^cols=\d+$/m)
    const wide = Number((await screenText(page)).match(/^cols=(\d+)$/m)![1])
    expect(wide).toBeGreaterThan(80)
    await page.setViewportSize({ width: 560, height: 700 })
    await page.keyboard.type("clear")
    await page.keyboard.press("Enter")
    await expect.poll(() => screenText(page)).not.toMatch(/cols=/)
    await typeAndSee(page, "echo narrow=$(tput cols)", /^narrow=\d+$/m)
    const narrow = Number((await screenText(page)).match(/^narrow=(\d+)$/m)![1])
    expect(narrow).toBeLessThan(wide)
    expect(narrow).toBeGreaterThan(20)
    await page.setViewportSize({ width: 1100, height: 700 })
    await page.screenshot({ path: join(ARTIFACTS, "terminal.png"), fullPage: true })

    // Keyboard users: the terminal keeps Tab for the shell, Ctrl+] moves focus out of it.
    await page.keyboard.press("Control+BracketRight")
    expect(await page.evaluate("document.activeElement?.textContent")).toBe("Close")

    await page.locator(".xterm").click()
    await page.keyboard.type("exit 3")
    await page.keyboard.press("Enter")
    await expect.poll(() => page.getByRole("status").innerText(), { timeout: 10_000 }).toBe("The terminal exited with status 3.")

    // A command typed in the form runs instead of a login shell.
    await page.getByLabel(/^Command/).fill("echo from-the-form; exit 0")
    await page.getByRole("button", { name: "Open again" }).click()
    await expect.poll(() => page.getByRole("status").innerText(), { timeout: 10_000 }).toBe("The terminal exited with status 0.")
    expect(await screenText(page)).toContain("from-the-form")

    expect(await page.evaluate("window.__cspViolations")).toEqual([])
    const events = await ops.events.list({ limit: 1000 })
    const closed = events.filter((e) => e.type === "terminal.closed")
    expect(closed.map((e) => e.data.exit_code)).toEqual([3, 0])
    expect(closed[0]!.data).toMatchObject({ instance_id: instanceId, reason: "exited" })
    // Audited, never recorded: what was typed and shown stays out of the event log.
    expect(JSON.stringify(events)).not.toContain("hi-42")
    await page.close()
  }, 60_000)

  it("a read key sees no Terminal page or link and gets the typed refusal; the gateway refuses its session's socket anyway", async () => {
    const { adminKey, readKey, instanceId } = await setup()
    const page = await newPage()
    await signIn(page, readKey)
    expect(await page.getByRole("link", { name: "Terminal", exact: true }).count()).toBe(0)
    const document = await page.goto(`${gateway!.adminUrl}/console/terminal.html#/${instanceId}`)
    // The terminal's document allows inline styles (xterm.js writes them), never inline scripts.
    expect(document!.headers()["content-security-policy"]).toContain("script-src 'self';")
    expect(document!.headers()["content-security-policy"]).toContain("style-src 'self' 'unsafe-inline';")
    await expect.poll(() => page.getByRole("alert").innerText()).toBe("this API key's role (read) may not open terminals, which needs admin")
    expect(await page.locator(".xterm").count()).toBe(0)
    // The page's own socket, with the read session's cookie and CSRF token: refused at the upgrade.
    const outcome = await page.evaluate(`(async () => {
      const session = await (await fetch("/v1/session")).json()
      return new Promise((resolve) => {
        const socket = new WebSocket("ws://" + location.host + "/v1/instances/${instanceId}/terminal?csrf=" + session.csrf_token)
        socket.onopen = () => resolve("opened")
        socket.onclose = (event) => resolve("closed " + event.code)
      })
    })()`)
    expect(outcome).toBe("closed 1006")
    // The same refusal from outside the browser says why.
    const refusal = await new Promise<number>((resolve) => {
      const socket = new WebSocket(`${gateway!.adminUrl.replace("http", "ws")}/v1/instances/${instanceId}/terminal`, { headers: { authorization: `Bearer ${readKey}` } })
      socket.on("unexpected-response", (_request, response) => resolve(response.statusCode ?? 0))
      socket.on("open", () => resolve(101))
    })
    expect(refusal).toBe(403)
    // An admin session in the same browser may.
    const admin = await newPage()
    await signIn(admin, adminKey)
    await admin.goto(`${gateway!.adminUrl}/console/terminal.html#/${instanceId}`)
    await expect.poll(() => admin.getByRole("status").innerText()).toContain("Connected")
    await admin.close()
    await page.close()
  }, 60_000)
})
