/**
 * What the agent reports in heartbeats: k3s service state, node readiness, WireGuard
 * handshake ages and load. Real probes ask systemd and `wg`; in simulation k3s becomes ready
 * a while after its config lands and every configured peer shows a recent handshake.
 */
import { execFile } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { cpus, freemem, loadavg, networkInterfaces, totalmem } from "node:os"
import { join } from "node:path"
import ipaddr from "ipaddr.js"
import { promisify } from "node:util"
import { summarizeHandshakes, type K3sServiceState, type K3sState, type Load, type WireguardInterfaceState } from "@fleetplane/agent-protocol"

const run = promisify(execFile)

export const currentLoad = (): Load => ({
  cpu_ratio: Math.max(0, loadavg()[0]! / Math.max(1, cpus().length)),
  memory_ratio: Math.min(1, Math.max(0, 1 - freemem() / totalmem()))
})

/** `systemctl is-active` answers -> our service states. */
const SYSTEMD_STATES: Record<string, K3sServiceState> = { active: "active", activating: "activating", inactive: "inactive", failed: "failed", reloading: "active" }

export const probeK3s = async (unit: string, env?: NodeJS.ProcessEnv): Promise<K3sState> => {
  const state = await run("systemctl", ["is-active", unit], { env: env ?? process.env }).then(
    (r) => r.stdout.trim(),
    (e: { stdout?: string }) => (e.stdout ?? "").trim()
  )
  const service = SYSTEMD_STATES[state] ?? "not_installed"
  return { service, node_ready: service === "active" }
}

/** Handshake ages from `wg show <interface> latest-handshakes` (epoch seconds per peer key). */
export const probeHandshakes = async (networkId: string, interfaceName: string): Promise<WireguardInterfaceState> => {
  const now = Date.now() / 1000
  const output = await run("wg", ["show", interfaceName, "latest-handshakes"]).then(
    (r) => r.stdout,
    () => ""
  )
  const ages = output
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const at = Number(line.trim().split(/\s+/)[1])
      return at > 0 ? Math.max(0, Math.round((now - at) * 1000)) : null
    })
  return summarizeHandshakes(networkId, ages)
}

/** Simulated handshakes: every peer of the config was heard from a few seconds ago. */
export const simulatedHandshakes = (networkId: string, config: string): WireguardInterfaceState =>
  summarizeHandshakes(
    networkId,
    [...config.matchAll(/^PublicKey = (\S+)$/gm)].map(() => 3_000 + Math.floor(Math.random() * 4_000))
  )

/**
 * Where k3s's flannel records the node's pod subnet: `FLANNEL_SUBNET=10.42.1.1/24` in
 * /run/flannel/subnet.env (k3s pkg/agent/flannel `subnetFile`), the first address of the /24
 * (or /64) the controller-manager assigned the node. Absent until flannel runs, and with
 * ovn-kubernetes, whose pod network Fleetplane does not route.
 */
export const FLANNEL_SUBNET_FILE = "/run/flannel/subnet.env"

/** The node's pod subnet in canonical form (`10.42.1.0/24`), or undefined. */
export const readPodSubnet = (root: string): string | undefined => {
  const file = join(root, FLANNEL_SUBNET_FILE)
  if (!existsSync(file)) return undefined
  const match = /^FLANNEL_SUBNET=(\S+)$/m.exec(readFileSync(file, "utf8"))
  if (match === null) return undefined
  try {
    const [address, length] = ipaddr.parseCIDR(match[1]!)
    const network = address.kind() === "ipv4" ? ipaddr.IPv4.networkAddressFromCIDR(match[1]!) : ipaddr.IPv6.networkAddressFromCIDR(match[1]!)
    return `${network.toString()}/${length}`
  } catch {
    return undefined
  }
}

/**
 * The node's own address to advertise as its WireGuard endpoint when none is given: the first
 * global address outside Fleetplane's own interfaces, IPv4 preferred (NAT traversal is simpler).
 */
export const detectEndpointHost = (): string | undefined => {
  const candidates: Array<{ address: string; family: 4 | 6 }> = []
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if (name.startsWith("wg") || name === "lo") continue
    for (const info of addresses ?? []) {
      if (info.internal) continue
      const parsed = ipaddr.parse(info.address)
      const range = parsed.range()
      if (range === "linkLocal" || range === "loopback" || range === "unspecified" || range === "multicast") continue
      candidates.push({ address: parsed.toString(), family: parsed.kind() === "ipv4" ? 4 : 6 })
    }
  }
  return (candidates.find((c) => c.family === 4) ?? candidates[0])?.address
}

/** `host:port`, with an IPv6 host in brackets. */
export const formatEndpoint = (host: string, port: number) => (ipaddr.IPv6.isValid(host) ? `[${host}]:${port}` : `${host}:${port}`)
