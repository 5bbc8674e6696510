/**
 * Overlay addressing: each account has an RFC 4193 ULA /48 (a random 40-bit global ID),
 * each network a /64 in it, each peer and VIP a /128 in its network's /64 (and a /32 in the
 * network's IPv4 range, see overlay-ipv4.ts). Host numbers are leased in the store, so an
 * address is never handed out twice while in use.
 */
import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import type { StoreError } from "../model/errors"
import type { AccountId, NetworkId } from "../model/ids"
import type { StoreTx } from "../store/store"
import { addressInPrefix, parseCidr } from "./cidr"
import { ipv4AddressFor } from "./overlay-ipv4"

/** `fdXX:XXXX:XXXX` — fd00::/8 plus 40 random bits (RFC 4193 §3.2). */
export const newUlaGlobalId = (): string => {
  const bytes = randomBytes(5)
  const hex = `fd${bytes.toString("hex")}`
  return `${hex.slice(0, 4)}:${hex.slice(4, 8)}:${hex.slice(8, 12)}`
}

const SUBNETS_PER_GLOBAL_ID = 0x10000

/** The next free /64 of the account, moving to a fresh random /48 when one is full. */
export const allocateOverlayPrefix = (
  tx: StoreTx,
  accountId: AccountId,
  currentGlobalId: string
): Effect.Effect<{ readonly prefix: string; readonly ulaGlobalId: string; readonly subnetIndex: number }, StoreError> =>
  Effect.gen(function* () {
    let globalId = currentGlobalId
    let next = ((yield* tx.maxSubnetIndex(accountId, globalId)) ?? 0) + 1 // subnet 0 stays unused
    if (next >= SUBNETS_PER_GLOBAL_ID) {
      globalId = newUlaGlobalId()
      yield* tx.setAccountUlaGlobalId(accountId, globalId)
      next = 1
    }
    // Canonical spelling (no leading zeros, "::" where it belongs), so the prefix compares as text.
    const parsed = parseCidr(`${globalId}:${next.toString(16)}::/64`)
    if (!parsed.ok) return yield* Effect.die(new Error(`allocated overlay prefix for ${globalId} does not parse`))
    return { prefix: parsed.cidr.canonical, ulaGlobalId: globalId, subnetIndex: next }
  })

/** The /128 with a given host number in a network's /64. */
export const ipv6AddressFor = (overlayPrefix: string, hostIndex: bigint) => {
  const parsed = parseCidr(overlayPrefix)
  if (!parsed.ok) return Effect.die(new Error(`stored overlay prefix ${overlayPrefix} does not parse`))
  return Effect.succeed(addressInPrefix(parsed.cidr, hostIndex))
}

/**
 * Leases the next host number of a network for a peer or a VIP: its /128 in the network's /64
 * and its /32 in the network's IPv4 range (R21), the same number in both.
 */
export const leaseOverlayAddresses = (
  tx: StoreTx,
  network: { readonly id: NetworkId; readonly overlay_prefix: string; readonly overlay_ipv4_prefix: string },
  ownerId: string
) =>
  Effect.gen(function* () {
    const hostIndex = yield* tx.leaseNextHostIndex(network.id, ownerId)
    return {
      ipv6: yield* ipv6AddressFor(network.overlay_prefix, hostIndex),
      ipv4: yield* ipv4AddressFor(network.id, network.overlay_ipv4_prefix, hostIndex)
    }
  })
