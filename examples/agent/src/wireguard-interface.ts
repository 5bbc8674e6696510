/**
 * A WireGuard interface on a real node (SPEC §6). The first config brings it up with
 * `wg-quick up` (which starts `wireguard-go` when the kernel has no WireGuard module); later
 * ones are applied with `wg syncconf`, which changes peers without dropping a single tunnel —
 * but touches no address and no route, so the agent then makes the interface's addresses
 * match `Address` and the kernel routes through it match every `AllowedIPs` entry. Without
 * that, a peer or a VIP that arrives after the interface came up is unroutable.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { NodeCommands } from "./node-commands"

/** `x/n` with the host prefix written out (`ip route` prints host routes without `/32` or `/128`). */
const withLength = (prefix: string) => (prefix.includes("/") ? prefix : `${prefix}/${prefix.includes(":") ? 128 : 32}`)

const familyFlag = (prefix: string) => (prefix.includes(":") ? "-6" : "-4")

/** The values of every `key = a, b` line of a wg-quick file. */
const listValues = (content: string, key: string): Array<string> =>
  content
    .split("\n")
    .filter((line) => line.trim().toLowerCase().startsWith(`${key.toLowerCase()} =`))
    .flatMap((line) => line.slice(line.indexOf("=") + 1).split(","))
    .map((value) => value.trim())
    .filter((value) => value !== "")
    .map(withLength)

export const addressesOf = (content: string) => listValues(content, "Address")
export const allowedIpsOf = (content: string) => listValues(content, "AllowedIPs")

/** The keys of [Interface] that only wg-quick understands (wg-quick's `parse_options`); `wg` refuses them. */
const WG_QUICK_ONLY = new Set(["address", "dns", "mtu", "table", "preup", "predown", "postup", "postdown", "saveconfig"])

/**
 * What `wg-quick strip` prints: the file without wg-quick's own [Interface] keys, for `wg
 * syncconf`. Done here rather than by running wg-quick (a bash script): a failover applies it
 * on every peer, and a spawn of bash costs more than the rest of the apply.
 */
export const stripWgQuickKeys = (content: string): string => {
  let inInterface = false
  const kept: Array<string> = []
  for (const line of content.split("\n")) {
    const key = line.replace(/#.*/, "").split("=")[0]!.trim()
    if (key.startsWith("[")) inInterface = key.toLowerCase() === "[interface]"
    if (inInterface && WG_QUICK_ONLY.has(key.toLowerCase())) continue
    kept.push(line)
  }
  return kept.join("\n")
}

export interface WireguardInterfaces {
  /** Writes nothing: brings `interfaceName` to the config in `file` (up, or synced), routes included. */
  readonly apply: (interfaceName: string, file: string, content: string) => Promise<void>
  readonly isUp: (interfaceName: string) => Promise<boolean>
  /** `wg-quick down`: the interface, its addresses and its routes go away. */
  readonly down: (interfaceName: string, file: string) => Promise<void>
}

export const createWireguardInterfaces = (commands: NodeCommands, simulate: boolean): WireguardInterfaces => {
  // In simulation nothing exists on the node; remember what would be up.
  const simulatedUp = new Set<string>()
  const isUp = (interfaceName: string) =>
    simulate ? Promise.resolve(simulatedUp.has(interfaceName)) : commands.succeeds(["ip", "link", "show", "dev", interfaceName])

  /** Routes the kernel has through the interface (main table, not the kernel's own). */
  const currentRoutes = async (interfaceName: string) => {
    const routes: Array<string> = []
    const listings = await Promise.all(["-4", "-6"].map((family) => commands.run(["ip", family, "route", "show", "dev", interfaceName])))
    for (const { stdout } of listings) {
      for (const line of stdout.split("\n")) {
        const destination = line.trim().split(/\s+/)[0]
        if (destination === undefined || destination === "" || line.includes("proto kernel") || destination.startsWith("fe80:") || destination === "multicast") continue
        routes.push(withLength(destination))
      }
    }
    return routes
  }

  const currentAddresses = async (interfaceName: string) => {
    const { stdout } = await commands.run(["ip", "-o", "address", "show", "dev", interfaceName])
    return [...stdout.matchAll(/\binet6? (\S+)/g)].map((match) => match[1]!).filter((address) => !address.startsWith("fe80:"))
  }

  /** Addresses and routes made to match the config: new ones added, stale ones removed. */
  const reconcile = async (interfaceName: string, content: string) => {
    if (simulate) return
    const wantedAddresses = addressesOf(content)
    const [haveAddresses, haveRoutes] = await Promise.all([currentAddresses(interfaceName), currentRoutes(interfaceName)])
    for (const address of wantedAddresses) {
      if (!haveAddresses.includes(address)) await commands.run(["ip", familyFlag(address), "address", "add", address, "dev", interfaceName])
    }
    for (const address of haveAddresses) {
      if (!wantedAddresses.includes(address)) await commands.run(["ip", familyFlag(address), "address", "del", address, "dev", interfaceName])
    }
    const wantedRoutes = [...new Set(allowedIpsOf(content))]
    for (const route of wantedRoutes) {
      if (!haveRoutes.includes(route)) await commands.run(["ip", familyFlag(route), "route", "replace", route, "dev", interfaceName])
    }
    for (const route of haveRoutes) {
      if (!wantedRoutes.includes(route)) await commands.run(["ip", familyFlag(route), "route", "del", route, "dev", interfaceName])
    }
  }

  /** Interfaces this agent brought up or synced: the next config goes straight to `wg syncconf`. */
  const knownUp = new Set<string>()

  const apply = async (interfaceName: string, file: string, content: string) => {
    // `wg syncconf` takes the file without wg-quick's own keys (Address, DNS, ...). It must be a
    // file (`wg` fopens it; a child's stdin here is a socket, which /dev/stdin cannot open): one
    // in a private directory, removed at once.
    const sync = async () => {
      if (simulate) return commands.run(["wg", "syncconf", interfaceName, "<stripped config>"])
      const dir = mkdtempSync(join(tmpdir(), "fleetplane-wg-"))
      try {
        const stripped = join(dir, `${interfaceName}.conf`)
        writeFileSync(stripped, stripWgQuickKeys(content), { mode: 0o600 })
        return await commands.run(["wg", "syncconf", interfaceName, stripped])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }
    let synced = false
    if (knownUp.has(interfaceName) && !simulate) {
      // An interface deleted behind the agent's back makes this fail: then it is brought up below.
      synced = await sync().then(
        () => true,
        () => false
      )
    }
    if (!synced) {
      if (!(await isUp(interfaceName))) {
        await commands.run(["wg-quick", "up", file])
        simulatedUp.add(interfaceName)
      } else {
        await sync()
      }
    }
    knownUp.add(interfaceName)
    await reconcile(interfaceName, content)
  }

  const down = async (interfaceName: string, file: string) => {
    knownUp.delete(interfaceName)
    if (!(await isUp(interfaceName))) return
    await commands.run(["wg-quick", "down", file])
    simulatedUp.delete(interfaceName)
  }

  return { apply, isUp, down }
}
