/**
 * The web console's files (built into dist/console by scripts/build-console.mjs), served by the
 * gateway on the admin port under a strict Content-Security-Policy: scripts, styles and
 * connections only from the gateway itself, no inline script, no framing (the terminal's
 * document alone allows inline styles, see TERMINAL_CSP).
 */
import { existsSync, readFileSync, readdirSync } from "node:fs"
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

/**
 * The terminal document's policy: the same, except that styles may be inline. xterm.js's
 * renderer writes <style> elements and style attributes (xtermjs/xterm.js#4445); scripts stay
 * 'self' only, and the console's other pages, which show what agents report, keep the strict one.
 */
export const TERMINAL_CSP = CONSOLE_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")

const headers = (csp: string) => ({
  "content-security-policy": csp,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cache-control": "no-cache"
})
const securityHeaders = (name: string) => headers(name === "terminal.html" ? TERMINAL_CSP : CONSOLE_CSP)

const TYPES: Record<string, string> = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" }
const typeOf = (name: string) => TYPES[name.slice(name.lastIndexOf("."))]

/** dist/console of this package, wherever it runs from (the built bundle, or sources under test). */
const consoleDir = () => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, "package.json"))) return join(dir, "dist", "console")
    dir = dirname(dir)
  }
  return join(dirname(fileURLToPath(import.meta.url)), "console")
}

/** The console's routes: its files (two pages, their scripts and shared chunk, app.css) read once at start; `/` leads to it. */
export const consoleRoutes = () => {
  const dir = consoleDir()
  const files = new Map<string, { readonly body: Uint8Array; readonly type: string }>()
  if (existsSync(dir)) {
    for (const name of readdirSync(dir)) {
      const type = typeOf(name)
      if (type !== undefined) files.set(name, { body: readFileSync(join(dir, name)), type })
    }
  }
  const serve = (name: string) =>
    Effect.sync(() => {
      const file = files.get(name)
      if (file !== undefined) return HttpServerResponse.uint8Array(file.body, { contentType: file.type, headers: securityHeaders(name) })
      if (files.size === 0) {
        return HttpServerResponse.text(`the web console was not built into ${dir}; run npm run build in packages/gateway\n`, { status: 503 })
      }
      return HttpServerResponse.text(`the console has no file ${name.slice(0, 128)}\n`, { status: 404 })
    })
  return [
    HttpRouter.add("GET", "/", Effect.succeed(HttpServerResponse.redirect(CONSOLE_PATH, { status: 302 }))),
    HttpRouter.add("GET", "/console/", serve("index.html")),
    // Only names read from the directory at start are served: a path can never leave it.
    HttpRouter.add("GET", "/console/:file", Effect.flatMap(HttpRouter.params, (params) => serve(params.file ?? "")))
  ] as const
}
