/**
 * IPv4 overlay addressing (R21). A cluster whose pod prefix is IPv4 (the default: k3s's
 * 10.42.0.0/16) must give k3s IPv4 node addresses and an IPv4 VIP, so every network also has
 * an IPv4 range: by default a free /20 of 100.64.0.0/10 (RFC 6598 shared address space, which
 * no LAN or cloud VPC hands out, so it does not collide with the nodes' own networks). A peer or
 * VIP has the same host number in both families: `fd…::5` and `100.64.0.5`.
 */
import { Effect } from "effect"
import ipaddr from "ipaddr.js"
import { conflict, invalidInput, stateError } from "../model/errors"
import type { AccountId, NetworkId } from "../model/ids"
import type { StoreTx } from "../store/store"
import { addressInPrefix, overlaps, parseCidr, type Cidr } from "./cidr"
import { overlapsAnyPodPrefix } from "./pod-prefix-overlap"

export const OVERLAY_IPV4_POOL = "100.64.0.0/10"
/** 4,094 peers and VIPs per network; 1,024 such networks fit the pool. Give a bigger range explicitly for more. */
export const DEFAULT_OVERLAY_IPV4_PREFIX_LENGTH = 20

const parsedOrDie = (text: string): Cidr => {
  const parsed = parseCidr(text)
  if (!parsed.ok) throw new Error(`${text} does not parse`)
  return parsed.cidr
}

const POOL = parsedOrDie(OVERLAY_IPV4_POOL)

/** An operator-chosen IPv4 overlay range: canonical, private or shared address space, /8 to /28. */
export const validateOverlayIpv4Prefix = (text: string) => {
  const parsed = parseCidr(text)
  const refuse = (why: string) =>
    Effect.fail(
      invalidInput(
        "invalid_overlay_ipv4_prefix",
        `overlay_ipv4_prefix ${why}; use a canonical private range such as 100.64.16.0/20 or 172.20.0.0/16, or omit it to have a free /20 of ${OVERLAY_IPV4_POOL} allocated`,
        { overlay_ipv4_prefix: text }
      )
    )
  if (!parsed.ok || parsed.cidr.family !== 4) return refuse(`"${text}" is not an IPv4 prefix`)
  if (!parsed.wasCanonical) return refuse(`"${text}" has host bits set (the canonical form is ${parsed.cidr.canonical})`)
  const { cidr } = parsed
  if (cidr.prefixLength < 8 || cidr.prefixLength > 28) return refuse(`${cidr.canonical} must be between /8 and /28`)
  const range = ipaddr.parse(cidr.canonical.split("/")[0]!).range()
  if (range !== "private" && range !== "carrierGradeNat") return refuse(`${cidr.canonical} is not private (RFC 1918) or shared (RFC 6598) address space`)
  return Effect.succeed(cidr)
}

/** The account's ranges an IPv4 overlay range must not overlap, read once: other networks' ranges and service CIDRs. */
const occupiedRanges = (tx: StoreTx, accountId: AccountId) =>
  Effect.gen(function* () {
    const ranges: Array<{ readonly cidr: Cidr; readonly what: string; readonly prefix: string }> = []
    for (const { network_id, overlay_ipv4_prefix } of yield* tx.listOverlayIpv4Prefixes(accountId)) {
      const parsed = parseCidr(overlay_ipv4_prefix)
      if (parsed.ok) ranges.push({ cidr: parsed.cidr, what: `the IPv4 overlay range of network ${network_id}`, prefix: overlay_ipv4_prefix })
    }
    for (const { cluster_id, service_cidr } of yield* tx.listServiceCidrs(accountId)) {
      const parsed = parseCidr(service_cidr)
      if (parsed.ok) ranges.push({ cidr: parsed.cidr, what: `the service CIDR of cluster ${cluster_id}`, prefix: service_cidr })
    }
    return ranges
  })

/** What an IPv4 overlay range collides with: an occupied range, this network's pod prefix, or any pod prefix of the account (an index probe). */
const findCollision = (tx: StoreTx, accountId: AccountId, cidr: Cidr, podPrefix: Cidr | null, occupied: ReadonlyArray<{ readonly cidr: Cidr; readonly what: string; readonly prefix: string }>) =>
  Effect.gen(function* () {
    const taken = occupied.find((range) => overlaps(range.cidr, cidr))
    if (taken !== undefined) return { what: taken.what, prefix: taken.prefix }
    if (podPrefix !== null && overlaps(podPrefix, cidr)) return { what: "this network's pod prefix", prefix: podPrefix.canonical }
    if (yield* overlapsAnyPodPrefix(tx, accountId, cidr)) return { what: "a pod prefix of this account", prefix: null }
    return undefined
  })

/** An operator-chosen range, refused (`overlay_ipv4_prefix_overlap`) when it collides with the account's other ranges. */
export const ensureOverlayIpv4PrefixFree = (tx: StoreTx, accountId: AccountId, cidr: Cidr, podPrefix: Cidr | null) =>
  Effect.flatMap(Effect.flatMap(occupiedRanges(tx, accountId), (occupied) => findCollision(tx, accountId, cidr, podPrefix, occupied)), (collision) =>
    collision === undefined
      ? Effect.void
      : Effect.fail(
          conflict(
            "overlay_ipv4_prefix_overlap",
            `overlay_ipv4_prefix ${cidr.canonical} overlaps ${collision.what}${collision.prefix === null ? "" : ` (${collision.prefix})`}; pick a range outside it`,
            { overlay_ipv4_prefix: cidr.canonical, conflicting_prefix: collision.prefix }
          )
        )
  )

/**
 * The first /20 of 100.64.0.0/10 that collides with nothing of the account. The account's
 * ranges are read once and walked in order beside the candidates, jumping past each taken
 * range, so the 1,000th network costs what the first did (before: every candidate re-read and
 * re-scanned every range, O(n²) per network).
 */
export const allocateOverlayIpv4Prefix = (tx: StoreTx, accountId: AccountId, podPrefix: Cidr | null) =>
  Effect.gen(function* () {
    const size = 1n << BigInt(32 - DEFAULT_OVERLAY_IPV4_PREFIX_LENGTH)
    const taken = (yield* occupiedRanges(tx, accountId)).filter((r) => r.cidr.family === 4).sort((a, b) => (a.cidr.start < b.cidr.start ? -1 : a.cidr.start > b.cidr.start ? 1 : 0))
    let next = 0
    let start = POOL.start
    while (start + size - 1n <= POOL.end) {
      const end = start + size - 1n
      // Ranges that end before this candidate end before every later one too.
      while (next < taken.length && taken[next]!.cidr.end < start) next++
      let hit: Cidr | undefined
      for (let i = next; i < taken.length && taken[i]!.cidr.start <= end; i++) {
        if (taken[i]!.cidr.end >= start) hit = hit === undefined || taken[i]!.cidr.end > hit.end ? taken[i]!.cidr : hit
      }
      if (hit !== undefined) {
        // The first aligned candidate after the taken range.
        start = POOL.start + ((hit.end + 1n - POOL.start + size - 1n) / size) * size
        continue
      }
      const candidate = parsedOrDie(`${addressInPrefix(POOL, start - POOL.start)}/${DEFAULT_OVERLAY_IPV4_PREFIX_LENGTH}`)
      if ((yield* findCollision(tx, accountId, candidate, podPrefix, [])) === undefined) return candidate.canonical
      start += size
    }
    return yield* stateError(
      "overlay_ipv4_exhausted",
      `every /${DEFAULT_OVERLAY_IPV4_PREFIX_LENGTH} of ${OVERLAY_IPV4_POOL} is taken in this account; create the network with an explicit overlay_ipv4_prefix (a private range such as 172.20.0.0/16)`,
      {}
    )
  })

/** The /32 with a given host number in a network's IPv4 range; the range's last address (broadcast) is never handed out. */
export const ipv4AddressFor = (networkId: NetworkId, prefix: string, hostIndex: bigint) => {
  const cidr = parsedOrDie(prefix)
  if (cidr.start + hostIndex >= cidr.end) {
    return Effect.fail(
      stateError(
        "overlay_ipv4_exhausted",
        `network ${networkId} has no free IPv4 overlay address left in ${prefix}; create a network with a larger overlay_ipv4_prefix for more peers`,
        { network_id: networkId, overlay_ipv4_prefix: prefix }
      )
    )
  }
  return Effect.succeed(addressInPrefix(cidr, hostIndex))
}
