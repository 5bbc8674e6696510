#!/usr/bin/env node
// Packs the gateway (`fleetplane`) and the agent (`fleetplane-agent`) as self-contained npm
// tarballs for a real fleet: every dependency is bundled (bundleDependencies), so
//
//   npm install -g --offline ./fleetplane-gateway-0.1.0.tgz
//
// works on a gateway box or a node with no registry in reach (an edge site). The native
// modules (better-sqlite3, node-pty, msgpackr-extract) are the ones built here: npm rebuilds
// them on install when the target has a compiler and Node's headers, and `--ignore-scripts`
// keeps the prebuilt ones on a target of the same platform (linux-x64, glibc, Node 20).
//
// Usage: node scripts/pack-release.mjs [--out <dir>] [gateway|agent ...]   (after `npm run build`)
//
// How: `pnpm deploy` copies a package with its production dependencies in a flat (hoisted)
// node_modules, workspace packages included; the manifest's `workspace:` versions become the
// real ones; the tarball is written with tar in npm's layout (`package/…`), because `npm pack`
// of a bundled tree this size stops with "Exit handler never called" (npm 11).
import { execFileSync } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const PACKAGES = {
  gateway: { name: "@fleetplane/gateway", dir: "packages/gateway", file: "fleetplane-gateway" },
  agent: { name: "@fleetplane/agent", dir: "examples/agent", file: "fleetplane-agent" }
}

const args = process.argv.slice(2)
const outIndex = args.indexOf("--out")
const out = resolve(outIndex === -1 ? join(root, "release") : args[outIndex + 1])
const wanted = args.filter((a, i) => a !== "--out" && i !== outIndex + 1)
const chosen = wanted.length === 0 ? Object.keys(PACKAGES) : wanted
for (const key of chosen) if (!(key in PACKAGES)) throw new Error(`unknown package "${key}"; choose from ${Object.keys(PACKAGES).join(", ")}`)

const versionOf = (dir) => JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8")).version
const workspaceVersions = Object.fromEntries(
  ["packages/agent-protocol", "packages/sdk", "packages/gateway", "examples/agent"].map((dir) => {
    const manifest = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8"))
    return [manifest.name, manifest.version]
  })
)

/** pnpm on PATH, or the copy scripts/workspace.mjs installs under .tools/ where npm -g is not allowed. */
const pnpm = existsSync(join(root, ".tools", "node_modules", ".bin", "pnpm")) ? join(root, ".tools", "node_modules", ".bin", "pnpm") : "pnpm"

mkdirSync(out, { recursive: true })
for (const key of chosen) {
  const { name, dir, file } = PACKAGES[key]
  if (!existsSync(join(root, dir, "dist"))) throw new Error(`${name} is not built: run npm run build first`)
  const staging = mkdtempSync(join(tmpdir(), `fleetplane-pack-${key}-`))
  const deployed = join(staging, "deployed")
  // --prefer-offline: the local store first; the registry only for metadata the cache lacks
  // (a package the lockfile resolved through another one's entry, e.g. prom-client's
  // @opentelemetry/api, is re-resolved by deploy). The tarball itself installs offline.
  execFileSync(pnpm, ["--filter", name, "deploy", "--prod", "--prefer-offline", "--config.node-linker=hoisted", deployed], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, ...(existsSync("/usr/include/node") ? { npm_config_nodedir: "/usr" } : {}) }
  })
  const manifest = JSON.parse(readFileSync(join(deployed, "package.json"), "utf8"))
  for (const [dependency, spec] of Object.entries(manifest.dependencies ?? {})) {
    if (String(spec).startsWith("workspace:") || String(spec).includes("file:")) manifest.dependencies[dependency] = workspaceVersions[dependency]
  }
  manifest.bundleDependencies = Object.keys(manifest.dependencies ?? {})
  delete manifest.scripts
  delete manifest.devDependencies
  delete manifest.private
  // pnpm's bookkeeping is not part of an npm package.
  for (const extra of ["node_modules/.pnpm", "node_modules/.modules.yaml", "node_modules/.bin", "pnpm-lock.yaml", "pnpm-workspace.yaml"]) rmSync(join(deployed, extra), { recursive: true, force: true })
  const packageDir = join(staging, "package")
  mkdirSync(packageDir)
  for (const entry of [...(manifest.files ?? ["dist"]), "node_modules"]) {
    if (existsSync(join(deployed, entry))) cpSync(join(deployed, entry), join(packageDir, entry), { recursive: true, verbatimSymlinks: true })
  }
  writeFileSync(join(packageDir, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`)
  const tarball = join(out, `${file}-${versionOf(dir)}.tgz`)
  execFileSync("tar", ["-czf", tarball, "-C", staging, "package"])
  rmSync(staging, { recursive: true, force: true })
  console.log(tarball)
}
