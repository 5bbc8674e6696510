/**
 * The web console in a real browser: Debian's headless Chromium driven by playwright-core,
 * against a real gateway with simulated agents. Screenshots of every page are written to
 * test-artifacts/console/.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { launchChromium, type Browser, type Page } from "./support/chromium"
import { KubeConfig } from "@kubernetes/client-node"
import type { Gateway } from "../src/index"
import { CONSOLE_CSP } from "../src/admin/console-assets"
import { quietGateway, setupAccount } from "./support/gateway-harness"
import { connectAgent, heartbeating, join as joinCluster, poll, ready } from "./support/agent-steps"
import type { TestAgent } from "./support/test-agent"

const ARTIFACTS = join(__dirname, "..", "test-artifacts", "console")

let browser: Browser
let gateway: Gateway | undefined
const agents: Array<TestAgent> = []
const stops: Array<() => void> = []

beforeAll(async () => {
  browser = await launchChromium(ARTIFACTS)
})
afterAll(async () => {
  await browser?.close()
})
afterEach(async () => {
  for (const stop of stops.splice(0)) stop()
  for (const agent of agents.splice(0)) agent.close()
  await gateway?.close()
  gateway = undefined
})

/** A cluster of two servers (require_approval VIP policy) and a worker, all heartbeating. */
const fleet = async () => {
  gateway = await quietGateway()
  const account = await setupAccount(gateway, { vipPolicy: "require_approval" })
  const agent = async (hostname: string, template: string) => {
    const connected = await connectAgent(gateway!, await account.provision(hostname, template), account.networkId)
    agents.push(connected)
    return connected
  }
  const s1 = await agent("k3s-prod-server-1", account.serverTemplateId)
  const accepted = await joinCluster(s1, "k3s-server", null)
  const clusterId = accepted.type === "join_accepted" ? (accepted.body.cluster_id as string) : ""
  await s1.message("vip_assign")
  ready(s1)
  await poll(async () => (await account.admin.action("kubernetes_get_cluster", { id: clusterId })).body.status === "active", "cluster active")
  const s2 = await agent("k3s-prod-server-2", account.serverTemplateId)
  await joinCluster(s2, "k3s-server", clusterId)
  ready(s2)
  const w1 = await agent("edge-worker-1", account.workerTemplateId)
  await joinCluster(w1, "k3s-agent", clusterId)
  ready(w1)
  for (const peer of [s1, s2, w1]) {
    await peer.until((a) => a.wireguardConfig().split("[Peer]").length === 3, 5_000, "full mesh config")
    peer.ackAll()
  }
  return { account, clusterId, s1, s2, w1 }
}

const signIn = async (page: Page, apiKey: string) => {
  await page.goto(`${gateway!.adminUrl}/`)
  await page.getByLabel("API key").fill(apiKey)
  await page.getByRole("button", { name: "Sign in" }).click()
  await page.getByRole("heading", { name: "Fleet" }).waitFor()
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true })

describe("web console (headless Chromium)", () => {
  it("signs in, shows the fleet, turns a silent node not-ready live, approves a failover, downloads a kubeconfig that loads", async () => {
    const { account, clusterId, s1, s2, w1 } = await fleet()
    const stopOthers = heartbeating([s2, w1], account.networkId)
    const stopHolder = heartbeating([s1], account.networkId)
    stops.push(stopOthers, stopHolder)

    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 800 } })
    const page = await context.newPage()
    const violations: Array<string> = []
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text())
    })
    const response = await page.goto(`${gateway!.adminUrl}/console/`)
    expect(response!.headers()["content-security-policy"]).toBe(CONSOLE_CSP)
    await signIn(page, account.apiKey)
    // The key went into a session cookie the page's scripts cannot read.
    const cookies = await context.cookies()
    expect(cookies.find((c) => c.name === "fp_session")).toMatchObject({ httpOnly: true, sameSite: "Strict" })
    expect(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie)).toBe("")

    const row = page.locator("tr", { has: page.getByRole("link", { name: "k3s-prod-server-1" }) })
    await expect.poll(() => row.locator("td").nth(1).textContent()).toBe("active")
    expect(await row.locator("td").nth(4).textContent()).toBe("k3s-prod-server-1")
    await shot(page, "fleet")

    await row.getByRole("link").click()
    await page.getByRole("heading", { name: /k3s-prod-server-1/ }).waitFor()
    const holderRow = page.locator('tr[data-node="k3s-prod-server-1"]')
    await expect.poll(() => holderRow.locator("td").nth(3).textContent()).toBe("heartbeating")
    await shot(page, "cluster")

    // The holder's agent goes silent; the page learns it from the event stream, without a reload.
    stopHolder()
    await expect.poll(() => holderRow.locator("td").nth(3).textContent(), { timeout: 10_000 }).toBe("silent")
    expect(await holderRow.locator("td").nth(2).textContent()).toBe("not_ready")
    await shot(page, "cluster-holder-silent")

    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download kubeconfig" }).click()])
    const kubeconfig = new KubeConfig()
    kubeconfig.loadFromString(readFileSync((await download.path())!, "utf8"))
    expect(kubeconfig.getCurrentCluster()?.server).toMatch(/^https:\/\//)
    expect(kubeconfig.getCurrentUser()).toBeDefined()

    await page.getByRole("link", { name: "Approvals" }).click()
    const approval = page.locator("li[data-approval]")
    await approval.first().waitFor({ timeout: 10_000 })
    await shot(page, "approvals")
    await approval.first().getByRole("button", { name: "Approve" }).click()
    await page.getByText("Nothing waits for a decision.").waitFor()

    await page.getByRole("link", { name: "Fleet" }).click()
    await expect.poll(() => row.locator("td").nth(4).textContent(), { timeout: 10_000 }).toBe("k3s-prod-server-2")
    const cluster = (await account.admin.action("kubernetes_get_cluster", { id: clusterId })).body
    expect(cluster.virtual_ip.holder_hostname).toBe("k3s-prod-server-2")
    expect(await row.locator("td").nth(5).textContent()).toBe(String(cluster.virtual_ip.epoch))

    // The network: every peer with its addresses, and the mesh with the (new) VIP holder marked.
    await page.getByRole("link", { name: "Networks" }).click()
    const network = page.locator('article[data-network="prod"]')
    for (const hostname of ["k3s-prod-server-1", "k3s-prod-server-2", "edge-worker-1"]) await network.locator(`tr[data-peer-row="${hostname}"]`).waitFor()
    expect(await network.locator('tr[data-peer-row="k3s-prod-server-1"] td').nth(1).textContent()).toMatch(/100\.64\.0\.\d+/)
    await expect.poll(() => network.locator("svg.mesh g[data-holder]").getAttribute("data-peer")).toBe("k3s-prod-server-2")
    expect(await network.locator("svg.mesh line").count()).toBe(3)
    expect(await network.getByRole("img").getAttribute("aria-label")).toContain("VIP held by k3s-prod-server-2")
    await shot(page, "networks")

    await page.getByRole("link", { name: "Events" }).click()
    await page.locator('tr[data-event="sdwan.vip_holder_silent"]').first().waitFor()
    await page.getByLabel("Type contains").fill("sdwan.vip")
    expect(await page.locator('tr[data-event="agent.connected"]').count()).toBe(0)
    await shot(page, "events")

    // A rolling upgrade of the workers: its batch and node shown as the run goes, without a reload.
    const started = await account.admin.confirmed("execute_skill", {
      skill: "system-rolling-module-upgrade",
      inputs: { template_id: account.workerTemplateId, module_id: "mod-k3s-agent", target_version_id: "v-k3s-1.31.0", batch_pct: 100, max_consecutive_failures: 1 }
    })
    expect(started.status).toBe(200)
    await page.getByRole("link", { name: "Upgrades" }).click()
    const upgradeNode = page.locator('li[data-batch="1"] span[data-instance="edge-worker-1"]')
    await upgradeNode.waitFor({ timeout: 10_000 })
    await w1.until((a) => a.pushes("module_upgrade").length > 0, 10_000, "the module upgrade push")
    w1.ackAll()
    await expect.poll(() => upgradeNode.getAttribute("class"), { timeout: 10_000 }).toContain("status-upgraded")
    await expect.poll(() => page.locator("article[data-run] h2 span").textContent()).toBe("completed")
    await shot(page, "upgrades")

    // A phone-sized screen still shows the fleet.
    await page.setViewportSize({ width: 390, height: 800 })
    await page.getByRole("link", { name: "Fleet" }).click()
    await row.waitFor()
    await shot(page, "fleet-phone")
    expect(violations).toEqual([])
    await context.close()
  }, 60_000)

  it("a read key sees no buttons that change anything, and the API refuses the changes anyway", async () => {
    const { account, clusterId } = await fleet()
    const { api_key: readKey } = await gateway!.fleet.createApiKey({ account_id: (await gateway!.fleet.identifyApiKey(account.apiKey)).account_id, name: "viewer", role: "read" })
    const context = await browser.newContext()
    const page = await context.newPage()
    await signIn(page, readKey)
    await page.goto(`${gateway!.adminUrl}/console/#/clusters/${clusterId}`)
    await page.getByRole("heading", { name: /k3s-prod-server-1/ }).waitFor()
    await page.locator('tr[data-node="k3s-prod-server-1"]').waitFor()
    for (const name of ["Download kubeconfig", "Rotate join token", "Decommission"]) expect(await page.getByRole("button", { name }).count(), name).toBe(0)
    await shot(page, "cluster-read-key")

    // Straight at the API from the page, with the session's own CSRF token: refused by role.
    const refused = await page.evaluate(async (id) => {
      const session = (await (await fetch("/v1/session")).json()) as { csrf_token: string }
      const answer = await fetch("/v1/actions/kubernetes_rotate_token", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": session.csrf_token },
        body: JSON.stringify({ cluster_id: id })
      })
      return { status: answer.status, body: (await answer.json()) as { error: { code: string } } }
    }, clusterId)
    expect(refused.status).toBe(403)
    expect(refused.body.error.code).toBe("forbidden_for_role")

    // Without the CSRF token a change is refused before anything else, whatever the role.
    const noCsrf = (await page.evaluate(async () => (await fetch("/v1/actions/system_create_template", { method: "POST", body: "{}" })).json())) as { error: { code: string } }
    expect(noCsrf.error.code).toBe("csrf_token_invalid")

    // Signing out ends the session: the cookie no longer opens the API.
    await page.getByRole("button", { name: "Sign out" }).click()
    await page.getByLabel("API key").waitFor()
    expect(await page.evaluate(async () => (await fetch("/v1/actions")).status)).toBe(401)
    await context.close()
  }, 60_000)

  it("works from the keyboard alone: sign-in, the pages, and a destructive action's confirmation (Escape cancels, focus comes back)", async () => {
    const { account, clusterId } = await fleet()
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    /** Presses Tab until the focused element's text (or label) is `name`; fails after 40 presses. */
    const tabTo = async (name: string) => {
      for (let i = 0; i < 40; i++) {
        await page.keyboard.press("Tab")
        const focused = await page.evaluate("document.activeElement?.textContent?.trim() || document.activeElement?.getAttribute('aria-label') || document.activeElement?.id")
        if (focused === name) return
      }
      throw new Error(`Tab never reached "${name}"`)
    }
    await page.goto(`${gateway!.adminUrl}/`)
    await tabTo("api-key")
    await page.keyboard.type(account.apiKey)
    await page.keyboard.press("Enter")
    await page.getByRole("heading", { name: "Fleet" }).waitFor()
    // Keyboard focus is visible (the stylesheet's :focus-visible outline).
    await tabTo("Networks")
    expect(await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")).toBe("solid")
    await page.keyboard.press("Enter")
    await page.getByRole("heading", { name: "Networks" }).waitFor()
    await tabTo("Fleet")
    await page.keyboard.press("Enter")
    await page.locator('tr[data-cluster="k3s-prod-server-1"]').waitFor()
    await tabTo("k3s-prod-server-1")
    await page.keyboard.press("Enter")
    await page.getByRole("heading", { name: /k3s-prod-server-1/ }).waitFor()

    // The confirmation is a modal dialog: focus starts on Cancel (the safe choice), Escape cancels.
    await tabTo("Rotate join token")
    await page.keyboard.press("Enter")
    const dialog = page.getByRole("dialog", { name: "Confirm Rotate join token" })
    await dialog.waitFor()
    expect(await dialog.innerText()).toContain("join token")
    expect(await page.evaluate("document.activeElement?.textContent")).toBe("Cancel")
    await page.keyboard.press("Escape")
    await dialog.waitFor({ state: "detached" })
    expect(await page.evaluate("document.activeElement?.textContent")).toBe("Rotate join token")
    const before = (await account.admin.action("system_list_events", { limit: 1000 })).body.events.filter((e: { type: string }) => e.type === "kubernetes.token_rotated").length
    expect(before).toBe(0)

    // Again, and confirm: Shift+Tab from Cancel reaches Confirm.
    await page.keyboard.press("Enter")
    await dialog.waitFor()
    await page.keyboard.press("Shift+Tab")
    expect(await page.evaluate("document.activeElement?.textContent")).toBe("Confirm")
    await page.keyboard.press("Enter")
    await page.getByRole("status").filter({ hasText: "The join token was rotated." }).waitFor()
    const events = (await account.admin.action("system_list_events", { limit: 1000 })).body.events as Array<{ type: string; data: { cluster_id?: string } }>
    expect(events.filter((e) => e.type === "kubernetes.token_rotated").map((e) => e.data.cluster_id)).toEqual([clusterId])
    await page.close()
  }, 60_000)
})
