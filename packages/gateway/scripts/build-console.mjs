/**
 * Builds the web console into dist/console: one JavaScript bundle (Preact, minified), its
 * stylesheet and page, served by the gateway itself (no CDN). Fails when the bundle grows
 * past its budget of 200 KB gzipped.
 */
import { build } from "esbuild"
import { copyFileSync, mkdirSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const out = join(root, "dist", "console")
mkdirSync(out, { recursive: true })
await build({
  entryPoints: [join(root, "console", "src", "main.tsx")],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  jsx: "automatic",
  jsxImportSource: "preact",
  outfile: join(out, "app.js"),
  legalComments: "none",
  logLevel: "warning"
})
for (const file of ["index.html", "app.css"]) copyFileSync(join(root, "console", file), join(out, file))
const gzipped = gzipSync(readFileSync(join(out, "app.js"))).length
const BUDGET = 200 * 1024
if (gzipped > BUDGET) throw new Error(`the console's JavaScript is ${gzipped} bytes gzipped, over its ${BUDGET}-byte budget`)
console.log(`console: app.js ${gzipped} bytes gzipped (budget ${BUDGET})`)
