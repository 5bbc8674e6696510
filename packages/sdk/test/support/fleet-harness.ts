/**
 * Test harness: the whole SDK on an in-memory SQLite store, driven through the action
 * catalog and the agent port exactly as a host would, with simulated agents.
 */
import { Effect, Layer, Result, Schema } from "effect"
import { renderWireguardConfig, type ModuleName, type VipProbeReport } from "@fleetplane/agent-protocol"
import { Accounts, actionCatalog, Actions, AgentPort, isActionName, fleetLayer, NetworkSyncer, Signals, Store, type AccountId, type AgentIdentity, type FleetConfigShape } from "../../src/index"
import { wireguardKeyPair } from "./wireguard-keys"

export const testFleet = (config: Partial<FleetConfigShape> = {}) =>
  fleetLayer({ database: ":memory:", runSensor: false, config: { silenceThresholdMs: 15_000, heartbeatIntervalMs: 5_000, ...config } })

/** Runs a test body against a fresh fleet. */
export const withFleet =
  (config: Partial<FleetConfigShape> = {}) =>
  <A, E>(body: Effect.Effect<A, E, Layer.Success<ReturnType<typeof testFleet>>>) =>
    Effect.provide(body, testFleet(config))

export const newAccount = (name: string) => Effect.flatMap(Effect.service(Accounts), (accounts) => accounts.create(name))

export const exec = <A = any>(accountId: AccountId, name: string, input: Record<string, unknown> = {}) =>
  Effect.flatMap(Effect.service(Actions), (actions) => actions.execute(accountId, name, input)).pipe(
    Effect.tap((result: unknown) => Effect.sync(() => expectPublishedOutput(name, result)))
  ) as unknown as Effect.Effect<A, any, Actions>

/**
 * Every result an SDK test sees is also checked against the action's published output schema,
 * exactly (no field missing, none extra), so the schema cannot drift from what actions return.
 */
export const expectPublishedOutput = (name: string, result: unknown) => {
  if (!isActionName(name)) return
  const decoded = Schema.decodeUnknownResult(actionCatalog[name].output as unknown as Schema.Codec<unknown>)(result, { onExcessProperty: "error" })
  if (Result.isFailure(decoded)) throw new Error(`${name} returned what its output schema does not allow: ${String(decoded.failure)}`)
}

/** The error an effect fails with (the test fails if it succeeds). */
export const failure = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.flip(effect) as Effect.Effect<any, A, R>

/** Runs a destructive action through its confirmation round trip. */
export const execConfirmed = <A = any>(accountId: AccountId, name: string, input: Record<string, unknown> = {}) =>
  exec<A>(accountId, name, input).pipe(
    Effect.catchTag("ConfirmationRequiredError", (error: { details: Record<string, unknown> }) =>
      exec<A>(accountId, name, { ...input, confirmation_token: error.details.confirmation_token })
    )
  )

export interface SimAgent {
  readonly accountId: AccountId
  readonly instanceId: string
  readonly nodeId: string
  readonly hostname: string
  readonly credential: string
  readonly identity: AgentIdentity
  readonly keys: ReturnType<typeof wireguardKeyPair>
  readonly networkIds: ReadonlyArray<string>
  seq: number
}

let advertised = 0

/** Creates a node and instance, attaches it to networks, and connects its agent (hello with its own key). */
export const provisionAgent = (accountId: AccountId, options: { hostname: string; templateId: string; networkIds: ReadonlyArray<string> }) =>
  Effect.gen(function* () {
    const node = yield* exec(accountId, "system_create_node", { hostname: options.hostname, node_template_id: options.templateId })
    const instance = yield* exec(accountId, "system_provision_instance", { node_id: node.id })
    for (const networkId of options.networkIds) yield* exec(accountId, "system_sdwan_attach_peer", { network_id: networkId, node_instance_id: instance.id })
    const port = yield* AgentPort
    const identity = yield* port.authenticate(instance.id, instance.agent_credential)
    const keys = wireguardKeyPair()
    // Each node advertises its own public address: 198.51.100.<n>, n from a counter.
    const endpoint = `198.51.100.${(advertised++ % 250) + 1}:51820`
    yield* port.hello(identity, {
      wireguard_keys: options.networkIds.map((network_id) => ({ network_id, public_key: keys.publicKey, endpoint })),
      applied: [],
      held_vips: []
    })
    // The background loops are off in these tests: render the requested WireGuard configs now.
    yield* (yield* NetworkSyncer).flush
    return {
      accountId,
      instanceId: instance.id,
      nodeId: node.id,
      hostname: options.hostname,
      credential: instance.agent_credential,
      identity,
      keys,
      networkIds: options.networkIds,
      seq: 0
    } satisfies SimAgent as SimAgent
  })

export const join = (agent: SimAgent, moduleName: ModuleName, target: string | null, tokenFingerprint?: string) =>
  Effect.flatMap(Effect.service(AgentPort), (port) =>
    port.joinRequest(agent.identity, {
      request_id: `req_${agent.seq}`,
      module_name: moduleName,
      target_cluster_id: target,
      ...(tokenFingerprint === undefined ? {} : { token_fingerprint: tokenFingerprint })
    })
  )

const readyK3s = { service: "active" as const, node_ready: true, version: "v1.31.0+k3s1" }

export const reportReady = (agent: SimAgent, podCidr?: string) =>
  Effect.flatMap(Effect.service(AgentPort), (port) =>
    port.statusReport(agent.identity, { k3s: { ...readyK3s, ...(podCidr === undefined ? {} : { pod_cidr: podCidr }) }, modules: [] })
  )

/** A heartbeat from a healthy node whose tunnels all handshook recently. */
export const heartbeat = (agent: SimAgent, overrides: { readonly ready?: boolean; readonly load?: number; readonly vipProbes?: ReadonlyArray<VipProbeReport> } = {}) =>
  Effect.flatMap(Effect.service(AgentPort), (port) =>
    port.heartbeat(agent.identity, {
      seq: agent.seq++,
      k3s: overrides.ready === false ? { service: "activating", node_ready: false } : readyK3s,
      wireguard: agent.networkIds.map((network_id) => ({ network_id, peers: 1, fresh_handshakes: 1 })),
      load: { cpu_ratio: overrides.load ?? 0.2, memory_ratio: overrides.load ?? 0.3 },
      ...(overrides.vipProbes === undefined ? {} : { vip_probes: [...overrides.vipProbes] })
    })
  )

export const pendingPushes = (agent: SimAgent) => Effect.flatMap(Effect.service(AgentPort), (port) => port.pendingPushes(agent.identity, []))

/** The latest desired config of one kind for an agent. */
export const desiredConfig = (agent: SimAgent, kind: string) =>
  Effect.map(pendingPushes(agent), (pushes) => pushes.find((p) => p.kind === kind) as { kind: string; key: string; version: number; payload: any } | undefined)

/** The WireGuard config the agent would apply: its peer list with the VIP routes merged in. */
export const effectiveWireguard = (agent: SimAgent) =>
  Effect.map(pendingPushes(agent), (pushes) => {
    const base = pushes.find((p) => p.kind === "wireguard")
    const routes = pushes.find((p) => p.kind === "vip_routes")
    if (base?.kind !== "wireguard") return ""
    // Asked without a peer version, the push carries the full set: what a fresh agent renders.
    return renderWireguardConfig({ interface: base.payload, peers: base.payload.peers.upserts, routes: routes?.kind === "vip_routes" ? routes.payload.routes : [] })
  })

export const events = (accountId: AccountId) => Effect.map(exec(accountId, "system_list_events", { limit: 1000 }), (r: any) => r.events as Array<{ seq: number; type: string; data: any }>)

/** Sets up an account with a server template, a worker template and one network. */
export const accountWithNetwork = (options: { name?: string; podPrefix?: string | null; handle?: string; vipPolicy?: "automatic" | "require_approval" } = {}) =>
  Effect.gen(function* () {
    const account = yield* newAccount(options.name ?? "acme")
    const network = yield* exec(account.id, "system_sdwan_create_network", {
      name: `${options.handle ?? "prod"}-net`,
      handle: options.handle ?? "prod",
      pod_subnet_prefix: options.podPrefix === undefined ? "10.42.0.0/16" : options.podPrefix
    })
    const servers = yield* exec(account.id, "system_create_template", { name: "servers" })
    yield* exec(account.id, "system_assign_module_to_template", {
      template_id: servers.id,
      module_name: "k3s-server",
      config: { vip_policy: options.vipPolicy ?? "require_approval" }
    })
    const workers = yield* exec(account.id, "system_create_template", { name: "workers" })
    yield* exec(account.id, "system_assign_module_to_template", { template_id: workers.id, module_name: "k3s-agent" })
    return { accountId: account.id, networkId: network.id as string, serverTemplateId: servers.id as string, workerTemplateId: workers.id as string }
  })

/** A bootstrapped, active cluster with `servers` control-plane nodes. */
export const activeCluster = (
  setup: { accountId: AccountId; networkId: string; serverTemplateId: string },
  options: { servers?: number; prefix?: string } = {}
) =>
  Effect.gen(function* () {
    const prefix = options.prefix ?? "k3s-prod-server"
    const first = yield* provisionAgent(setup.accountId, { hostname: `${prefix}-1`, templateId: setup.serverTemplateId, networkIds: [setup.networkId] })
    const created = yield* join(first, "k3s-server", null)
    if (!created.accepted) return yield* Effect.die(new Error(`bootstrap rejected: ${created.code}`))
    yield* reportReady(first)
    const servers = [first]
    for (let i = 2; i <= (options.servers ?? 1); i++) {
      const server = yield* provisionAgent(setup.accountId, { hostname: `${prefix}-${i}`, templateId: setup.serverTemplateId, networkIds: [setup.networkId] })
      const joined = yield* join(server, "k3s-server", created.cluster_id)
      if (!joined.accepted) return yield* Effect.die(new Error(`server join rejected: ${joined.code}`))
      yield* reportReady(server)
      servers.push(server)
    }
    const cluster = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: created.cluster_id })
    return { clusterId: created.cluster_id as string, vipId: cluster.virtual_ip.id as string, servers }
  })

export { Signals, Store }
