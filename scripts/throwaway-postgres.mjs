// A throwaway PostgreSQL for tests: initdb + pg_ctl on a temporary directory, listening on
// 127.0.0.1 at a free port (and a unix socket in the same directory), removed on stop.
// Debian's `postgresql` package provides the binaries; `npm test` installs it with apt-get
// when it is missing (scripts/workspace.mjs). As root, the server runs as the `postgres`
// user (PostgreSQL refuses to run as root).
//
// Used as a vitest globalSetup: the URL of a superuser connection is handed to the tests as
// FLEETPLANE_TEST_POSTGRES_URL. fsync is off (test data only): commits survive the server being
// stopped (tests pause and resume it), not the machine losing power.
import { execFileSync, spawnSync } from "node:child_process"
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

const fail = (message) => {
  throw new Error(`throwaway PostgreSQL: ${message}`)
}

function binDir() {
  try {
    const dir = execFileSync("pg_config", ["--bindir"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
    if (existsSync(join(dir, "initdb"))) return dir
  } catch {}
  const root = "/usr/lib/postgresql"
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "initdb"))).sort((a, b) => Number(b) - Number(a))
  return versions.length === 0 ? undefined : join(root, versions[0], "bin")
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
    server.on("error", reject)
  })

export async function startPostgres() {
  const bin = binDir()
  if (bin === undefined) fail("PostgreSQL is not installed. `npm test` installs it (apt-get install postgresql); or install it yourself")
  const asRoot = process.getuid?.() === 0
  const dir = mkdtempSync(join(tmpdir(), "fleetplane-pg-"))
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim())
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim())
    chownSync(dir, uid, gid)
  }
  const run = (tool, args) => {
    const [command, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", join(bin, tool), ...args]] : [join(bin, tool), args]
    const result = spawnSync(command, argv, { encoding: "utf8" })
    if (result.status !== 0) fail(`${tool} failed (${result.status}): ${result.stderr || result.stdout || result.error}`)
    return result.stdout
  }
  const data = join(dir, "data")
  run("initdb", ["-D", data, "-U", "fleetplane", "--auth=trust", "--encoding=UTF8", "--no-sync", "--no-instructions"])
  const port = await freePort()
  const settings = ["-p", port, "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200"]
  try {
    run("pg_ctl", ["-D", data, "-l", join(dir, "server.log"), "-w", "-t", "60", "-o", settings.join(" "), "start"])
  } catch (error) {
    const log = existsSync(join(dir, "server.log")) ? readFileSync(join(dir, "server.log"), "utf8").slice(-2000) : ""
    rmSync(dir, { recursive: true, force: true })
    fail(`${error.message}\n${log}`)
  }
  const ctl = (args) => run("pg_ctl", ["-D", data, ...args])
  return {
    url: `postgres://fleetplane@127.0.0.1:${port}/postgres`,
    /** CPU time the server has used so far (ms): its processes, live and exited (benchmarks: CPU per operation). */
    cpuMs: () => serverCpuMs(data),
    /** Stops the server (an outage), keeping its data; `resume` starts it again on the same port. */
    pause: () => ctl(["-m", "immediate", "-w", "stop"]),
    resume: () => ctl(["-l", join(dir, "server.log"), "-w", "-t", "60", "-o", settings.join(" "), "start"]),
    stop: () => {
      spawnSync(asRoot ? "runuser" : join(bin, "pg_ctl"), asRoot ? ["-u", "postgres", "--", join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"] : ["-D", data, "-m", "immediate", "-w", "stop"])
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

// Linux's /proc: the postmaster's own and its reaped children's CPU, plus its live children's (clock ticks of 10 ms).
const TICK_MS = 10
const statFields = (pid) => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8")
    return text.slice(text.lastIndexOf(")") + 2).split(" ") // fields from the 3rd on (state)
  } catch {
    return undefined // exited meanwhile
  }
}
function serverCpuMs(data) {
  const postmaster = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0])
  const own = statFields(postmaster)
  if (own === undefined) return Number.NaN
  // utime, stime, cutime, cstime are the 14th-17th fields (index 11-14 counted from the 3rd).
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14])
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    const fields = statFields(entry)
    if (fields !== undefined && Number(fields[1]) === postmaster) ticks += Number(fields[11]) + Number(fields[12])
  }
  return ticks * TICK_MS
}

// vitest globalSetup
let server
export async function setup() {
  server = await startPostgres()
  process.env.FLEETPLANE_TEST_POSTGRES_URL = server.url
}
export async function teardown() {
  server?.stop()
}
