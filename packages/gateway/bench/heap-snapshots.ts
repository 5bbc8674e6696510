/**
 * What a session holds, by kind of object: a gateway with N provisioned instances is snapshotted
 * idle (V8 heap snapshot; taking one collects garbage first), then again once N agents of the
 * load generator (the realistic heartbeat, every 5 s) are connected and have heartbeated a while.
 * Prints the difference per session, grouped by V8's node type and name (a constructor, or a
 * string's first characters), largest first. The snapshots stay in the printed directory for
 * Chrome DevTools (Memory tab, load both and compare).
 *
 *   BENCH_HEAP_SESSIONS=2000  BENCH_HEAP_TOP=40  (defaults)
 */
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { next, sleep, start } from "./processes"

const SESSIONS = Number(process.env.BENCH_HEAP_SESSIONS ?? 2_000)
const TOP = Number(process.env.BENCH_HEAP_TOP ?? 40)

interface Snapshot {
  readonly snapshot: { readonly meta: { readonly node_fields: Array<string>; readonly node_types: [Array<string>, ...Array<unknown>] } }
  readonly nodes: Array<number>
  readonly strings: Array<string>
}

/** Self size and count per "type name" (strings by their first 40 characters). */
const bytesByKind = (file: string) => {
  const s = JSON.parse(readFileSync(file, "utf8")) as Snapshot
  const fields = s.snapshot.meta.node_fields
  const types = s.snapshot.meta.node_types[0]
  const [type, name, size] = [fields.indexOf("type"), fields.indexOf("name"), fields.indexOf("self_size")]
  const kinds = new Map<string, { count: number; bytes: number }>()
  for (let i = 0; i < s.nodes.length; i += fields.length) {
    const kind = types[s.nodes[i + type]!]!
    const label = kind.endsWith("string") ? JSON.stringify(s.strings[s.nodes[i + name]!]!.slice(0, 40)) : kind === "number" ? "" : s.strings[s.nodes[i + name]!]!.slice(0, 80)
    const key = `${kind} ${label}`
    const entry = kinds.get(key) ?? { count: 0, bytes: 0 }
    entry.count++
    entry.bytes += s.nodes[i + size]!
    kinds.set(key, entry)
  }
  return kinds
}

const dir = mkdtempSync(join(tmpdir(), "fleetplane-heap-"))
const server = start("bench-server.ts", ["gateway", String(SESSIONS), "0", dir])
try {
  const ready = await next<{ url: string; credentials: string }>(server, "ready", 600_000)
  const snapshot = async (file: string) => {
    const written = next<{ file: string }>(server, "heap-snapshot", 300_000)
    server.send({ type: "heap-snapshot", file: join(dir, file) })
    return (await written).file
  }
  await sleep(3_000)
  const idle = await snapshot("idle.heapsnapshot")
  const load = start("load-generator.ts", [ready.url, ready.credentials, String(SESSIONS), "5000"])
  try {
    await next(load, "connected", 600_000)
    // Past the reclaim after the connects and a few heartbeats of every agent.
    await sleep(15_000)
    const connected = await snapshot("connected.heapsnapshot")
    const [before, after] = [bytesByKind(idle), bytesByKind(connected)]
    const rows = [...after].map(([key, a]) => {
      const b = before.get(key) ?? { count: 0, bytes: 0 }
      return { key, count: (a.count - b.count) / SESSIONS, bytes: (a.bytes - b.bytes) / SESSIONS }
    })
    rows.sort((x, y) => y.bytes - x.bytes)
    const total = rows.reduce((sum, row) => sum + row.bytes, 0)
    console.log(`heap per session, ${SESSIONS} sessions: ${total.toFixed(0)} bytes (snapshots in ${dir})`)
    console.log("bytes/session  objects/session  kind")
    for (const row of rows.slice(0, TOP)) console.log(`${row.bytes.toFixed(1).padStart(13)}  ${row.count.toFixed(2).padStart(15)}  ${row.key}`)
  } finally {
    load.kill()
  }
} finally {
  server.kill()
}
process.exit(0)
