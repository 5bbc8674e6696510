/**
 * Failover under chaos (#9.5): a fast-check command model against a real gateway with real
 * agent sessions. Holders go silent (socket open, no heartbeats) and come back, sessions drop
 * and reconnect, approvals arrive late, twice or are rejected, operators fail over by hand,
 * the gateway restarts on the same database, the cluster is decommissioned midway. Invariants:
 * - at most one holder per epoch, and every agent sees epochs only move forward;
 * - once things settle, exactly the stored holder believes it holds the VIP (none after a
 *   decommission): a returned old holder has always released;
 * - every peer's applied WireGuard config routes the VIP /128 to the holder of the latest epoch.
 *
 * Runs on SQLite and on PostgreSQL. `npm test` runs a few short sequences; `pnpm test:soak` runs
 * FLEETPLANE_SOAK_CHAOS_RUNS (default 25 per policy and store).
 */
import fc from "fast-check"
import { afterEach, describe, expect, it } from "vitest"
import { applyPeerSetChange, renderWireguardConfig, type ConfigKind, type GatewayMessage, type PeerSetOutOfSyncError, type PeerSetState, type VipRoute, type WireguardPayload } from "@fleetplane/agent-protocol"
import type { Gateway } from "../src/index"
import { adminClient, freshPostgresDatabase, quietGateway, setupAccount, tempDatabase } from "./support/gateway-harness"
import { recordSoak } from "./support/soak-report"
import { TestAgent } from "./support/test-agent"

const SOAK = process.env.FLEETPLANE_SOAK !== undefined
const RUNS = Number(process.env.FLEETPLANE_SOAK_CHAOS_RUNS ?? (SOAK ? 25 : 2))
const MAX_COMMANDS = SOAK ? 16 : 8

type Command =
  | { readonly kind: "silence" | "return" | "drop_session"; readonly server: number }
  | { readonly kind: "wait"; readonly ms: number }
  | { readonly kind: "approve" | "approve_twice" | "reject" | "manual_failover" | "restart_gateway" | "decommission" }

const server = fc.integer({ min: 0, max: 2 })
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("silence" as const), server }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("return" as const), server }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("drop_session" as const), server }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 100, max: 1_500 }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: "approve" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "approve_twice" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "reject" as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: "manual_failover" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "restart_gateway" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "decommission" as const }) }
)

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Every vip_assign any agent ever received, across sessions and restarts. */
type Assignment = { readonly instanceId: string; readonly epoch: number }

/** An agent that applies and acks what it is sent, holds what it is assigned, and can go quiet. */
class ChaosAgent {
  session: TestAgent | undefined
  silent = false
  readonly held = new Map<string, number>()
  readonly applied = new Map<string, { kind: ConfigKind; key: string; version: number; payload: unknown }>()
  readonly epochsSeen: Array<number> = []
  readonly keys = { publicKey: "", privateKey: "" }
  /** The network's peer set as this agent keeps it across sessions and gateway restarts. */
  peerSet: { own: WireguardPayload; peers: PeerSetState } | undefined

  constructor(
    readonly node: { instanceId: string; credential: string; hostname: string },
    private readonly networkId: string,
    private readonly assignments: Array<Assignment>
  ) {}

  async connect(gateway: Gateway) {
    const session = await TestAgent.connect(gateway.agentUrl)
    if (this.keys.publicKey === "") Object.assign(this.keys, session.keys)
    session.onMessage = (message) => this.handle(session, message)
    this.session = session
    session.hello(this.node.instanceId, this.node.credential, {
      wireguard_keys: [{ network_id: this.networkId, public_key: this.keys.publicKey }],
      applied: [...this.applied.values()].map(({ kind, key, version }) => ({ kind, key, version })),
      held_vips: [...this.held].map(([vip_id, epoch]) => ({ vip_id, epoch })),
      peer_versions: this.peerSet === undefined ? [] : [{ network_id: this.networkId, version: this.peerSet.peers.version }]
    })
    await session.message("welcome")
    return session
  }

  private handle(session: TestAgent, message: GatewayMessage) {
    switch (message.type) {
      case "config_push": {
        const { kind, key, version } = message.body
        if (message.body.kind === "wireguard") {
          try {
            this.peerSet = { own: message.body.payload, peers: applyPeerSetChange(this.peerSet?.peers, message.body.payload.peers) }
          } catch (error) {
            const code = (error as PeerSetOutOfSyncError).code
            session.send({ type: "config_ack", body: { kind, key, version, status: "failed", error: { code, message: (error as Error).message } } })
            return
          }
        }
        const id = `${kind}/${key}`
        if ((this.applied.get(id)?.version ?? 0) < version) this.applied.set(id, { ...message.body })
        session.send({ type: "config_ack", body: { kind, key, version, status: "applied" } })
        return
      }
      case "vip_assign":
        this.assignments.push({ instanceId: this.node.instanceId, epoch: message.body.epoch })
        this.epochsSeen.push(message.body.epoch)
        this.held.set(message.body.vip_id, message.body.epoch)
        session.send({ type: "vip_ack", body: { vip_id: message.body.vip_id, epoch: message.body.epoch, held: true } })
        return
      case "vip_release":
        this.epochsSeen.push(message.body.epoch)
        this.held.delete(message.body.vip_id)
        session.send({ type: "vip_ack", body: { vip_id: message.body.vip_id, epoch: message.body.epoch, held: false } })
        return
    }
  }

  beat() {
    if (this.silent || this.session === undefined || this.session.closed) return
    this.session.heartbeat([this.networkId])
  }

  ready() {
    this.session?.send({ type: "status_report", body: { k3s: { service: "active", node_ready: true }, modules: [] } })
  }

  /** The WireGuard config this agent applied: its peer list with the VIP routes merged in. */
  wireguardContent(): string {
    const routes = [...this.applied.values()].find((c) => c.kind === "vip_routes")?.payload as { routes: Array<VipRoute> } | undefined
    if (this.peerSet === undefined) return ""
    return renderWireguardConfig({ interface: this.peerSet.own, peers: this.peerSet.peers, routes: routes?.routes ?? [] })
  }
}

/** The [Peer] blocks of a wg-quick file whose AllowedIPs route `address`, by public key. */
const peersRouting = (content: string, address: string) =>
  content
    .split("[Peer]")
    .slice(1)
    .filter((block) => block.includes(`${address}/128`))
    .map((block) => /PublicKey = (\S+)/.exec(block)?.[1])

const poll = async <T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

let gateway: Gateway | undefined
let totals = { runs: 0, commands: 0, faults: 0, promotions: 0, sessions: 0 }
afterEach(async () => {
  await gateway?.close()
  gateway = undefined
})

type Backend = "sqlite" | "postgres"

const runScenario = async (commands: ReadonlyArray<Command>, policy: "automatic" | "require_approval", backend: Backend) => {
  // A restart reopens the same state: the same SQLite file, or the same PostgreSQL database.
  const store = backend === "sqlite" ? { database: tempDatabase() } : { postgres: await freshPostgresDatabase() }
  gateway = await quietGateway(store)
  const account = await setupAccount(gateway, { vipPolicy: policy })
  const assignments: Array<Assignment> = []
  const agentFor = async (hostname: string, template: string) => {
    const agent = new ChaosAgent(await account.provision(hostname, template), account.networkId, assignments)
    await agent.connect(gateway!)
    return agent
  }
  const join = async (agent: ChaosAgent, module: "k3s-server" | "k3s-agent", target: string | null) => {
    const request_id = `join-${agent.node.hostname}`
    agent.session!.send({ type: "join_request", body: { request_id, module_name: module, target_cluster_id: target } })
    const answer = await agent.session!.until((a) => a.received.find((m) => m.type === "join_accepted" && m.body.request_id === request_id), 5_000, "join")
    agent.ready()
    return answer.type === "join_accepted" ? answer.body.cluster_id : ""
  }
  const servers = [await agentFor("s1", account.serverTemplateId)]
  const clusterId = await join(servers[0]!, "k3s-server", null)
  await poll(async () => (await account.admin.action("kubernetes_get_cluster", { id: clusterId })).body.status === "active", "cluster active")
  for (const hostname of ["s2", "s3"]) {
    const agent = await agentFor(hostname, account.serverTemplateId)
    await join(agent, "k3s-server", clusterId)
    servers.push(agent)
  }
  const worker = await agentFor("w1", account.workerTemplateId)
  await join(worker, "k3s-agent", clusterId)
  const agents = [...servers, worker]
  const heartbeats = setInterval(() => agents.forEach((a) => a.beat()), 100)
  let admin = account.admin
  const vip = (await admin.action("kubernetes_get_cluster", { id: clusterId })).body.virtual_ip as { id: string; address: string }
  let decommissioned = false

  const decide = async (verb: "approve" | "reject", times: number) => {
    const { body } = await admin.action("system_list_approvals", { status: "pending" })
    const approval = body.approvals?.[0]
    if (approval === undefined) return
    for (let i = 0; i < times; i++) await admin.action(`system_${verb}`, { approval_id: approval.id })
  }

  try {
    for (const step of commands) {
      totals.commands++
      switch (step.kind) {
        case "silence":
          servers[step.server]!.silent = true
          totals.faults++
          break
        case "return":
          servers[step.server]!.silent = false
          break
        case "drop_session": {
          const agent = servers[step.server]!
          agent.session?.socket.terminate()
          await agent.session?.waitClosed()
          await agent.connect(gateway)
          totals.faults++
          break
        }
        case "wait":
          await sleep(step.ms)
          break
        case "approve":
          await decide("approve", 1)
          break
        case "approve_twice":
          await decide("approve", 2)
          break
        case "reject":
          await decide("reject", 1)
          break
        case "manual_failover":
          // Refusals (no healthy candidate, decommissioned) are answers too.
          await admin.confirmed("system_sdwan_failover_virtual_ip", { virtual_ip_id: vip.id })
          break
        case "restart_gateway": {
          await gateway.close()
          for (const agent of agents) await agent.session?.waitClosed()
          gateway = await quietGateway(store)
          admin = adminClient(gateway, account.apiKey)
          for (const agent of agents) await agent.connect(gateway)
          for (const agent of servers) agent.ready()
          totals.faults++
          break
        }
        case "decommission":
          if ((await admin.confirmed("kubernetes_decommission_cluster", { cluster_id: clusterId })).status === 200) decommissioned = true
          break
      }
    }

    // Settle: everyone heartbeats again, and nothing is left unacknowledged.
    for (const agent of agents) agent.silent = false
    await sleep(800)
    const live = gateway
    await poll(() => [...live.sessions.all()].length === agents.length && [...live.sessions.all()].every((s) => s.pendingPushes === 0), "every push acked")
    await sleep(300)

    const state = (await admin.action("kubernetes_get_cluster", { id: clusterId })).body
    const stored = state.virtual_ip as { holder_peer_id: string | null; epoch: number } | null
    const holderPeer = decommissioned || stored === null ? null : stored.holder_peer_id

    // One holder per epoch.
    const byEpoch = new Map<number, Set<string>>()
    for (const { epoch, instanceId } of assignments) byEpoch.set(epoch, (byEpoch.get(epoch) ?? new Set()).add(instanceId))
    for (const [epoch, holders] of byEpoch) expect(holders.size, `epoch ${epoch} holders`).toBe(1)
    // Epochs only move forward, as each agent saw them.
    for (const agent of agents) expect(agent.epochsSeen, agent.node.hostname).toEqual([...agent.epochsSeen].sort((a, b) => a - b))
    totals.promotions += byEpoch.size

    const believers = agents.filter((a) => a.held.has(vip.id))
    if (holderPeer === null) {
      expect(believers.map((a) => a.node.hostname), "nobody holds the VIP").toEqual([])
      for (const agent of agents) expect(peersRouting(agent.wireguardContent(), vip.address), agent.node.hostname).toEqual([])
    } else {
      // Exactly one agent believes it holds the VIP, at the stored epoch; it is the stored holder.
      expect(believers.map((a) => a.node.hostname), "agents holding the VIP").toHaveLength(1)
      const holder = believers[0]!
      expect(holder.held.get(vip.id)).toBe(stored!.epoch)
      expect(holder.wireguardContent()).toContain(`for ${holder.node.hostname} (`)
      // Every other peer routes the VIP to that holder, and only to it.
      for (const agent of agents.filter((a) => a !== holder)) {
        expect(peersRouting(agent.wireguardContent(), vip.address), `${agent.node.hostname} routes the VIP to`).toEqual([holder.keys.publicKey])
        expect(agent.wireguardContent()).toContain(`(${holderPeer})`)
      }
    }
    totals.runs++
    totals.sessions += agents.length
  } finally {
    clearInterval(heartbeats)
    for (const agent of agents) agent.session?.close()
    await gateway?.close()
    gateway = undefined
  }
}

describe("failover under chaos (real sessions, gateway restarts)", () => {
  it.each(["sqlite", "postgres"] as const)(`on %s: holds R13 and converges every peer over ${RUNS} random command sequences per policy`, async (backend) => {
    totals = { runs: 0, commands: 0, faults: 0, promotions: 0, sessions: 0 }
    for (const policy of ["require_approval", "automatic"] as const) {
      await fc.assert(
        fc.asyncProperty(fc.array(commandArb, { minLength: 3, maxLength: MAX_COMMANDS }), (commands) => runScenario(commands, policy, backend)),
        { numRuns: RUNS, endOnFailure: true }
      )
    }
    console.log(
      `failover chaos on ${backend}: ${totals.runs} runs, ${totals.commands} commands, ${totals.faults} faults (silences, dropped sessions, gateway restarts), ${totals.promotions} epochs, invariant violations 0`
    )
    recordSoak({ suite: `failover chaos (real sessions, ${backend})`, faults: totals.faults, inputs: totals.commands, sessions: totals.sessions, violations: 0, lost: 0 })
  }, 900_000)
})
