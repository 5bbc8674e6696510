/**
 * The VIP on the node that holds it (SPEC §6): its addresses on the loopback, so the node
 * answers on them (kube-apiserver listens on every address). Peers route the VIP to the holder
 * through WireGuard (the `vip_routes` push); without the address here the holder drops it.
 * IPv6 addresses get `nodad`: duplicate address detection would hold a moved VIP back for a second.
 */
import type { NodeCommands } from "./node-commands"

const isIpv6 = (address: string) => address.includes(":")

export const createVipLoopback = (commands: NodeCommands) => ({
  /** Adds each address (`replace`: holding it already is fine). */
  hold: async (addresses: ReadonlyArray<string>) => {
    for (const address of addresses) {
      await commands.run(
        isIpv6(address) ? ["ip", "-6", "address", "replace", `${address}/128`, "dev", "lo", "nodad"] : ["ip", "-4", "address", "replace", `${address}/32`, "dev", "lo"]
      )
    }
  },
  /** Removes each address it still has (releasing one it does not hold is not an error). */
  release: async (addresses: ReadonlyArray<string>) => {
    for (const address of addresses) {
      const prefix = `${address}/${isIpv6(address) ? 128 : 32}`
      const held = await commands.run(["ip", isIpv6(address) ? "-6" : "-4", "-o", "address", "show", "dev", "lo"])
      if (!held.stdout.split(/\s+/).includes(prefix)) continue
      await commands.run(["ip", isIpv6(address) ? "-6" : "-4", "address", "del", prefix, "dev", "lo"])
    }
  }
})

export type VipLoopback = ReturnType<typeof createVipLoopback>
