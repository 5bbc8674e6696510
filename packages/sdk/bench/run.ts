/**
 * SDK benchmark: subnet overlap checks with 100,000 networks in one account (R6), join
 * validations on SQLite and on PostgreSQL (a throwaway local server), kubeconfig generation, and
 * the idle cost of the background loops by VIP count (bench/idle.ts). Each figure is printed
 * beside a baseline measured in the same run. Writes bench-results.json.
 */
import { writeFileSync } from "node:fs"
import { availableParallelism } from "node:os"
// @ts-expect-error: a plain-JS script shared with the tests' globalSetup
import { startPostgres } from "../../../scripts/throwaway-postgres.mjs"
import { Effect, Layer, ManagedRuntime } from "effect"
import pg from "pg"
import { measureIdleInOwnProcess } from "./idle"
import { ensureNoPodPrefixOverlap, prefixRangeOf } from "../src/network/pod-prefix-overlap"
import { formatAddress, overlaps, parseCidr, type Cidr } from "../src/network/cidr"
import {
  Accounts,
  Actions,
  AgentPort,
  createClusterCa,
  fleetServicesLayer,
  issueClientCertificate,
  newId,
  renderKubeconfig,
  postgresStoreLayer,
  sqliteStoreLayer,
  Store,
  type AccountId
} from "../src/index"

const NETWORKS = Number(process.env.BENCH_NETWORKS ?? 100_000)
const JOINS = Number(process.env.BENCH_JOINS ?? 2_000)
const PG_JOINS = Number(process.env.BENCH_PG_JOINS ?? 500)

interface Figure {
  readonly name: string
  readonly value: number
  readonly unit: string
  readonly baseline?: { readonly name: string; readonly value: number }
  readonly target?: string
}
const figures: Array<Figure> = []

const time = async <A>(f: () => Promise<A>): Promise<[A, number]> => {
  const start = process.hrtime.bigint()
  const result = await f()
  return [result, Number(process.hrtime.bigint() - start) / 1e6]
}

const store = sqliteStoreLayer({ filename: ":memory:" })
const runtime = ManagedRuntime.make(fleetServicesLayer({ runSensor: false }).pipe(Layer.provideMerge(store)))
const run = <A, E>(effect: Effect.Effect<A, E, any>) => runtime.runPromise(effect as Effect.Effect<A, E, never>)

// --- Seed 100,000 networks with distinct IPv6 /56 pod prefixes ---------------------------------
const base = (parseCidr("fd00::/16") as { ok: true; cidr: Cidr }).cidr.start
const prefixOf = (i: number) => `${formatAddress(6, base + (BigInt(i) << 72n))}/56`
const account = await run(Effect.flatMap(Effect.service(Accounts), (a) => a.create("bench")))
const accountId = account.id as AccountId
const [, seedMs] = await time(() =>
  run(
    Effect.flatMap(Effect.service(Store), (s) =>
      s.transaction((tx) =>
        Effect.gen(function* () {
          for (let i = 0; i < NETWORKS; i++) {
            const cidr = (parseCidr(prefixOf(i * 2)) as { ok: true; cidr: Cidr }).cidr
            yield* tx.insertNetwork(
              {
                id: newId("network"),
                account_id: accountId,
                name: `n${i}`,
                handle: i.toString(36).slice(-6),
                interface_name: "wg-sdwan-x",
                overlay_prefix: `fd01:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`,
                // Distinct /28s in 10.0.0.0/8 (the bench measures pod prefix checks; these only need to be unique).
                overlay_ipv4_prefix: `10.${((i * 16) >> 16) & 255}.${((i * 16) >> 8) & 255}.${(i * 16) & 255}/28`,
                pod_subnet_prefix: cidr.canonical,
                listen_port: 51820,
                created_at: "2026-01-01T00:00:00.000Z",
                ula_global_id: null,
                subnet_index: null
              },
              prefixRangeOf(cidr)
            )
          }
        })
      )
    )
  )
)
console.log(`seeded ${NETWORKS.toLocaleString("en-US")} networks in ${(seedMs / 1000).toFixed(1)} s`)

// --- Overlap checks: indexed (R6) vs a linear scan over the same prefixes in memory ---------------
const CHECKS = 20_000
const candidates = Array.from({ length: CHECKS }, (_, i) => (parseCidr(prefixOf((i * 7919) % (NETWORKS * 2))) as { ok: true; cidr: Cidr }).cidr)
const [collisions, indexedMs] = await time(() =>
  run(
    Effect.flatMap(Effect.service(Store), (s) =>
      s.transaction((tx) =>
        Effect.gen(function* () {
          let found = 0
          for (const cidr of candidates) {
            const result = yield* Effect.exit(ensureNoPodPrefixOverlap(tx, accountId, cidr))
            if (result._tag === "Failure") found++
          }
          return found
        })
      )
    )
  )
)
const existing = Array.from({ length: NETWORKS }, (_, i) => (parseCidr(prefixOf(i * 2)) as { ok: true; cidr: Cidr }).cidr)
const SCAN_CHECKS = 200
const [, scanMs] = await time(async () => {
  let found = 0
  for (const cidr of candidates.slice(0, SCAN_CHECKS)) if (existing.some((e) => overlaps(e, cidr))) found++
  return found
})
const perCheckUs = (indexedMs * 1000) / CHECKS
figures.push({
  name: `overlap check, ${NETWORKS.toLocaleString("en-US")} networks in the account (indexed, SQLite)`,
  value: perCheckUs,
  unit: "µs/check",
  baseline: { name: "linear scan of the same prefixes in memory", value: (scanMs * 1000) / SCAN_CHECKS },
  target: "< 50 µs"
})
if (collisions !== candidates.filter((_, i) => ((i * 7919) % (NETWORKS * 2)) % 2 === 0).length) throw new Error("overlap check found the wrong number of collisions")

// --- Join validations (SQLite, then PostgreSQL) ------------------------------------------------------
type Run = <A, E>(effect: Effect.Effect<A, E, any>) => Promise<A>
/** With `serverCpuMs` (PostgreSQL's processes): also the machine's CPU per join, and the rate that CPU allows on this machine's cores. */
const measureJoins = async (run: Run, accountId: AccountId, backend: string, joins: number, concurrency = 1, serverCpuMs?: () => number) => {
  const exec = (name: string, input: Record<string, unknown>) => run(Effect.flatMap(Effect.service(Actions), (a) => a.execute(accountId, name, input))) as Promise<any>
  const network = await exec("system_sdwan_create_network", { name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
  const servers = await exec("system_create_template", { name: "servers" })
  await exec("system_assign_module_to_template", { template_id: servers.id, module_name: "k3s-server" })
  const workers = await exec("system_create_template", { name: "workers" })
  await exec("system_assign_module_to_template", { template_id: workers.id, module_name: "k3s-agent" })
  const port = await run(Effect.service(AgentPort))
  const agent = async (hostname: string, templateId: string) => {
    const node = await exec("system_create_node", { hostname, node_template_id: templateId })
    const instance = await exec("system_provision_instance", { node_id: node.id })
    await exec("system_sdwan_attach_peer", { network_id: network.id, node_instance_id: instance.id })
    return run(port.authenticate(instance.id, instance.agent_credential))
  }
  const bootstrap = await agent("server-1", servers.id)
  const created = await run(port.joinRequest(bootstrap, { request_id: "r", module_name: "k3s-server", target_cluster_id: null }))
  if (!created.accepted) throw new Error("bootstrap failed")
  await run(port.statusReport(bootstrap, { k3s: { service: "active", node_ready: true }, modules: [] }))
  const identities: Array<Awaited<ReturnType<typeof agent>>> = []
  for (let i = 0; i < joins; i++) identities.push(await agent(`worker-${i}`, workers.id))
  const processCpuBefore = process.cpuUsage()
  const loopBefore = performance.eventLoopUtilization()
  const serverCpuBefore = serverCpuMs?.()
  const [, joinMs] = await time(async () => {
    let next = 0
    // `concurrency` agents joining at once (each join is still one atomic transaction).
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < identities.length) {
          const identity = identities[next++]!
          const outcome = await run(port.joinRequest(identity, { request_id: "r", module_name: "k3s-agent", target_cluster_id: created.cluster_id }))
          if (!outcome.accepted) throw new Error(`join rejected: ${outcome.code}`)
        }
      })
    )
  })
  const processCpu = process.cpuUsage(processCpuBefore)
  const loop = performance.eventLoopUtilization(loopBefore)
  const serverCpu = serverCpuBefore === undefined ? undefined : serverCpuMs!() - serverCpuBefore
  const [, emptyTxMs] = await time(async () => {
    for (let i = 0; i < joins; i++) await run(Effect.flatMap(Effect.service(Store), (s) => s.transaction(() => Effect.void)))
  })
  figures.push({
    name: `join validation (R8-R11, atomic, with configs recorded), ${concurrency === 1 ? "sequential" : `${concurrency} at a time`}, ${backend}`,
    value: joins / (joinMs / 1000),
    unit: "joins/s",
    baseline: { name: `empty store transaction through the same runtime (${backend})`, value: joins / (emptyTxMs / 1000) },
    target: backend === "SQLite" ? "thousands/s" : concurrency === 1 ? ">= 1,500/s" : ">= 1,500/s, and more than one at a time"
  })
  const processMs = (processCpu.user + processCpu.system) / 1000 / joins
  const how = concurrency === 1 ? "sequential" : `${concurrency} at a time`
  if (serverCpu !== undefined) {
    // Both sides on this machine's cores: the joins/s their CPU allows if nothing else limited it.
    const serverMs = serverCpu / joins
    const cores = availableParallelism()
    figures.push({
      name: `CPU per join, ${how} (this process ${processMs.toFixed(2)} ms + PostgreSQL ${serverMs.toFixed(2)} ms; ${cores} cores allow ${Math.round((cores * 1000) / (processMs + serverMs))} joins/s)`,
      value: processMs + serverMs,
      unit: "ms/join"
    })
  } else {
    // No server and no round trips: the join's own work, the floor under the PostgreSQL figures.
    // A gateway decides joins on its one event loop, so its busy time per join (not the process's
    // CPU, which also counts V8's helper threads) bounds what one gateway can do.
    const loopMs = loop.active / joins
    figures.push({
      name: `event loop busy per join, ${how}, ${backend} (process CPU ${processMs.toFixed(2)} ms with V8's helper threads; one event loop allows ${Math.round(1000 / loopMs)} joins/s)`,
      value: loopMs,
      unit: "ms/join"
    })
  }
}
await measureJoins(run, accountId, "SQLite", JOINS)
// A fresh account: the first already holds the sequential run's network and cluster.
const secondAccount = await run(Effect.flatMap(Effect.service(Accounts), (a) => a.create("bench-8")))
await measureJoins(run, secondAccount.id as AccountId, "SQLite", JOINS, 8)

// PostgreSQL on loopback: a throwaway server, as the tests use (scripts/throwaway-postgres.mjs).
const postgres = await startPostgres()
try {
  const pgRuntime = ManagedRuntime.make(fleetServicesLayer({ runSensor: false }).pipe(Layer.provideMerge(postgresStoreLayer({ url: postgres.url }))))
  const pgRun: Run = (effect) => pgRuntime.runPromise(effect as Effect.Effect<any, any, never>)
  for (const concurrency of [1, 8]) {
    // A fresh account each time: the same cluster shape, nothing left from the previous run.
    const pgAccount = await pgRun(Effect.flatMap(Effect.service(Accounts), (a) => a.create(`bench-${concurrency}`)))
    await measureJoins(pgRun, pgAccount.id as AccountId, "PostgreSQL", PG_JOINS, concurrency, postgres.cpuMs)
  }
  await pgRuntime.dispose()
  // The ceiling under every PostgreSQL figure: bare round trips (SELECT $1) through `pg`, one
  // connection and eight, on the same server. A join is 17 statements (BENCHMARKS.md).
  for (const connections of [1, 8]) {
    const pool = new pg.Pool({ connectionString: postgres.url, max: connections })
    const perConnection = 2_000
    const [, selectMs] = await time(() =>
      Promise.all(
        Array.from({ length: connections }, async () => {
          const client = await pool.connect()
          for (let i = 0; i < perConnection; i++) await client.query("SELECT $1::int", [i])
          client.release()
        })
      )
    )
    await pool.end()
    figures.push({ name: `bare statements through pg (SELECT $1), ${connections === 1 ? "one connection" : `${connections} connections`}, PostgreSQL`, value: (connections * perConnection) / (selectMs / 1000), unit: "statements/s" })
  }
} finally {
  postgres.stop()
}

// --- Kubeconfig generation -------------------------------------------------------------------------
const ca = await createClusterCa("bench", new Date())
const KUBECONFIGS = 300
const [, kubeMs] = await time(async () => {
  for (let i = 0; i < KUBECONFIGS; i++) {
    const client = await issueClientCertificate(ca, "admin", "system:masters", new Date())
    renderKubeconfig({ clusterName: "bench", clusterId: "clu_bench", apiEndpoint: "https://[fd00::100]:6443", caCertPem: ca.certPem, clientCertPem: client.certPem, clientKeyPem: client.keyPem })
  }
})
const [, renderOnlyMs] = await time(async () => {
  for (let i = 0; i < KUBECONFIGS; i++) {
    renderKubeconfig({ clusterName: "bench", clusterId: "clu_bench", apiEndpoint: "https://[fd00::100]:6443", caCertPem: ca.certPem, clientCertPem: ca.certPem, clientKeyPem: ca.keyPem })
  }
})
figures.push({
  name: "kubeconfig with a fresh ECDSA P-256 client certificate",
  value: KUBECONFIGS / (kubeMs / 1000),
  unit: "kubeconfigs/s",
  baseline: { name: "YAML rendering alone (no key generation or signing)", value: KUBECONFIGS / (renderOnlyMs / 1000) }
})

await runtime.dispose()

// --- Idle cost by VIP count (bench/idle.ts) -------------------------------------------------------
// In a process of its own: in this one, collecting what the benchmarks above left (100,000
// networks, thousands of joins) lands in the idle windows (3.2% of a core at 1,000 VIPs in one
// run, 0.5% alone the same day), and a gateway at rest carries no benchmark's garbage.
const idle = measureIdleInOwnProcess()

console.log(`\n@fleetplane/sdk (Node ${process.version})\n`)
for (const figure of figures) {
  const ratio = figure.baseline === undefined ? "" : ` (baseline ${figure.baseline.name}: ${figure.baseline.value.toFixed(1)})`
  console.log(`${figure.name}: ${figure.value.toFixed(1)} ${figure.unit}${figure.target ? ` [target ${figure.target}]` : ""}${ratio}`)
}
writeFileSync(new URL("../bench-results.json", import.meta.url), JSON.stringify({ node: process.version, networks: NETWORKS, figures, idle }, null, 2))
