/**
 * Crash safety: a real gateway process is killed with SIGKILL at random moments while agents
 * join, heartbeat and ack pushes and an operator runs actions — on SQLite and on PostgreSQL.
 * After every restart the store passes its integrity check (`PRAGMA integrity_check` on
 * SQLite), every action that was answered 200 is still there, no
 * cluster is half-created, VIP epochs only move forward, and no agent is ever sent a config
 * version at or below one it already applied.
 *
 * `npm test` runs a few kills; `pnpm test:soak` runs FLEETPLANE_SOAK_KILLS (default 50).
 */
import { fork, type ChildProcess } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { createFleet, Store, type AccountId, type NetworkId } from "@fleetplane/sdk"
import { adminClient, freshPostgresDatabase } from "./support/gateway-harness"
import { recordSoak } from "./support/soak-report"
import { TestAgent } from "./support/test-agent"

const KILLS = Number(process.env.FLEETPLANE_SOAK_KILLS ?? (process.env.FLEETPLANE_SOAK ? 50 : 3))
const cli = new URL("../src/cli.ts", import.meta.url).pathname
let child: ChildProcess | undefined
afterEach(() => child?.kill("SIGKILL"))

const freePort = async () => {
  const { createServer } = await import("node:net")
  return new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })
}

/** Where the state lives: a SQLite file, or a PostgreSQL database. */
type StoreChoice = { readonly database: string } | { readonly postgres: string }

const startGatewayProcess = async (store: StoreChoice, agentPort: number, adminPort: number) => {
  const gateway = fork(cli, ["gateway", ...("postgres" in store ? ["--postgres", store.postgres] : ["--db", store.database]), "--listen", `127.0.0.1:${agentPort}`, "--admin-listen", `127.0.0.1:${adminPort}`, "--heartbeat-interval", "200", "--silence-threshold", "1000", "--log-level", "error"], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "ignore", "inherit", "ipc"]
  })
  for (let i = 0; i < 200; i++) {
    const up = await fetch(`http://127.0.0.1:${adminPort}/healthz`).then((r) => r.ok).catch(() => false)
    if (up) return gateway
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error("gateway did not start")
}

describe("crash safety (SIGKILL)", () => {
  it.each(["sqlite", "postgres"] as const)(`on %s: survives ${KILLS} kill -9 at random points with nothing acknowledged lost`, async (backend) => {
    const store: StoreChoice =
      backend === "sqlite" ? { database: join(mkdtempSync(join(tmpdir(), "fleetplane-crash-")), "fleet.db") } : { postgres: await freshPostgresDatabase() }
    const setup = await createFleet({ ...store, runSensor: false })
    const account = await setup.createAccount({ name: "acme" })
    const { api_key } = await setup.createApiKey({ account_id: account.id, name: "crash", role: "admin" })
    await setup.close()
    const agentPort = await freePort()
    const adminPort = await freePort()
    const admin = adminClient({ adminUrl: `http://127.0.0.1:${adminPort}` }, api_key)
    const acknowledged: Array<string> = []
    const instances: Array<{ instanceId: string; credential: string; applied: Map<string, number> }> = []
    let violations = 0
    let requests = 0
    let networkId: string | undefined
    let templateId: string | undefined

    for (let round = 0; round < KILLS; round++) {
      child = await startGatewayProcess(store, agentPort, adminPort)
      const started = Date.now()
      const killAfter = 100 + Math.floor(Math.random() * 500)
      const sockets: Array<TestAgent> = []
      const workload = (async () => {
        if (networkId === undefined) {
          const network = await admin.action("system_sdwan_create_network", { name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
          if (network.status === 200) networkId = network.body.id
          const template = await admin.action("system_create_template", { name: "servers" })
          if (template.status === 200) templateId = template.body.id
          if (templateId !== undefined) await admin.action("system_assign_module_to_template", { template_id: templateId, module_name: "k3s-server" })
        }
        // Agents reconnect with what they applied and must never be sent anything older.
        for (const instance of instances) {
          const agent = await TestAgent.connect(`ws://127.0.0.1:${agentPort}/v1/agent`).catch(() => undefined)
          if (agent === undefined) continue
          sockets.push(agent)
          // Checked as each push arrives, before it is acked: never a version the agent already applied.
          agent.socket.on("message", () => {
            const last = agent.received.at(-1)
            if (last?.type !== "config_push") return
            if (last.body.version <= (instance.applied.get(`${last.body.kind}/${last.body.key}`) ?? 0)) violations++
          })
          agent.hello(instance.instanceId, instance.credential, {
            applied: [...instance.applied].map(([composite, version]) => ({ kind: composite.split("/")[0] as "k3s", key: composite.split("/")[1]!, version })),
            wireguard_keys: networkId === undefined ? [] : [{ network_id: networkId, public_key: agent.keys.publicKey }]
          })
        }
        while (Date.now() - started < killAfter + 1_000) {
          requests++
          const name = `t-${round}-${requests}`
          const created = await admin.action("system_create_template", { name }).catch(() => undefined)
          if (created?.status === 200) acknowledged.push(created.body.id)
          if (templateId !== undefined && networkId !== undefined && instances.length < 6 && Math.random() < 0.3) {
            const node = await admin.action("system_create_node", { hostname: `n-${round}-${requests}`, node_template_id: templateId }).catch(() => undefined)
            const instance = node?.status === 200 ? await admin.action("system_provision_instance", { node_id: node.body.id }).catch(() => undefined) : undefined
            if (instance?.status === 200) {
              const attached = await admin.action("system_sdwan_attach_peer", { network_id: networkId, node_instance_id: instance.body.id }).catch(() => undefined)
              if (attached?.status === 200) instances.push({ instanceId: instance.body.id, credential: instance.body.agent_credential, applied: new Map() })
            }
          }
          for (const [index, agent] of sockets.entries()) {
            if (agent.closed !== undefined) continue
            agent.heartbeat(networkId === undefined ? [] : [networkId])
            if (Math.random() < 0.2) agent.send({ type: "join_request", body: { request_id: `j${requests}`, module_name: "k3s-server", target_cluster_id: null } })
            // Ack what arrived and remember it as applied (the agent's own durable state).
            for (const push of agent.pushes()) {
              const key = `${push.kind}/${push.key}`
              if ((instances[index]!.applied.get(key) ?? 0) < push.version) {
                agent.send({ type: "config_ack", body: { kind: push.kind, key: push.key, version: push.version, status: "applied" } })
                instances[index]!.applied.set(key, push.version)
              }
            }
          }
        }
      })().catch(() => undefined)
      await new Promise((resolve) => setTimeout(resolve, killAfter))
      child.kill("SIGKILL")
      await new Promise((resolve) => child!.once("exit", resolve))
      await workload
      for (const socket of sockets) socket.close()

      // Check the state as the next start will find it.
      const fleet = await createFleet({ ...store, runSensor: false })
      try {
        const store = await fleet.run(Effect.service(Store))
        expect(await fleet.run(store.integrityCheck)).toBe("ok")
        for (const id of acknowledged) {
          const template = await fleet.run(store.transaction((tx) => tx.getTemplate(account.id as AccountId, id as never)))
          expect(template, `acknowledged template ${id} lost`).toBeDefined()
        }
        if (networkId !== undefined) {
          const network = await fleet.run(store.transaction((tx) => tx.getNetwork(account.id as AccountId, networkId as NetworkId)))
          expect(network).toBeDefined()
        }
        const { clusters } = (await fleet.forAccount(account.id).execute("kubernetes_list_clusters", {})) as { clusters: Array<{ id: string }> }
        for (const cluster of clusters) {
          const detail = (await fleet.forAccount(account.id).execute("kubernetes_get_cluster", { id: cluster.id })) as { virtual_ip: unknown; control_plane_count: number }
          expect(detail.virtual_ip, `cluster ${cluster.id} has no VIP: half-created`).not.toBeNull()
          expect(detail.control_plane_count).toBeGreaterThanOrEqual(1)
        }
        // R13: promotions only ever move an epoch forward by one.
        const events = await fleet.forAccount(account.id).events.list({ limit: 1000 })
        const epochs = new Map<string, number>()
        for (const event of events.filter((e) => e.type === "sdwan.vip_failover_promoted")) {
          const previous = epochs.get(String(event.data.virtual_ip_id)) ?? 1
          expect(event.data.epoch).toBe(previous + 1)
          epochs.set(String(event.data.virtual_ip_id), Number(event.data.epoch))
        }
      } finally {
        await fleet.close()
      }
    }
    expect(violations, "a config version at or below an applied one was sent").toBe(0)
    expect(acknowledged.length).toBeGreaterThan(KILLS)
    recordSoak({ suite: `crash safety (SIGKILL, ${backend})`, faults: KILLS, inputs: requests, sessions: instances.length, violations, lost: 0 })
    console.log(`crash safety on ${backend}: ${KILLS} SIGKILLs, ${requests} operator requests attempted (${acknowledged.length} acknowledged, 0 lost), ${instances.length} agents, integrity ok, invariant violations ${violations}`)
  }, 60_000 + KILLS * 10_000)
})
