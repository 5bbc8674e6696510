/**
 * Builds the web console into dist/console: its two documents (the pages, and the terminal with
 * xterm.js), their JavaScript (Preact, minified) and stylesheet, served by the gateway itself
 * (no CDN). Fails when the JavaScript, all chunks together, grows past 200 KB gzipped.
 */
import { build } from "esbuild"
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const out = join(root, "dist", "console")
rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })
// Two documents' scripts, app.js (the pages) and terminal.js (the terminal, with xterm.js), and
// the chunk they share, content-hashed.
await build({
  entryPoints: { app: join(root, "console", "src", "main.tsx"), terminal: join(root, "console", "src", "terminal-main.tsx") },
  bundle: true,
  splitting: true,
  minify: true,
  format: "esm",
  target: "es2022",
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: out,
  chunkNames: "chunk-[hash]",
  legalComments: "none",
  logLevel: "warning"
})
for (const page of ["index.html", "terminal.html"]) copyFileSync(join(root, "console", page), join(out, page))
// xterm.js's own stylesheet rides in app.css: the CSP allows style sheets from the gateway only.
const xtermCss = readFileSync(createRequire(import.meta.url).resolve("@xterm/xterm/css/xterm.css"), "utf8")
writeFileSync(join(out, "app.css"), `${readFileSync(join(root, "console", "app.css"), "utf8")}\n/* @xterm/xterm/css/xterm.css */\n${xtermCss}`)
const scripts = readdirSync(out).filter((name) => name.endsWith(".js"))
const gzipped = scripts.reduce((sum, name) => sum + gzipSync(readFileSync(join(out, name))).length, 0)
// What the pages load: app.js and the chunks it imports (the terminal's xterm.js is not among them).
const imported = (name) => [...readFileSync(join(out, name), "utf8").matchAll(/from"\.\/(chunk-[\w]+\.js)"/g)].map((m) => m[1])
const first = ["app.js", ...imported("app.js")].reduce((sum, name) => sum + gzipSync(readFileSync(join(out, name))).length, 0)
const BUDGET = 200 * 1024
if (gzipped > BUDGET) throw new Error(`the console's JavaScript is ${gzipped} bytes gzipped, over its ${BUDGET}-byte budget`)
console.log(`console: ${scripts.length} scripts, ${gzipped} bytes gzipped in all, ${first} for the pages (budget ${BUDGET})`)
