/**
 * Turning pushed configs into files and commands on the node. Files land under a
 * configurable root (`/` in production, a scratch directory in tests and demos); then the
 * apply command for that kind runs. In simulation no command runs: it is recorded instead.
 */
import { execFile } from "node:child_process"
import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { promisify } from "node:util"
import { withVipRoutes, type ConfigPushBody } from "@fleetplane/agent-protocol"
import type { AgentState } from "./agent-state"

const run = promisify(execFile)

export interface ApplyCommands {
  /** Run after a WireGuard config is written; `{interface}` and `{file}` are substituted. */
  readonly wireguard: string
  readonly k3sServer: string
  readonly k3sAgent: string
  readonly leave: string
  /** `{module}` and `{version}` are substituted. */
  readonly moduleUpgrade: string
}

export const DEFAULT_APPLY_COMMANDS: ApplyCommands = {
  wireguard: "wg syncconf {interface} <(wg-quick strip {file})",
  k3sServer: "systemctl restart k3s",
  k3sAgent: "systemctl restart k3s-agent",
  leave: "systemctl disable --now k3s k3s-agent",
  moduleUpgrade: "echo upgrade {module} to {version}"
}

export interface ConfigApplierOptions {
  readonly root: string
  readonly state: AgentState
  readonly commands: ApplyCommands
  /** Record commands instead of running them. */
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

export const createConfigApplier = (options: ConfigApplierOptions) => {
  const executed: Array<string> = []
  const command = async (template: string, values: Record<string, string>) => {
    const line = Object.entries(values).reduce((text, [key, value]) => text.replaceAll(`{${key}}`, value), template)
    executed.push(line)
    if (options.simulate) return options.log(`(simulated) ${line}`)
    await run("bash", ["-c", line])
  }

  const apply = async (push: ConfigPushBody) => {
    switch (push.kind) {
      case "wireguard":
      case "vip_routes": {
        // Either half changes alone (a failover sends only routes); the file is always both.
        const networkId = push.payload.network_id
        options.state.saveWireguardPart(networkId, push.kind === "wireguard" ? { peers: push.payload } : { routes: push.payload })
        const { base, routes } = options.state.wireguardParts(networkId)
        if (base === undefined) return // routes before the peer list: written when the peer list arrives
        const { privateKey } = options.state.wireguardKey(networkId)
        // The private key is added here, on the node; it never travels.
        const content = withVipRoutes(base.content, routes?.routes ?? []).replace("[Interface]\n", `[Interface]\nPrivateKey = ${privateKey}\n`)
        const file = writeFile(options.root, wireguardPath(base.interface_name), content, 0o600)
        await command(options.commands.wireguard, { interface: base.interface_name, file })
        return
      }
      case "k3s": {
        writeFile(options.root, K3S_CONFIG_PATH, push.payload.content, 0o600)
        for (const file of push.payload.files) writeFile(options.root, file.path, file.content, file.mode)
        await command(push.payload.role === "control-plane" ? options.commands.k3sServer : options.commands.k3sAgent, {})
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
        await command(options.commands.leave, {})
        return
      case "module_upgrade":
        if (options.failUpgradesTo?.includes(push.payload.version_id)) throw new Error(`simulated failure upgrading ${push.payload.module_name} to ${push.payload.version_id}`)
        await command(options.commands.moduleUpgrade, { module: push.payload.module_name, version: push.payload.version_id })
        return
    }
  }

  return { apply, executed }
}
