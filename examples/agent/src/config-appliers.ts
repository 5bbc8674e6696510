/**
 * Turning pushed configs into files and state on the node (SPEC §6). Files land under a
 * configurable root (`/` in production, a scratch directory in tests and demos); WireGuard
 * interfaces, routes and VIP addresses are brought to what the configs say; k3s is restarted
 * through its unit. Every command is an argument list (node-commands.ts): no field of a push
 * reaches a shell. In simulation no command runs: it is recorded instead.
 */
import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { applyPeerSetChange, renderWireguardConfig, type ConfigPushBody } from "@fleetplane/agent-protocol"
import type { AgentState } from "./agent-state"
import { substitute, type NodeCommands } from "./node-commands"
import { createVipLoopback } from "./vip-loopback"
import { createWireguardInterfaces } from "./wireguard-interface"

/** Commands for the services the agent drives, as argument lists; `{module}` and `{version}` are replaced inside arguments. */
export interface ApplyCommands {
  readonly k3sServer: ReadonlyArray<string>
  readonly k3sAgent: ReadonlyArray<string>
  readonly leave: ReadonlyArray<string>
  /** A module upgrade hook (the node's package tooling); the version is one argument, never shell text. */
  readonly moduleUpgrade: ReadonlyArray<string>
}

export const DEFAULT_APPLY_COMMANDS: ApplyCommands = {
  k3sServer: ["systemctl", "restart", "k3s"],
  k3sAgent: ["systemctl", "restart", "k3s-agent"],
  leave: ["systemctl", "disable", "--now", "k3s", "k3s-agent"],
  moduleUpgrade: ["echo", "upgrade", "{module}", "to", "{version}"]
}

export interface ConfigApplierOptions {
  readonly root: string
  readonly state: AgentState
  readonly commands: ApplyCommands
  readonly node: NodeCommands
  readonly simulate: boolean
  /** For tests and demos: make module upgrades to these version ids fail. */
  readonly failUpgradesTo?: ReadonlyArray<string>
  readonly log: (line: string) => void
}

const writeFile = (root: string, path: string, content: string, mode: number) => {
  const target = join(root, path)
  mkdirSync(dirname(target), { recursive: true })
  writeFileSync(target, content, { mode })
  chmodSync(target, mode)
  return target
}

export const K3S_CONFIG_PATH = "/etc/rancher/k3s/config.yaml"
export const K3S_TOKEN_PATH = "/etc/rancher/k3s/fleetplane-token"
export const kubeconfigPath = (clusterId: string) => `/etc/rancher/k3s/fleetplane-${clusterId}.yaml`
export const wireguardPath = (interfaceName: string) => `/etc/wireguard/${interfaceName}.conf`
/** The module assignments of this node's template, as last pushed (what the agent joins). */
export const ASSIGNMENTS_PATH = "/etc/fleetplane/assignments.json"

export const createConfigApplier = (options: ConfigApplierOptions) => {
  const { node, state } = options
  const interfaces = createWireguardInterfaces(node, options.simulate)
  const loopback = createVipLoopback(node)

  /** The network's effective wg-quick file (peer list + VIP routes + this node's private key), written and applied. */
  const applyNetwork = async (networkId: string) => {
    const { base, routes } = state.wireguardParts(networkId)
    if (base === undefined) return // routes before the peer list: applied when the peer list arrives
    const { privateKey } = state.wireguardKey(networkId)
    // Rendered here from the agent's copy of the peer set; the private key is added on the node and never travels.
    const content = renderWireguardConfig({ interface: base.own, peers: base.peers, routes: routes?.routes ?? [], privateKey })
    const file = writeFile(options.root, wireguardPath(base.own.interface_name), content, 0o600)
    await interfaces.apply(base.own.interface_name, file, content)
  }

  const downNetwork = async (networkId: string) => {
    const { base } = state.wireguardParts(networkId)
    if (base === undefined) return
    await interfaces.down(base.own.interface_name, join(options.root, wireguardPath(base.own.interface_name)))
  }

  /** Interfaces taken down (a `leave`, a restart of the machine) come back before k3s needs them. */
  const ensureInterfacesUp = async () => {
    for (const { networkId, interfaceName } of state.appliedInterfaces()) {
      if (!(await interfaces.isUp(interfaceName))) await applyNetwork(networkId)
    }
  }

  const apply = async (push: ConfigPushBody) => {
    switch (push.kind) {
      case "wireguard": {
        // The peer-set change applies to the copy kept on disk; one that does not start where the
        // copy is throws `peer_set_out_of_sync` (acked as such; the gateway resends the full set).
        const { peers: change, ...own } = push.payload
        const current = state.wireguardParts(own.network_id).base
        state.saveWireguardPart(own.network_id, { peers: { own, peers: applyPeerSetChange(current?.peers, change) } })
        return applyNetwork(own.network_id)
      }
      case "vip_routes":
        // Either half changes alone (a failover sends only routes); the file is always both.
        state.saveWireguardPart(push.payload.network_id, { routes: push.payload })
        return applyNetwork(push.payload.network_id)
      case "k3s": {
        writeFile(options.root, K3S_CONFIG_PATH, push.payload.content, 0o600)
        for (const file of push.payload.files) writeFile(options.root, file.path, file.content, file.mode)
        await ensureInterfacesUp()
        await node.run(push.payload.role === "control-plane" ? options.commands.k3sServer : options.commands.k3sAgent)
        return
      }
      case "token":
        writeFile(options.root, K3S_TOKEN_PATH, `${push.payload.token}\n`, 0o600)
        return
      case "kubeconfig":
        writeFile(options.root, kubeconfigPath(push.payload.cluster_id), push.payload.content, 0o600)
        return
      case "leave":
        rmSync(join(options.root, K3S_CONFIG_PATH), { force: true })
        await node.run(options.commands.leave)
        if (push.payload.network_id !== undefined) await downNetwork(push.payload.network_id)
        return
      case "assignments":
        // R24: what the node joins; the agent acts on it (reference-agent.ts). Kept for the record.
        writeFile(options.root, ASSIGNMENTS_PATH, `${JSON.stringify(push.payload.assignments, null, 2)}\n`, 0o644)
        return
      case "module_upgrade":
        if (options.failUpgradesTo?.includes(push.payload.version_id)) throw new Error(`simulated failure upgrading ${push.payload.module_name} to ${push.payload.version_id}`)
        await node.run(substitute(options.commands.moduleUpgrade, { module: push.payload.module_name, version: push.payload.version_id }))
        return
    }
  }

  /** R13: take the VIP's addresses on the loopback, remembering them for the release. */
  const holdVip = async (vipId: string, epoch: number, addresses: ReadonlyArray<string>) => {
    await loopback.hold(addresses)
    state.setVip(vipId, epoch, true, addresses)
  }

  const releaseVip = async (vipId: string, epoch: number, addresses: ReadonlyArray<string>) => {
    await loopback.release([...new Set([...addresses, ...state.vipAddresses(vipId)])])
    state.setVip(vipId, epoch, false)
  }

  /** The instance was terminated (R25): give up every VIP and take every interface down. */
  const shutdown = async () => {
    for (const { vip_id, epoch } of state.heldVips()) await releaseVip(vip_id, epoch, [])
    for (const { networkId } of state.appliedInterfaces()) await downNetwork(networkId)
  }

  return { apply, holdVip, releaseVip, shutdown, ensureInterfacesUp, executed: node.executed }
}
