/**
 * The reference agent: a session with a gateway through the protocol's client, configs
 * written and applied on the node, state reported in heartbeats, and the join flow of its
 * module (bootstrap or targeted join, retries honouring `retry_after_ms`).
 */
import type { ConfigPushBody, K3sState, ModuleName, WireguardInterfaceState } from "@fleetplane/agent-protocol"
import { AgentClient, type BackoffOptions } from "@fleetplane/agent-protocol/client"
import { AgentState } from "./agent-state"
import { createConfigApplier, DEFAULT_APPLY_COMMANDS, type ApplyCommands } from "./config-appliers"
import { currentLoad, probeHandshakes, probeK3s, simulatedHandshakes } from "./node-probes"
import { createTerminalRelay } from "./terminal-relay"

export interface ReferenceAgentOptions {
  readonly gatewayUrl: string
  readonly stateDir: string
  /** Where configs are written: `/` on a real node. */
  readonly root: string
  /** Needed on first start only; remembered in the state directory. */
  readonly instanceId?: string
  readonly credential?: string
  /** The module to join with; omit to only keep a session. */
  readonly module?: ModuleName
  readonly targetClusterId?: string | null
  readonly simulate?: boolean
  /** Simulation: how long "k3s" takes to become ready after its config lands. */
  readonly readyDelayMs?: number
  readonly commands?: Partial<ApplyCommands>
  readonly failUpgradesTo?: ReadonlyArray<string>
  readonly backoff?: BackoffOptions
  readonly ca?: string | Buffer
  readonly log?: (line: string) => void
}

const AGENT_VERSION = "0.1.0"

export const startReferenceAgent = async (options: ReferenceAgentOptions) => {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const simulate = options.simulate ?? false
  const state = new AgentState(options.stateDir)
  const identity = state.identity({ instanceId: options.instanceId, credential: options.credential })
  const applier = createConfigApplier({
    root: options.root,
    state,
    commands: { ...DEFAULT_APPLY_COMMANDS, ...options.commands },
    simulate,
    ...(options.failUpgradesTo === undefined ? {} : { failUpgradesTo: options.failUpgradesTo }),
    log
  })

  const terminals = createTerminalRelay({ log })
  let k3s: K3sState = { service: simulate ? "inactive" : "not_installed", node_ready: false }
  let k3sUnit = "k3s"
  const wireguardConfigs = new Map<string, { interfaceName: string; content: string }>()
  let wireguard: Array<WireguardInterfaceState> = []
  let readyTimer: NodeJS.Timeout | undefined
  let probeTimer: NodeJS.Timeout | undefined

  const refreshProbes = async () => {
    if (simulate) {
      wireguard = [...wireguardConfigs].map(([networkId, { content }]) => simulatedHandshakes(networkId, content))
      return
    }
    k3s = await probeK3s(k3sUnit)
    wireguard = await Promise.all([...wireguardConfigs].map(([networkId, { interfaceName }]) => probeHandshakes(networkId, interfaceName)))
  }

  const client: AgentClient = new AgentClient({
    url: options.gatewayUrl,
    instanceId: identity.instanceId,
    credential: identity.credential,
    agentVersion: AGENT_VERSION,
    capabilities: ["wireguard", "k3s", "module_upgrade", "terminal"],
    wireguardKeys: () => state.wireguardPublicKeys(),
    ensureWireguardKey: async (networkId) => state.wireguardKey(networkId).publicKey,
    applied: () => state.appliedConfigs(),
    heldVips: () => state.heldVips(),
    nodeState: () => ({ k3s, wireguard, load: currentLoad() }),
    ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
    ...(options.ca === undefined ? {} : { tls: { ca: options.ca } }),
    handlers: {
      applyConfig: async (push: ConfigPushBody) => {
        await applier.apply(push)
        state.recordApplied({ kind: push.kind, key: push.key, version: push.version })
        log(`applied ${push.kind} ${push.key} v${push.version}`)
        if (push.kind === "wireguard") {
          wireguardConfigs.set(push.payload.network_id, { interfaceName: push.payload.interface_name, content: push.payload.content })
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
        if (push.kind === "leave") {
          k3s = { service: "inactive", node_ready: false }
          client.reportStatus(k3s, [], `left cluster ${push.payload.cluster_id}`)
        }
      },
      onVipAssign: (assign) => {
        state.setVip(assign.vip_id, assign.epoch, true)
        log(`holding VIP ${assign.address} at epoch ${assign.epoch}`)
      },
      onVipRelease: (release) => {
        state.setVip(release.vip_id, release.epoch, false)
        log(`released VIP ${release.address || release.vip_id} (${release.reason}, epoch ${release.epoch})`)
      },
      onTerminalOpen: terminals.open,
      onTerminalData: terminals.input,
      onTerminalResize: terminals.resize,
      onTerminalCredit: terminals.credit,
      onTerminalClose: terminals.close,
      onClosed: (code, reason, again) => log(`session closed ${code} ${reason}${again ? "; reconnecting" : ""}`)
    }
  })

  const welcome = await client.start()
  if (!simulate) probeTimer = setInterval(() => void refreshProbes(), welcome.heartbeat_interval_ms)
  const joined =
    options.module === undefined
      ? undefined
      : client.joinUntilAccepted(options.module, options.targetClusterId ?? null, (rejection) =>
          log(`join rejected: ${rejection.code}: ${rejection.message} (retrying in ${rejection.retry_after_ms} ms)`)
        )

  return {
    client,
    state,
    instanceId: identity.instanceId,
    joined,
    executedCommands: applier.executed,
    get k3s() {
      return k3s
    },
    stop: () => {
      terminals.closeAll()
      clearTimeout(readyTimer)
      clearInterval(probeTimer)
      client.stop()
    }
  }
}

export type ReferenceAgent = Awaited<ReturnType<typeof startReferenceAgent>>
