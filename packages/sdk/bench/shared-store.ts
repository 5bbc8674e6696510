/**
 * The inputs of the several-gateways estimate in BENCHMARKS.md (#20), on a throwaway PostgreSQL:
 * how many shared-liveness rows one statement upserts and reads per second (the store's own
 * `publishLiveness` / `readLiveness`), and how many commits carrying one NOTIFY go through per
 * second with 4 listeners, from one connection and from eight — beside the same transactions
 * without the NOTIFY (what the round trips alone allow).
 *
 *   pnpm bench:shared      (packages/sdk)
 */
// @ts-expect-error: a plain-JS script shared with the tests' globalSetup
import { startPostgres } from "../../../scripts/throwaway-postgres.mjs"
import { Effect, Layer, ManagedRuntime } from "effect"
import pg from "pg"
import { fleetServicesLayer, postgresStoreLayer, Store, type SharedLivenessRow } from "../src/index"

const postgres = await startPostgres()
try {
  const runtime = ManagedRuntime.make(fleetServicesLayer({ runSensor: false }).pipe(Layer.provideMerge(postgresStoreLayer({ url: postgres.url }))))
  const shared = (await runtime.runPromise(Effect.service(Store))).shared!
  const rows = (count: number, at: number): Array<SharedLivenessRow> =>
    Array.from({ length: count }, (_, i) => ({
      instance_id: `ins_${String(i).padStart(24, "0")}` as SharedLivenessRow["instance_id"],
      gateway: "gw-1",
      last_seen_at: at,
      connected: true,
      k3s: { service: "active", node_ready: true },
      wireguard: [{ network_id: "net_0123456789abcdefghijklm", peers: 40, fresh_handshakes: 40 }],
      load: { cpu_ratio: 0.1, memory_ratio: 0.2 },
      vip_probes: []
    }))
  const median = (values: Array<number>) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!
  const timed = async (f: () => Promise<unknown>) => {
    const start = performance.now()
    await f()
    return performance.now() - start
  }
  for (const count of [2_000, 10_000]) {
    await runtime.runPromise(shared.publishLiveness(rows(count, 1)))
    const writes: Array<number> = []
    const reads: Array<number> = []
    for (let trial = 0; trial < 5; trial++) writes.push(await timed(() => runtime.runPromise(shared.publishLiveness(rows(count, 10 + trial)))))
    for (let trial = 0; trial < 5; trial++) reads.push(await timed(() => runtime.runPromise(shared.readLiveness(0))))
    console.log(
      `shared liveness, ${count.toLocaleString("en-US")} rows per statement: upsert ${((count / median(writes)) * 1000).toFixed(0)} rows/s, read ${((count / median(reads)) * 1000).toFixed(0)} rows/s (medians of 5)`
    )
  }
  await runtime.dispose()

  // NOTIFY: 4 listeners (other gateways); senders commit transactions of one NOTIFY each.
  const connect = async () => {
    const client = new pg.Client({ connectionString: postgres.url })
    await client.connect()
    return client
  }
  const listeners = await Promise.all(
    Array.from({ length: 4 }, async () => {
      const client = await connect()
      await client.query("LISTEN bench")
      let received = 0
      client.on("notification", () => received++)
      return { client, received: () => received }
    })
  )
  // A signal as gateways send them: events appended and configs changed.
  const payload = JSON.stringify({ o: "gw-1", s: [{ t: "E", a: "acc_0123456789abcdefghijklm", f: 123456, l: 123457 }, { t: "D", i: ["ins_a", "ins_b", "ins_c"] }] })
  const COMMITS = 4_000
  for (const senders of [1, 8]) {
    const clients = await Promise.all(Array.from({ length: senders }, connect))
    const commit = (statement: string) =>
      Promise.all(
        clients.map(async (client) => {
          for (let i = 0; i < COMMITS / senders; i++) {
            await client.query("BEGIN")
            await client.query(statement, [payload])
            await client.query("COMMIT")
          }
        })
      )
    const before = listeners.map((listener) => listener.received())
    const notifyingMs = await timed(async () => {
      await commit("SELECT pg_notify('bench', $1)")
      while (listeners.some((listener, i) => listener.received() - before[i]! < COMMITS)) await new Promise((resolve) => setTimeout(resolve, 5))
    })
    const plainMs = await timed(() => commit("SELECT $1::text"))
    console.log(
      `commits with one NOTIFY (${payload.length} bytes), ${senders === 1 ? "one connection" : `${senders} connections`}, 4 listeners: ${((COMMITS / notifyingMs) * 1000).toFixed(0)}/s (same transactions without NOTIFY: ${((COMMITS / plainMs) * 1000).toFixed(0)}/s)`
    )
    await Promise.all(clients.map((client) => client.end()))
  }
  await Promise.all(listeners.map(({ client }) => client.end()))
} finally {
  postgres.stop()
}
