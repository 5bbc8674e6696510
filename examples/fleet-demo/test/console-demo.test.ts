/**
 * `npm run demo -- --console`: the demo's fleet left running and seen in the web console, in
 * Debian's headless Chromium (playwright-core). Screenshots go to test-artifacts/console/.
 */
import { mkdtempSync, readFileSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { launchChromium, type Browser } from "../../../packages/gateway/test/support/chromium"
import { runDemo, type RunningDemo } from "../src/index"

const ARTIFACTS = join(__dirname, "..", "test-artifacts", "console")

let browser: Browser
let running: RunningDemo | undefined

beforeAll(async () => {
  browser = await launchChromium(ARTIFACTS)
})
afterAll(async () => {
  await browser?.close()
  await running?.stop()
})

describe("npm run demo -- --console", () => {
  it("leaves the demo's fleet running; the console shows its clusters, the promoted VIP holder and the killed server not ready", async () => {
    const summary = await runDemo({ dir: join(mkdtempSync(join(tmpdir(), "fleetplane-demo-")), ".demo"), fast: true, write: () => undefined, keepRunning: true })
    running = summary.running!
    expect(statSync(running.apiKeyFile).mode & 0o777).toBe(0o600)
    const apiKey = readFileSync(running.apiKeyFile, "utf8").trim()
    const prodId = summary.clusters.find((c) => c.name === "k3s-prod")!.id
    const answer = await fetch(`${running.consoleUrl}v1/actions/kubernetes_get_cluster`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ id: prodId })
    })
    const prod = (await answer.json()) as { virtual_ip: { holder_hostname: string; epoch: number }; warnings: Array<string> }
    expect(prod.virtual_ip.holder_hostname).not.toBe("k3s-prod-server-1")
    // Two servers: etcd's quorum warning, which the console shows as the API says it.
    expect(prod.warnings.length).toBeGreaterThan(0)

    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    await page.goto(running.consoleUrl)
    await page.getByLabel("API key").fill(apiKey)
    await page.getByRole("button", { name: "Sign in" }).click()
    await page.getByRole("heading", { name: "Fleet" }).waitFor()
    const row = page.locator('tr[data-cluster="k3s-prod"]')
    await expect.poll(() => row.locator("td").allInnerTexts()).toEqual(["k3s-prod", "active", "2", "3", prod.virtual_ip.holder_hostname, "2", prod.warnings.join("\n")])
    // Staging was decommissioned by the runbook: the fleet lists the clusters that run.
    expect(await page.locator('tr[data-cluster="k3s-staging"]').count()).toBe(0)
    await page.screenshot({ path: join(ARTIFACTS, "demo-fleet.png"), fullPage: true })

    await row.getByRole("link", { name: "k3s-prod" }).click()
    const killed = page.locator('tr[data-node="k3s-prod-server-1"]')
    await expect.poll(() => killed.locator("td").nth(2).innerText()).toBe("not_ready")
    expect(await killed.locator("td").nth(3).innerText()).toBe("silent")
    expect(await page.getByRole("note").allInnerTexts()).toEqual(prod.warnings)
    await page.screenshot({ path: join(ARTIFACTS, "demo-cluster.png"), fullPage: true })
    await page.close()
  }, 90_000)
})
