/**
 * Debian's headless Chromium for the web console's browser tests, driven by playwright-core
 * (no browser download). Shared by the gateway's console tests and the examples' (the terminal
 * with the reference agent, the demo), which import this file by its path.
 */
import { existsSync, mkdirSync } from "node:fs"
import { chromium, type Browser } from "playwright-core"

export type { Browser, Page } from "playwright-core"

export const CHROMIUM = "/usr/bin/chromium"

/** Launches it, after making `artifacts` (where screenshots go); fails saying how to install it when missing. */
export const launchChromium = async (artifacts: string): Promise<Browser> => {
  // Installed by the workspace's test script (apt-get chromium); without it these tests cannot say anything.
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (npm test does it with apt-get)`)
  mkdirSync(artifacts, { recursive: true })
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] })
}
