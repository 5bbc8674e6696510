/**
 * The effective WireGuard config of a peer: the network's wg-quick text (`wireguard` push)
 * with each VIP's /128 and /32 added to the AllowedIPs of the [Peer] that holds it (`vip_routes` push).
 * The SDK and the agent both use this one function, so what an operator previews is what
 * the node applies. A route whose holder is not a [Peer] of this config (the node itself, or
 * a peer whose key is not known yet) adds nothing: the holder has the address locally.
 */
import type { VipRoute } from "./messages/config"

export const withVipRoutes = (content: string, routes: ReadonlyArray<Pick<VipRoute, "address" | "address_ipv4" | "public_key">>): string => {
  if (routes.length === 0) return content
  const byKey = new Map<string, Array<string>>()
  for (const route of routes) {
    const prefixes = [`${route.address}/128`, ...(route.address_ipv4 === undefined ? [] : [`${route.address_ipv4}/32`])]
    byKey.set(route.public_key, [...(byKey.get(route.public_key) ?? []), ...prefixes])
  }
  const lines = content.split("\n")
  let extra: Array<string> | undefined
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (line === "[Peer]") extra = undefined
    else if (line.startsWith("PublicKey = ")) extra = byKey.get(line.slice("PublicKey = ".length).trim())
    else if (line.startsWith("AllowedIPs = ") && extra !== undefined) lines[i] = `${line}, ${extra.join(", ")}`
  }
  return lines.join("\n")
}
