#!/usr/bin/env node
// Root entry point behind `npm test`, `npm run demo`, `npm run bench`, `npm run build` and
// `npm run typecheck`. It makes a fresh machine (Node 20 + npm only) ready by itself:
//   1. the pinned pnpm (from package.json "packageManager"), installed when missing;
//   2. the workspace dependencies, native addons compiled offline against Node's own headers;
//   3. then the task, through turbo (cached, so a second run is fast).
// Plain Node on purpose: it must run before any dependency exists.
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const rootManifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))
const pnpmVersion = rootManifest.packageManager.replace(/^pnpm@/, "")
const localToolsDir = join(root, ".tools")

const env = { ...process.env, TURBO_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1" }
// node-gyp would otherwise try to download Node headers, and this network only reaches the registries.
if (existsSync("/usr/include/node/node.h") && !env.npm_config_nodedir) env.npm_config_nodedir = "/usr"

/**
 * The long reliability runs (50 SIGKILLs, hostile input, failover chaos, backpressure), bounded
 * in time; each suite appends its figures to a report, printed here as one table.
 */
function soak(pnpm) {
  const status = turbo(pnpm, "build", ["--filter=@fleetplane/gateway..."])
  if (status !== 0) return status
  const report = join(mkdtempSync(join(tmpdir(), "fleetplane-soak-")), "soak.jsonl")
  writeFileSync(report, "")
  const result = spawnSync(pnpm, ["--filter", "@fleetplane/gateway", "run", "test:soak"], {
    cwd: root,
    env: { ...env, FLEETPLANE_SOAK_REPORT: report },
    stdio: "inherit"
  })
  const rows = readFileSync(report, "utf8").split("\n").filter(Boolean).map((line) => JSON.parse(line))
  const header = ["suite", "faults injected", "inputs tried", "sessions held", "invariant violations", "data lost"]
  const lines = [header, ...rows.map((r) => [r.suite, r.faults, r.inputs, r.sessions, r.violations, r.lost].map(String))]
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i].length)))
  const rule = widths.map((w) => "-".repeat(w))
  const table = [lines[0], rule, ...lines.slice(1)].map((l) => `| ${l.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`)
  process.stdout.write(`\nSoak summary\n${table.join("\n")}\n`)
  const total = (key) => rows.reduce((sum, r) => sum + r[key], 0)
  process.stdout.write(`${rows.length} suites, ${total("faults")} faults injected, invariant violations: ${total("violations")}, data lost: ${total("lost")}\n`)
  return result.status ?? 1
}

function log(message) {
  process.stderr.write(`[fleetplane] ${message}\n`)
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, env, stdio: "inherit", ...options })
  if (result.error) throw result.error
  return result.status ?? 1
}

function versionOf(command) {
  const result = spawnSync(command, ["--version"], { env, encoding: "utf8" })
  return result.status === 0 ? result.stdout.trim() : undefined
}

/** The pnpm binary to use, installing the pinned version globally, or under .tools/ when npm -g is not allowed. */
function ensurePnpm() {
  if (versionOf("pnpm") === pnpmVersion) return "pnpm"
  const local = join(localToolsDir, "node_modules", ".bin", "pnpm")
  if (existsSync(local) && versionOf(local) === pnpmVersion) return local
  log(`installing pnpm@${pnpmVersion}`)
  if (run("npm", ["install", "--global", `pnpm@${pnpmVersion}`], { stdio: "ignore" }) === 0 && versionOf("pnpm") === pnpmVersion) {
    return "pnpm"
  }
  log("global install not possible here; installing pnpm under .tools/")
  if (run("npm", ["install", "--no-save", "--prefix", localToolsDir, `pnpm@${pnpmVersion}`]) !== 0) {
    throw new Error(`could not install pnpm@${pnpmVersion}; install it yourself with: npm install --global pnpm@${pnpmVersion}`)
  }
  return local
}

function workspaceManifests() {
  const files = ["package.json", "pnpm-workspace.yaml", "pnpm-lock.yaml"]
  for (const group of ["packages", "examples"]) {
    const dir = join(root, group)
    if (!existsSync(dir)) continue
    for (const name of readdirSync(dir).sort()) {
      if (existsSync(join(dir, name, "package.json"))) files.push(join(group, name, "package.json"))
    }
  }
  return files
}

/** Installs dependencies unless the manifests and lockfile are unchanged since the last install. */
function ensureDependencies(pnpm) {
  const hash = createHash("sha256")
  for (const file of workspaceManifests()) {
    const path = join(root, file)
    hash.update(file).update(existsSync(path) ? readFileSync(path) : "")
  }
  hash.update(process.version)
  const digest = hash.digest("hex")
  const stamp = join(root, "node_modules", ".fleetplane-install-stamp")
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === digest) return
  const frozen = existsSync(join(root, "pnpm-lock.yaml")) ? ["--frozen-lockfile"] : []
  log("installing dependencies (native addons build from source; the first time takes a few minutes)")
  if (run(pnpm, ["install", ...frozen, "--reporter=append-only"]) !== 0) {
    throw new Error("pnpm install failed; see the output above")
  }
  writeFileSync(stamp, digest)
}

/**
 * System tools some tests use for real (`wg` checks generated WireGuard configs and keys;
 * `openssl` verifies generated certificates; PostgreSQL's `initdb`/`pg_ctl` start a throwaway
 * server for the PostgreSQL store's tests; the data-plane test runs real WireGuard interfaces
 * with `wireguard-go`, `wg-quick` and `ip` in network namespaces, and drops packets with
 * `nft`; `systemd-analyze` verifies the shipped systemd units; the web console's test drives
 * Debian's `chromium` headless through playwright-core). Installed with apt-get when missing and possible; tests that need them say so
 * loudly when they are not there.
 */
const SYSTEM_PACKAGES = [
  { check: "command -v wg && command -v wg-quick", apt: "wireguard-tools" },
  { check: "command -v wireguard-go", apt: "wireguard-go" },
  { check: "command -v ip", apt: "iproute2" },
  { check: "command -v nft", apt: "nftables" },
  { check: "command -v openssl", apt: "openssl" },
  // `systemd-analyze verify` checks the shipped systemd units.
  { check: "command -v systemd-analyze", apt: "systemd" },
  // Debian keeps the server binaries out of PATH, under /usr/lib/postgresql/<version>/bin.
  { check: "command -v initdb || ls /usr/lib/postgresql/*/bin/initdb", apt: "postgresql" },
  { check: "command -v chromium", apt: "chromium" }
]

function ensureSystemPackages() {
  const missing = SYSTEM_PACKAGES.filter(({ check }) => spawnSync("sh", ["-c", `${check} >/dev/null 2>&1`], { env }).status !== 0)
  if (missing.length === 0) return
  const names = missing.map((p) => p.apt)
  const canApt = process.platform === "linux" && process.getuid?.() === 0 && spawnSync("sh", ["-c", "command -v apt-get"], { env }).status === 0
  if (!canApt) {
    log(`missing system packages: ${names.join(", ")} (install them with your package manager for the full test suite)`)
    return
  }
  log(`installing system packages: ${names.join(", ")}`)
  const aptEnv = { ...env, DEBIAN_FRONTEND: "noninteractive" }
  run("apt-get", ["update", "-qq"], { env: aptEnv, stdio: ["ignore", "ignore", "inherit"] })
  if (run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...names], { env: aptEnv, stdio: ["ignore", "ignore", "inherit"] }) !== 0) {
    log(`could not install ${names.join(", ")}; tests that use them will report it`)
  }
}

function turbo(pnpm, task, extra = []) {
  return run(pnpm, ["exec", "turbo", "run", task, "--env-mode=loose", "--output-logs=new-only", ...extra])
}

function testResultFiles() {
  const found = []
  for (const group of ["packages", "examples"]) {
    const dir = join(root, group)
    if (!existsSync(dir)) continue
    for (const name of readdirSync(dir).sort()) {
      const manifestPath = join(dir, name, "package.json")
      if (!existsSync(manifestPath)) continue
      const manifest = JSON.parse(readFileSync(manifestPath, "utf8"))
      if (manifest.scripts?.test) found.push({ name: manifest.name, file: join(dir, name, "test-results.json") })
    }
  }
  return found
}

/** Runs every package's tests and prints the summed totals alone on the last line. */
function test(pnpm, args) {
  const packages = testResultFiles()
  for (const { file } of packages) rmSync(file, { force: true })
  // --continue: one failing package must not hide the results of the others.
  const status = turbo(pnpm, "test", ["--concurrency=1", "--continue", ...args])
  let passed = 0
  let failed = 0
  let skipped = 0
  for (const { name, file } of packages) {
    if (!existsSync(file)) {
      log(`${name} produced no test results (it crashed or did not run): counted as one failure`)
      failed += 1
      continue
    }
    const result = JSON.parse(readFileSync(file, "utf8"))
    passed += result.numPassedTests
    failed += result.numFailedTests
    skipped += result.numPendingTests + result.numTodoTests
    log(`${name}: ${result.numPassedTests} passed, ${result.numFailedTests} failed`)
  }
  process.stdout.write(`\n${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}\n`)
  return status !== 0 || failed > 0 ? 1 : 0
}

function demo(pnpm, args) {
  const demoDir = join(root, "examples", "fleet-demo")
  if (!existsSync(join(demoDir, "package.json"))) {
    log("the fleet demo (examples/fleet-demo) has not landed yet; running the protocol smoke check instead")
    if (turbo(pnpm, "build", ["--filter=@fleetplane/agent-protocol"]) !== 0) return 1
    return run(process.execPath, [join(root, "packages", "agent-protocol", "scripts", "smoke.mjs")])
  }
  if (turbo(pnpm, "build", ["--filter=fleet-demo..."]) !== 0) return 1
  return run(process.execPath, [join(demoDir, "dist", "main.js"), ...args])
}

const [task = "test", ...args] = process.argv.slice(2)
try {
  const pnpm = ensurePnpm()
  ensureDependencies(pnpm)
  let status
  switch (task) {
    case "test":
      ensureSystemPackages()
      status = test(pnpm, args)
      break
    case "demo":
      status = demo(pnpm, args)
      break
    case "demo-real":
      // The runbook on real WireGuard interfaces in network namespaces (needs root).
      ensureSystemPackages()
      status = turbo(pnpm, "build", ["--filter=@fleetplane/agent..."])
      if (status === 0) status = run(pnpm, ["--filter", "@fleetplane/agent", "run", "demo:real"])
      break
    case "bench":
      // The data-plane benchmark drives real WireGuard interfaces: same system packages as the tests.
      ensureSystemPackages()
      // One at a time: benchmarks that share two cores measure each other.
      status = turbo(pnpm, "bench", ["--concurrency=1", ...args])
      if (status === 0) status = run(process.execPath, [join(root, "scripts", "benchmarks-report.mjs")])
      break
    case "soak":
      status = soak(pnpm)
      break
    case "build":
    case "typecheck":
      status = turbo(pnpm, task, args)
      break
    default:
      log(`unknown task "${task}"; use test, demo, demo-real, bench, soak, build or typecheck`)
      status = 2
  }
  process.exit(status)
} catch (error) {
  log(error instanceof Error ? error.message : String(error))
  process.exit(1)
}
