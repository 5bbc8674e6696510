/**
 * What the agent reports in heartbeats: k3s service state, node readiness, WireGuard
 * handshake ages and load. Real probes ask systemd and `wg`; in simulation k3s becomes ready
 * a while after its config lands and every configured peer shows a recent handshake.
 */
import { execFile } from "node:child_process"
import { cpus, freemem, loadavg, totalmem } from "node:os"
import { promisify } from "node:util"
import type { K3sServiceState, K3sState, Load, WireguardInterfaceState } from "@fleetplane/agent-protocol"

const run = promisify(execFile)

export const currentLoad = (): Load => ({
  cpu_ratio: Math.max(0, loadavg()[0]! / Math.max(1, cpus().length)),
  memory_ratio: Math.min(1, Math.max(0, 1 - freemem() / totalmem()))
})

/** `systemctl is-active` answers -> our service states. */
const SYSTEMD_STATES: Record<string, K3sServiceState> = { active: "active", activating: "activating", inactive: "inactive", failed: "failed", reloading: "active" }

export const probeK3s = async (unit: string): Promise<K3sState> => {
  const state = await run("systemctl", ["is-active", unit]).then(
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
  const handshakes = output
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const [publicKey, seconds] = line.trim().split(/\s+/) as [string, string]
      const at = Number(seconds)
      return { public_key: publicKey, age_ms: at > 0 ? Math.max(0, Math.round((now - at) * 1000)) : null }
    })
  return { network_id: networkId, handshakes }
}

/** Simulated handshakes: every peer of the config was heard from a few seconds ago. */
export const simulatedHandshakes = (networkId: string, config: string): WireguardInterfaceState => ({
  network_id: networkId,
  handshakes: [...config.matchAll(/^PublicKey = (\S+)$/gm)].map((match) => ({ public_key: match[1]!, age_ms: 3_000 + Math.floor(Math.random() * 4_000) }))
})
