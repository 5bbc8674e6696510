import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { next, sleep, start } from "./processes"
const sessions = Number(process.env.N ?? 2000)
const dir = mkdtempSync(join(tmpdir(), `fleetplane-heap-`))
const server = start("bench-server.ts", ["gateway", String(sessions), "0", dir])
const ready = await next<{ url: string; credentials: string }>(server, "ready")
const snap = async (file: string) => { const p = next<any>(server, "heap-snapshot", 120_000); server.send({ type: "heap-snapshot", file }); console.log((await p).file) }
await sleep(3000)
await snap("/tmp/scratch/idle.heapsnapshot")
const load = start("load-generator.ts", [ready.url, ready.credentials, String(sessions), "5000"])
await next(load, "connected", 300_000)
await sleep(15_000)
await snap("/tmp/scratch/conn.heapsnapshot")
load.kill(); server.kill()
process.exit(0)
