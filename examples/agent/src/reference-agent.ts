/**
 * The reference agent: a session with a gateway through the protocol's client, configs
 * written and applied on the node, state reported in heartbeats, and the join flow of its
 * module (bootstrap or targeted join, retries honouring `retry_after_ms`).
 */
import {
  CloseCode,
  type ConfigPushBody,
  type JoinAcceptedBody,
  type JoinRejectedBody,
  type K3sState,
  type ModuleAssignment,
  type ModuleName,
  type WireguardInterfaceState
} from "@fleetplane/agent-protocol"
import { AgentClient, VipProber, type BackoffOptions, type WelcomeNetwork } from "@fleetplane/agent-protocol/client"
import { renderWireguardConfig } from "@fleetplane/agent-protocol"
import { createIdentityChooser } from "./agent-identity"
import { AgentState } from "./agent-state"
import { createConfigApplier, DEFAULT_APPLY_COMMANDS, type ApplyCommands } from "./config-appliers"
import { createNodeCommands } from "./node-commands"
import { currentLoad, detectEndpointHost, formatEndpoint, probeHandshakes, probeK3s, readPodSubnet, simulatedHandshakes } from "./node-probes"
import { createTerminalRelay } from "./terminal-relay"

export interface ReferenceAgentOptions {
  /** The gateway's agent endpoint, or several (the first preferred; others are tried when it fails or drains). */
  readonly gatewayUrl: string | ReadonlyArray<string>
  readonly stateDir: string
  /** Where configs are written: `/` on a real node. */
  readonly root: string
  /** Needed on first start only; remembered in the state directory. */
  readonly instanceId?: string
  readonly credential?: string
  /** Override the template's assignment (R24: the gateway refuses a join that disagrees with it). Omit: join what the template assigns. */
  readonly module?: ModuleName
  readonly targetClusterId?: string | null
  readonly simulate?: boolean
  /** Simulation: how long "k3s" takes to become ready after its config lands. */
  readonly readyDelayMs?: number
  readonly commands?: Partial<ApplyCommands>
  readonly failUpgradesTo?: ReadonlyArray<string>
  readonly backoff?: BackoffOptions
  readonly ca?: string | Buffer
  /**
   * The WireGuard endpoint to advertise: `host` (the network's listen port is added) or
   * `host:port` (a NAT's forwarded port). Default: the node's first global address, or none in simulation.
   */
  readonly endpoint?: string
  /** Told of every join rejection (the agent retries after its `retry_after_ms` by itself). */
  readonly onJoinRejected?: (rejection: JoinRejectedBody) => void
  /** Environment for the commands the agent runs (tests put stand-ins for systemctl on PATH). */
  readonly commandEnv?: NodeJS.ProcessEnv
  readonly log?: (line: string) => void
}

/** Sent in hello and printed by --version (kept equal to package.json's). */
export const AGENT_VERSION = "0.1.0"

export const startReferenceAgent = async (options: ReferenceAgentOptions) => {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const simulate = options.simulate ?? false
  const state = new AgentState(options.stateDir)
  const identity = createIdentityChooser(state, { instanceId: options.instanceId, credential: options.credential }, log)
  const node = createNodeCommands({ simulate, log, ...(options.commandEnv === undefined ? {} : { env: options.commandEnv }) })
  const applier = createConfigApplier({
    root: options.root,
    state,
    commands: { ...DEFAULT_APPLY_COMMANDS, ...options.commands },
    node,
    simulate,
    ...(options.failUpgradesTo === undefined ? {} : { failUpgradesTo: options.failUpgradesTo }),
    log
  })

  /** The endpoint peers should use on a network: the flag's, or the node's own address with the network's listen port. */
  const endpointHost = options.endpoint ?? (simulate ? undefined : detectEndpointHost())
  const advertisedEndpoint = (network: WelcomeNetwork) => {
    if (endpointHost === undefined) return undefined
    // `[v6]:port` or `host:port` is used as given; a bare host gets the network's listen port.
    const hasPort = /^\[.+\]:\d+$/.test(endpointHost) || /^[^:]+:\d+$/.test(endpointHost)
    if (hasPort) return endpointHost
    return network.listen_port === undefined ? undefined : formatEndpoint(endpointHost, network.listen_port)
  }

  const terminals = createTerminalRelay({ log })
  // R26: a real node probes the VIPs its routes name it a reporter for; a simulated one has no overlay to probe.
  const prober = simulate ? undefined : new VipProber({
        instanceId: identity.current().instanceId,
        onChange: (c) => log(`VIP ${c.address} (epoch ${c.epoch}) ${c.ok ? `answers (${c.ms} ms)` : `does not answer (${c.reason ?? "no answer"} after ${c.ms} ms; its holder's own address ${c.holderOk ? "answers" : "does not either"})`}`)
      })
  if (prober !== undefined) {
    for (const { networkId } of state.appliedInterfaces()) {
      const routes = state.wireguardParts(networkId).routes
      if (routes !== undefined) prober.setRoutes(networkId, routes.routes)
    }
  }
  let k3s: K3sState = { service: simulate ? "inactive" : "not_installed", node_ready: false }
  let k3sUnit = "k3s"
  const wireguardConfigs = new Map<string, { interfaceName: string; content: string }>()
  let wireguard: Array<WireguardInterfaceState> = []
  let readyTimer: NodeJS.Timeout | undefined
  /** Set once the session is up: starts the join from the assignments (when not joining yet). */
  let joinFromAssignments: (assignments: ReadonlyArray<ModuleAssignment>) => void = () => undefined
  let probeTimer: NodeJS.Timeout | undefined

  const refreshProbes = async () => {
    if (simulate) {
      wireguard = [...wireguardConfigs].map(([networkId, { content }]) => simulatedHandshakes(networkId, content))
      return
    }
    const probed = await probeK3s(k3sUnit, options.commandEnv)
    const podCidr = probed.service === "active" ? readPodSubnet(options.root) : undefined
    const next: K3sState = { ...probed, ...(podCidr === undefined ? {} : { pod_cidr: podCidr }) }
    const changed = next.service !== k3s.service || next.node_ready !== k3s.node_ready || next.pod_cidr !== k3s.pod_cidr
    k3s = next
    // Worth recording (R7 activation, the pod subnet for R22): a status report, not just a heartbeat.
    if (changed && client.connected) client.reportStatus(k3s, [], `k3s ${k3s.service}${k3s.pod_cidr === undefined ? "" : `, pod subnet ${k3s.pod_cidr}`}`)
    wireguard = await Promise.all([...wireguardConfigs].map(([networkId, { interfaceName }]) => probeHandshakes(networkId, interfaceName)))
  }

  const client: AgentClient = new AgentClient({
    // The configured gateways first (the first preferred), then those gateways named before.
    url: [...(typeof options.gatewayUrl === "string" ? [options.gatewayUrl] : options.gatewayUrl), ...state.knownGateways()],
    instanceId: identity.current().instanceId,
    credential: identity.current().credential,
    identity: identity.current,
    agentVersion: AGENT_VERSION,
    capabilities: ["wireguard", "k3s", "module_upgrade", "terminal"],
    wireguardKeys: () => {
      const networks = new Map(state.knownNetworks().map((n) => [n.network_id, n]))
      return state.wireguardPublicKeys().map((key) => {
        const endpoint = advertisedEndpoint(networks.get(key.network_id) ?? { network_id: key.network_id })
        return { ...key, ...(endpoint === undefined ? {} : { endpoint }) }
      })
    },
    ensureWireguardKey: async (networkId) => state.wireguardKey(networkId).publicKey,
    advertisedEndpoint,
    applied: () => state.appliedConfigs(),
    peerVersions: () => state.peerVersions(),
    heldVips: () => state.heldVips(),
    nodeState: () => ({ k3s, wireguard, load: currentLoad(), ...(prober === undefined ? {} : { vip_probes: prober.reports() }) }),
    ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
    ...(options.ca === undefined ? {} : { tls: { ca: options.ca } }),
    handlers: {
      applyConfig: async (push: ConfigPushBody) => {
        if (push.kind === "agent_credential") {
          // Stored (0600, atomically) before the ack: the ack is what retires the old credential.
          if (push.payload.credential !== undefined) identity.rotated(push.payload.credential)
          state.recordApplied({ kind: push.kind, key: push.key, version: push.version })
          log(push.payload.credential === undefined ? "agent credential already rotated" : "stored the rotated agent credential")
          return
        }
        try {
          await applier.apply(push)
        } catch (error) {
          log(`applying ${push.kind} ${push.key} v${push.version} failed: ${error instanceof Error ? error.message : String(error)}`)
          throw error
        }
        state.recordApplied({ kind: push.kind, key: push.key, version: push.version })
        log(`applied ${push.kind} ${push.key} v${push.version}`)
        if (push.kind === "vip_routes") prober?.setRoutes(push.payload.network_id, push.payload.routes)
        if (push.kind === "wireguard") {
          const { base } = state.wireguardParts(push.payload.network_id)
          if (base !== undefined) wireguardConfigs.set(push.payload.network_id, { interfaceName: base.own.interface_name, content: renderWireguardConfig({ interface: base.own, peers: base.peers }) })
          await refreshProbes()
        }
        if (push.kind === "k3s") {
          k3sUnit = push.payload.role === "control-plane" ? "k3s" : "k3s-agent"
          if (simulate && !k3s.node_ready) {
            k3s = { service: "activating", node_ready: false }
            clearTimeout(readyTimer)
            readyTimer = setTimeout(() => {
              k3s = { service: "active", node_ready: true, version: "v1.31.0+k3s1" }
              client.reportStatus(k3s, [], "k3s ready (simulated)")
            }, options.readyDelayMs ?? 1_000)
          }
        }
        if (push.kind === "assignments") joinFromAssignments(push.payload.assignments)
        if (push.kind === "leave") {
          k3s = { service: "inactive", node_ready: false }
          client.reportStatus(k3s, [], `left cluster ${push.payload.cluster_id}`)
        }
      },
      onWelcome: (welcome) => {
        identity.accepted()
        log(`session up on ${client.gatewayUrl}${client.gatewayAddress === undefined ? "" : ` (${client.gatewayAddress})`}`)
        if (welcome.gateways !== undefined && welcome.gateways.length > 0) state.setKnownGateways(welcome.gateways)
        if (welcome.networks !== undefined) state.setKnownNetworks(welcome.networks)
        prober?.start(welcome.vip_probe_interval_ms ?? 2_000)
      },
      onVipAssign: async (assign) => {
        const addresses = assign.addresses ?? [assign.address]
        await applier.holdVip(assign.vip_id, assign.epoch, addresses)
        log(`holding VIP ${addresses.join(", ")} at epoch ${assign.epoch}`)
      },
      onVipRelease: async (release) => {
        await applier.releaseVip(release.vip_id, release.epoch, release.addresses ?? (release.address === "" ? [] : [release.address]))
        log(`released VIP ${release.address || release.vip_id} (${release.reason}, epoch ${release.epoch})`)
      },
      onError: (error) => log(`gateway refused: ${error.code}: ${error.message}`),
      onTerminalOpen: terminals.open,
      onTerminalData: terminals.input,
      onTerminalResize: terminals.resize,
      onTerminalCredit: terminals.credit,
      onTerminalClose: terminals.close,
      onAuthenticationFailed: identity.refused,
      onClosed: (code, reason, again) => {
        log(`session closed ${code} ${reason}${again ? "; reconnecting" : ""}`)
        if (code === CloseCode.InstanceTerminated) {
          // R25: this machine is no longer part of the fleet: no VIP, no tunnels.
          void applier.shutdown().then(
            () => log("instance terminated: VIPs released, interfaces down"),
            (error: unknown) => log(`instance terminated, but cleaning up failed: ${error instanceof Error ? error.message : String(error)}`)
          )
        }
      }
    }
  })

  // After a reboot (or a crash that took an interface with it) the tunnels come back from the
  // configs already applied, without waiting for the gateway; an interface that is up is left as it is.
  if (!simulate) {
    await applier.ensureInterfacesUp().catch((error: unknown) => log(`bringing interfaces up failed: ${error instanceof Error ? error.message : String(error)}`))
  }
  const welcome = await client.start()
  // k3s and WireGuard state change slowly: probing more than once a second only costs the node CPU.
  if (!simulate) probeTimer = setInterval(() => void refreshProbes(), Math.max(welcome.heartbeat_interval_ms, 1_000))
  // R24: what to join comes from the template's assignments (welcome, then `assignments` pushes);
  // --module / --target-cluster only override them, and the gateway refuses a disagreement.
  let resolveJoined: (accepted: JoinAcceptedBody) => void = () => undefined
  const joined = new Promise<JoinAcceptedBody>((resolve) => (resolveJoined = resolve))
  let joining = false
  const joinFrom = (assignments: ReadonlyArray<ModuleAssignment>) => {
    if (joining) return
    const assignment = assignments.find((a) => options.module === undefined || a.module_name === options.module)
    const module = options.module ?? assignment?.module_name
    if (module === undefined) return
    joining = true
    const target = options.targetClusterId ?? assignment?.target_cluster_id ?? null
    log(`joining as ${module}${target === null ? "" : ` into ${target}`} (${options.module === undefined ? "from the template's assignment" : "--module"})`)
    client
      .joinUntilAccepted(module, target, (rejection) => {
        log(`join rejected: ${rejection.code}: ${rejection.message} (retrying in ${rejection.retry_after_ms} ms)`)
        options.onJoinRejected?.(rejection)
      })
      .then(resolveJoined, (error: unknown) => log(`join stopped: ${error instanceof Error ? error.message : String(error)}`))
  }
  joinFromAssignments = joinFrom
  joinFrom(options.module === undefined ? (welcome.assignments ?? []) : [{ module_name: options.module, module_version_id: null, target_cluster_id: null, config: {} }])

  return {
    client,
    state,
    get instanceId() {
      return identity.current().instanceId
    },
    joined,
    executedCommands: applier.executed,
    /** Settles when the node has been cleaned up after a termination (for tests). */
    applier,
    get k3s() {
      return k3s
    },
    stop: () => {
      terminals.closeAll()
      clearTimeout(readyTimer)
      clearInterval(probeTimer)
      prober?.stop()
      client.stop()
    }
  }
}

export type ReferenceAgent = Awaited<ReturnType<typeof startReferenceAgent>>
