/**
 * The web console's files (built into dist/console by scripts/build-console.mjs), served by the
 * gateway on the admin port under a strict Content-Security-Policy: scripts, styles and
 * connections only from the gateway itself, no inline script, no framing.
 */
import { existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"

export const CONSOLE_PATH = "/console/"

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'"
].join("; ")

const SECURITY_HEADERS = {
  "content-security-policy": CONSOLE_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cache-control": "no-cache"
}

const TYPES: Record<string, string> = { "index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8" }

/** dist/console of this package, wherever it runs from (the built bundle, or sources under test). */
const consoleDir = () => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, "package.json"))) return join(dir, "dist", "console")
    dir = dirname(dir)
  }
  return join(dirname(fileURLToPath(import.meta.url)), "console")
}

/** The console's routes: its files read once at start; `/` leads to it. */
export const consoleRoutes = () => {
  const dir = consoleDir()
  const files = new Map<string, Uint8Array>()
  for (const name of Object.keys(TYPES)) if (existsSync(join(dir, name))) files.set(name, readFileSync(join(dir, name)))
  const serve = (name: string) =>
    Effect.sync(() => {
      const body = files.get(name)
      if (body === undefined) {
        return HttpServerResponse.text(`the web console was not built into ${dir}; run npm run build in packages/gateway\n`, { status: 503 })
      }
      return HttpServerResponse.uint8Array(body, { contentType: TYPES[name]!, headers: SECURITY_HEADERS })
    })
  return [
    HttpRouter.add("GET", "/", Effect.succeed(HttpServerResponse.redirect(CONSOLE_PATH, { status: 302 }))),
    HttpRouter.add("GET", "/console/", serve("index.html")),
    HttpRouter.add("GET", "/console/app.js", serve("app.js")),
    HttpRouter.add("GET", "/console/app.css", serve("app.css"))
  ] as const
}
