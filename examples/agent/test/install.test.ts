/**
 * Installable for a real fleet: the gateway and the agent packed as the release script packs
 * them (scripts/pack-release.mjs), installed with `npm install -g` into an empty prefix with the
 * registry out of reach, then used as an operator would: the installed `fleetplane` runs a
 * gateway and the installed `fleetplane-agent` (simulating k3s) bootstraps a cluster that the
 * installed CLI waits for. The systemd units come with the packages.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process"
import { existsSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterAll, describe, expect, it } from "vitest"

const run = promisify(execFile)
const root = join(__dirname, "..", "..", "..")
const children: Array<ChildProcess> = []
afterAll(() => {
  for (const child of children) child.kill("SIGTERM")
})

/** Starts a long-running installed program; resolves with the first stdout/stderr line matching `ready`. */
const start = (command: string, args: ReadonlyArray<string>, ready: RegExp, env: NodeJS.ProcessEnv = {}) =>
  new Promise<RegExpExecArray>((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    children.push(child)
    let seen = ""
    const onData = (chunk: Buffer) => {
      seen += chunk.toString()
      const match = ready.exec(seen)
      if (match !== null) resolve(match)
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.on("exit", (code) => reject(new Error(`${command} exited ${code} before it was ready:\n${seen}`)))
  })

describe("installing from the packed tarballs", () => {
  it("packs both packages self-contained, installs them offline with npm -g, and the installed binaries run a fleet", async () => {
    const work = mkdtempSync(join(tmpdir(), "fleetplane-install-"))
    const packed = (await run(process.execPath, [join(root, "scripts", "pack-release.mjs"), "--out", join(work, "release")], { cwd: root, maxBuffer: 1 << 24 })).stdout.trim().split("\n")
    expect(packed.map((p) => p.split("/").at(-1))).toEqual(["fleetplane-gateway-0.1.0.tgz", "fleetplane-agent-0.1.0.tgz"])

    // No registry: every dependency must be in the tarballs. (--ignore-scripts keeps the native modules built by the packer.)
    const prefix = join(work, "prefix")
    await run("npm", ["install", "--global", "--offline", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", prefix, ...packed], {
      env: { ...process.env, npm_config_registry: "http://127.0.0.1:9/", npm_config_cache: join(work, "npm-cache") },
      maxBuffer: 1 << 24
    })
    const fleetplane = join(prefix, "bin", "fleetplane")
    const agent = join(prefix, "bin", "fleetplane-agent")
    expect((await run(fleetplane, ["--version"])).stdout.trim()).toBe("0.1.0")
    expect((await run(agent, ["--version"])).stdout.trim()).toBe("0.1.0")
    expect((await run(agent, ["--help"])).stdout).toContain("Usage: fleetplane-agent --gateway")
    for (const unit of ["@fleetplane/gateway/systemd/fleetplane-gateway.service", "@fleetplane/agent/systemd/fleetplane-agent.service"]) {
      expect(existsSync(join(prefix, "lib", "node_modules", unit)), unit).toBe(true)
    }

    // The install guide's first steps, with the installed binaries only.
    const db = join(work, "fleet.db")
    const cli = async (...args: Array<string>) => (await run(fleetplane, args, { env: { ...process.env, ...env } })).stdout
    const env: Record<string, string> = { FLEETPLANE_CONFIG: join(work, "config.yaml") }
    const account = JSON.parse(await cli("-o", "json", "account", "create", "--name", "acme", "--db", db, "--create-db"))
    const key = JSON.parse(await cli("-o", "json", "apikey", "create", "--account", account.id, "--role", "admin", "--db", db))
    const started = await start(fleetplane, ["gateway", "--db", db, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-level", "info"], /"agent_url":"([^"]+)","admin_url":"([^"]+)"/)
    env.FLEETPLANE_URL = started[2]!
    env.FLEETPLANE_API_KEY = key.api_key
    await cli("networks", "create", "--name", "prod", "--handle", "prod", "--pod-prefix", "10.42.0.0/16")
    await cli("templates", "create", "--name", "servers")
    await cli("templates", "assign", "--template", "servers", "--module", "k3s-server", "--cluster-name", "k3s-prod")
    await cli("nodes", "create", "--hostname", "k3s-prod-1", "--template", "servers")
    const instance = JSON.parse(await cli("-o", "json", "instances", "provision", "--node", "k3s-prod-1"))
    await cli("peers", "attach", "--network", "prod", "--instance", instance.id)
    const credentialFile = join(work, "agent.credential")
    writeFileSync(credentialFile, instance.agent_credential, { mode: 0o600 })
    await start(
      agent,
      ["--gateway", started[1]!, "--instance", instance.id, "--credential-file", credentialFile, "--state-dir", join(work, "agent-state"), "--root", join(work, "agent-root"), "--simulate"],
      /session up/
    )
    expect(await cli("clusters", "wait", "k3s-prod", "--timeout", "60s")).toContain("cluster k3s-prod is active")
    expect(await cli("-o", "name", "clusters", "list")).toBe("cluster/k3s-prod\n")
  }, 240_000)
})
