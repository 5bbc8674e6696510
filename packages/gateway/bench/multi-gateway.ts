/**
 * Several gateways on one PostgreSQL (#22), beside the single-gateway figures of the same run:
 *
 * - silence detection error: when a holder's silence is declared, minus its last heartbeat,
 *   minus the threshold (negative would be early) — holder on the leader (the single-gateway
 *   baseline), on another live gateway, and on a gateway killed with it;
 * - push latency: a token rotation decided on gateway A reaching a member on A (baseline) and
 *   a member on gateway B;
 * - recovery: agents that know both gateways, back in session on the survivor after theirs
 *   is killed (kill -9).
 *
 * Each trial is independent: a fresh database and fresh gateway processes.
 *
 *   BENCH_GATEWAY_TRIALS=5  BENCH_RECOVERY_AGENTS=50  BENCH_ROTATIONS=10  (defaults)
 */
import { fork, type ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import pg from "pg"
import { AgentClient } from "@fleetplane/agent-protocol/client"
import { createFleet } from "@fleetplane/sdk"
import type { GatewayOptions } from "@fleetplane/gateway"
import { TestAgent } from "../test/support/test-agent"
import { percentile, sleep } from "./processes"

const TRIALS = Number(process.env.BENCH_GATEWAY_TRIALS ?? 5)
const RECOVERY_AGENTS = Number(process.env.BENCH_RECOVERY_AGENTS ?? 50)
const ROTATIONS = Number(process.env.BENCH_ROTATIONS ?? 10)
/** Production-like timing, shortened: heartbeats every second, silence after three. */
const TIMING = { heartbeatIntervalMs: 1_000, silenceThresholdMs: 3_000, sensorIntervalMs: 100, livenessSyncMs: 1_000, leaseRetryMs: 1_000 }

const runner = new URL("../test/support/gateway-process.ts", import.meta.url).pathname

const startGateway = (postgres: string) =>
  new Promise<{ child: ChildProcess; agentUrl: string; adminUrl: string }>((resolve, reject) => {
    const options: GatewayOptions = { postgres, listen: "127.0.0.1:0", adminListen: "127.0.0.1:0", ...TIMING }
    const child = fork(runner, [JSON.stringify(options)], { execArgv: ["--import", "tsx"], stdio: ["ignore", "ignore", "inherit", "ipc"] })
    const timer = setTimeout(() => reject(new Error("gateway did not start")), 60_000)
    child.once("message", (message: { agentUrl: string; adminUrl: string }) => {
      clearTimeout(timer)
      resolve({ child, ...message })
    })
  })

const freshDatabase = async (server: string) => {
  const admin = new pg.Client({ connectionString: server })
  await admin.connect()
  const name = `bench_${randomBytes(6).toString("hex")}`
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(server)
  url.pathname = `/${name}`
  return url.toString()
}

const until = async <T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 30_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(25)
  }
}

const api = (adminUrl: string, apiKey: string) => async (name: string, input: Record<string, unknown> = {}) => {
  const call = (body: Record<string, unknown>) =>
    fetch(`${adminUrl}/v1/actions/${name}`, { method: "POST", headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" }, body: JSON.stringify(body) }).then(
      async (r) => ({ status: r.status, body: (await r.json()) as any })
    )
  const first = await call(input)
  if (first.status === 428) return (await call({ ...input, confirmation_token: first.body.error.details.confirmation_token })).body
  if (first.status !== 200) throw new Error(`${name}: HTTP ${first.status} ${JSON.stringify(first.body)}`)
  return first.body
}

/** Three servers (one cluster each), a worker of the first, and the recovery agents' instances. */
const setup = async (postgres: string) => {
  const fleet = await createFleet({ postgres, runSensor: false })
  try {
    const account = await fleet.createAccount({ name: "bench" })
    const { api_key } = await fleet.createApiKey({ account_id: account.id, name: "bench", role: "admin" })
    const ops = fleet.forAccount(account.id)
    const network = await ops.actions.system_sdwan_create_network({ name: "net", handle: "net", pod_subnet_prefix: "10.42.0.0/16" })
    const workers = await ops.actions.system_create_template({ name: "workers" })
    const nodes: Record<string, { instanceId: string; credential: string }> = {}
    for (const cluster of ["x", "y", "z"]) {
      const servers = await ops.actions.system_create_template({ name: `servers-${cluster}` })
      await ops.actions.system_assign_module_to_template({ template_id: servers.id, module_name: "k3s-server", config: { cluster_name: `k3s-${cluster}`, vip_policy: "require_approval" } })
      const node = await ops.actions.system_create_node({ hostname: `server-${cluster}`, node_template_id: servers.id })
      const instance = await ops.actions.system_provision_instance({ node_id: node.id })
      await ops.actions.system_sdwan_attach_peer({ network_id: network.id, node_instance_id: instance.id })
      nodes[`server-${cluster}`] = { instanceId: instance.id, credential: instance.agent_credential }
    }
    const hostnames = ["worker-x", ...Array.from({ length: RECOVERY_AGENTS }, (_, i) => `edge-${i}`)]
    for (const hostname of hostnames) {
      const node = await ops.actions.system_create_node({ hostname, node_template_id: workers.id })
      const instance = await ops.actions.system_provision_instance({ node_id: node.id })
      await ops.actions.system_sdwan_attach_peer({ network_id: network.id, node_instance_id: instance.id })
      nodes[hostname] = { instanceId: instance.id, credential: instance.agent_credential }
    }
    return { apiKey: api_key, networkId: network.id as string, nodes }
  } finally {
    await fleet.close()
  }
}

interface Trial {
  readonly silenceErrorMs: { readonly leader: number; readonly otherGateway: number; readonly killedGateway: number }
  readonly pushMs: { readonly sameGateway: Array<number>; readonly crossGateway: Array<number> }
  readonly recoveryMs: Array<number>
}

const trial = async (server: string): Promise<Trial> => {
  const postgres = await freshDatabase(server)
  const { apiKey, networkId, nodes } = await setup(postgres)
  const a = await startGateway(postgres)
  await until(async () => ((await (await fetch(`${a.adminUrl}/healthz`)).json()) as { leader: boolean }).leader, "a to lead")
  const b = await startGateway(postgres)
  const onA = api(a.adminUrl, apiKey)
  const agents: Array<TestAgent> = []
  const clients: Array<AgentClient> = []
  try {
    // Each holder heartbeats until told to stop; `lastBeat` is when it last did.
    const connect = async (url: string, hostname: string) => {
      const agent = await TestAgent.connect(url)
      agents.push(agent)
      agent.hello(nodes[hostname]!.instanceId, nodes[hostname]!.credential, { wireguard_keys: [{ network_id: networkId, public_key: agent.keys.publicKey }] })
      await agent.message("welcome")
      const state = { agent, lastBeat: 0, beating: true }
      const timer = setInterval(() => {
        if (!state.beating || agent.closed !== undefined) return
        agent.heartbeat([networkId])
        state.lastBeat = Date.now()
      }, TIMING.heartbeatIntervalMs)
      timer.unref()
      agent.heartbeat([networkId])
      state.lastBeat = Date.now()
      return state
    }
    const join = async (state: { agent: TestAgent }, module: "k3s-server" | "k3s-agent", target: string | null) => {
      const request_id = `join-${state.agent.seq++}`
      state.agent.send({ type: "join_request", body: { request_id, module_name: module, target_cluster_id: target } })
      const answer = await state.agent.message("join_accepted", (m) => m.body.request_id === request_id, 30_000).catch(() => {
        throw new Error(`join refused: ${JSON.stringify(state.agent.received.find((m) => m.type === "join_rejected")?.body)}`)
      })
      state.agent.send({ type: "status_report", body: { k3s: { service: "active", node_ready: true }, modules: [] } })
      return answer.body.cluster_id
    }
    const x = await connect(a.agentUrl, "server-x")
    const clusterX = await join(x, "k3s-server", null)
    const y = await connect(b.agentUrl, "server-y")
    await join(y, "k3s-server", null)
    const z = await connect(b.agentUrl, "server-z")
    await join(z, "k3s-server", null)
    await onA("system_assign_module_to_template", { template_id: "workers", module_name: "k3s-agent", config: { target_cluster_id: clusterX } })
    const worker = await connect(b.agentUrl, "worker-x")
    await join(worker, "k3s-agent", clusterX)
    for (let i = 0; i < RECOVERY_AGENTS; i++) {
      const node = nodes[`edge-${i}`]!
      const client = new AgentClient({
        url: [b.agentUrl, a.agentUrl],
        instanceId: node.instanceId,
        credential: node.credential,
        agentVersion: "bench",
        wireguardKeys: () => [],
        applied: () => [],
        heldVips: () => [],
        nodeState: () => ({ k3s: { service: "inactive", node_ready: false }, wireguard: [], load: { cpu_ratio: 0.1, memory_ratio: 0.1 } }),
        handlers: { applyConfig: async () => undefined }
      })
      clients.push(client)
    }
    await Promise.all(clients.map((client) => client.start()))
    await sleep(3 * TIMING.livenessSyncMs) // liveness shared both ways

    // Push latency: rotations decided on A, to a member on A and one on B.
    const sameGateway: Array<number> = []
    const crossGateway: Array<number> = []
    for (let i = 0; i < ROTATIONS; i++) {
      const before = { x: x.agent.pushes("token").length, w: worker.agent.pushes("token").length }
      const decided = Date.now()
      await onA("kubernetes_rotate_token", { cluster_id: clusterX })
      await until(() => x.agent.pushes("token").length > before.x && worker.agent.pushes("token").length > before.w, "the rotated token everywhere")
      sameGateway.push(arrival(x.agent, "token", before.x) - decided)
      crossGateway.push(arrival(worker.agent, "token", before.w) - decided)
    }

    const silenceError = async (state: { lastBeat: number; beating: boolean }, clusterName: string, kill?: ChildProcess) => {
      state.beating = false
      kill?.kill("SIGKILL")
      const event = await until(async () => {
        const { events } = await onA("system_list_events", { limit: 1000, since: 0 })
        const cluster = await onA("kubernetes_get_cluster", { id: clusterName })
        return (events as Array<{ type: string; at: string; data: { cluster_id: string } }>).find((e) => e.type === "sdwan.vip_holder_silent" && e.data.cluster_id === cluster.id)
      }, "the silence event")
      return Date.parse(event.at) - state.lastBeat - TIMING.silenceThresholdMs
    }
    const leader = await silenceError(x, "k3s-x")
    const otherGateway = await silenceError(y, "k3s-y")
    // B dies with z's holder and the recovery agents' sessions on it.
    const killedAt = Date.now()
    const backOnA = clients.map((client) => client.nextWelcome().then(() => Date.now() - killedAt))
    const killedGateway = await silenceError(z, "k3s-z", b.child)
    const recoveryMs = await Promise.all(backOnA)
    return { silenceErrorMs: { leader, otherGateway, killedGateway }, pushMs: { sameGateway, crossGateway }, recoveryMs }
  } finally {
    for (const client of clients) client.stop()
    for (const agent of agents) agent.close()
    a.child.kill("SIGKILL")
    b.child.kill("SIGKILL")
  }
}

/** When the token push after the first `skip` arrived (TestAgent records arrival times). */
const arrival = (agent: TestAgent, kind: string, skip: number) => {
  const push = agent.received.filter((m) => m.type === "config_push" && m.body.kind === kind)[skip]!
  return agent.arrivedAt(push)
}

export interface AcrossGatewaysFigures {
  readonly trials: number
  readonly thresholdMs: number
  readonly livenessSyncMs: number
  readonly silenceErrorMs: Record<"leader" | "otherGateway" | "killedGateway", { readonly min: number; readonly p50: number; readonly max: number }>
  readonly pushMs: Record<"sameGateway" | "crossGateway", { readonly p50: number; readonly p99: number }>
  readonly recovery: { readonly agents: number; readonly p50Ms: number; readonly p99Ms: number; readonly maxMs: number }
}

export const measureAcrossGateways = async (postgresServer: string): Promise<AcrossGatewaysFigures> => {
  const trials: Array<Trial> = []
  for (let i = 0; i < TRIALS; i++) trials.push(await trial(postgresServer))
  const spread = (values: Array<number>) => ({ min: Math.min(...values), p50: percentile(values, 50), max: Math.max(...values) })
  const latency = (values: Array<number>) => ({ p50: percentile(values, 50), p99: percentile(values, 99) })
  const recovery = trials.flatMap((t) => t.recoveryMs)
  return {
    trials: TRIALS,
    thresholdMs: TIMING.silenceThresholdMs,
    livenessSyncMs: TIMING.livenessSyncMs,
    silenceErrorMs: {
      leader: spread(trials.map((t) => t.silenceErrorMs.leader)),
      otherGateway: spread(trials.map((t) => t.silenceErrorMs.otherGateway)),
      killedGateway: spread(trials.map((t) => t.silenceErrorMs.killedGateway))
    },
    pushMs: { sameGateway: latency(trials.flatMap((t) => t.pushMs.sameGateway)), crossGateway: latency(trials.flatMap((t) => t.pushMs.crossGateway)) },
    recovery: { agents: RECOVERY_AGENTS, p50Ms: percentile(recovery, 50), p99Ms: percentile(recovery, 99), maxMs: Math.max(...recovery) }
  }
}

export const describeAcrossGateways = (f: AcrossGatewaysFigures) =>
  [
    `several gateways (${f.trials} independent trials; threshold ${f.thresholdMs} ms, liveness shared every ${f.livenessSyncMs} ms):`,
    `  silence declared after the threshold (min / p50 / max ms; negative = early): holder on the leader ${fmt(f.silenceErrorMs.leader)} (single-gateway baseline), on another gateway ${fmt(f.silenceErrorMs.otherGateway)}, on a gateway killed with it ${fmt(f.silenceErrorMs.killedGateway)}`,
    `  token rotation decided on A reaching a member on A p50 ${f.pushMs.sameGateway.p50} ms / p99 ${f.pushMs.sameGateway.p99} ms (baseline), on B p50 ${f.pushMs.crossGateway.p50} ms / p99 ${f.pushMs.crossGateway.p99} ms`,
    `  ${f.recovery.agents} agents back in session on the survivor after their gateway was killed: p50 ${f.recovery.p50Ms} ms, p99 ${f.recovery.p99Ms} ms, max ${f.recovery.maxMs} ms`
  ].join("\n")
const fmt = (s: { min: number; p50: number; max: number }) => `${s.min} / ${s.p50} / ${s.max}`
