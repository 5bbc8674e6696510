/**
 * The rules about SD-WAN networks and their prefixes (R1, R3, R4, R5), as pure functions.
 * R2 and R6 (no overlap in an account, found in O(log n)) need the store: see overlap-index.
 */
import { Effect } from "effect"
import { invalidInput, type InvalidInputError } from "../model/errors"
import { parseCidr, overlaps, type Cidr } from "./cidr"

export const K3S_DEFAULT_SERVICE_CIDR = "10.43.0.0/16"
export const K3S_DEFAULT_CLUSTER_CIDR = "10.42.0.0/16"
/** k3s's IPv6 defaults (pkg/util `GetDefaultAddresses`): cluster fd00:42::/56, services fd00:43::/112. */
export const K3S_DEFAULT_IPV6_SERVICE_CIDR = "fd00:43::/112"

/** R1 + R3: a pod prefix is canonical and leaves room for per-node subnets. */
export const validatePodPrefix = (text: string): Effect.Effect<Cidr, InvalidInputError> => {
  const parsed = parseCidr(text)
  if (!parsed.ok) return Effect.fail(invalidInput("invalid_cidr", parsed.reason, { pod_subnet_prefix: text }))
  const { cidr } = parsed
  if (!parsed.wasCanonical) {
    return Effect.fail(
      invalidInput(
        "pod_prefix_not_canonical",
        `pod_subnet_prefix "${text}" has host bits set; use the canonical form ${cidr.canonical}`,
        { pod_subnet_prefix: text, canonical: cidr.canonical }
      )
    )
  }
  // Flannel gives every node a /24 (IPv4) or /64 (IPv6) out of the cluster CIDR.
  const longest = cidr.family === 4 ? 23 : 63
  if (cidr.prefixLength > longest) {
    return Effect.fail(
      invalidInput(
        "pod_prefix_too_small",
        `pod_subnet_prefix ${cidr.canonical} leaves no room for per-node subnets (flannel gives each node a /${cidr.family === 4 ? 24 : 64}); use a /${longest} or shorter`,
        { pod_subnet_prefix: cidr.canonical, longest_allowed: longest }
      )
    )
  }
  return Effect.succeed(cidr)
}

const HANDLE_PATTERN = /^[a-z0-9-]{1,6}$/

/** R5: `wg-sdwan-<handle>` must fit the 15-byte Linux interface name. */
export const validateHandle = (handle: string): Effect.Effect<string, InvalidInputError> =>
  HANDLE_PATTERN.test(handle)
    ? Effect.succeed(handle)
    : Effect.fail(invalidInput(
        "invalid_handle",
        `handle "${handle}" must be 1-6 characters of a-z, 0-9 and "-" so that wg-sdwan-<handle> fits a Linux interface name (15 bytes)`,
        { handle, max_length: 6 }
      ))

export const interfaceNameFor = (handle: string) => `wg-sdwan-${handle}`

const ULA = parseCidr("fc00::/7")

/** An operator-chosen overlay prefix must be a /64 inside the IPv6 ULA range. */
export const validateOverlayPrefix = (text: string): Effect.Effect<Cidr, InvalidInputError> => {
  const parsed = parseCidr(text)
  if (!parsed.ok) return Effect.fail(invalidInput("invalid_cidr", parsed.reason, { overlay_prefix: text }))
  const { cidr } = parsed
  if (cidr.family !== 6 || cidr.prefixLength !== 64 || !parsed.wasCanonical || !ULA.ok || !overlaps(ULA.cidr, cidr)) {
    return Effect.fail(
      invalidInput(
        "invalid_overlay_prefix",
        `overlay_prefix must be a canonical IPv6 ULA /64 (inside fc00::/7), such as fd12:3456:789a:1::/64; omit it to have one allocated`,
        { overlay_prefix: text }
      )
    )
  }
  return Effect.succeed(cidr)
}

export const validateListenPort = (port: number): Effect.Effect<number, InvalidInputError> =>
  Number.isInteger(port) && port >= 1 && port <= 65535
    ? Effect.succeed(port)
    : Effect.fail(
        invalidInput("invalid_listen_port", `listen_port ${port} must be an integer from 1 to 65535 (WireGuard's default is 51820)`, { listen_port: port })
      )

/**
 * R4 + R21: candidate service CIDRs for a cluster of one IP family, in order of preference.
 * IPv4: k3s's default, then the rest of 10.0.0.0/8 in /16 steps, then 172.16.0.0/12. IPv6: k3s's
 * default fd00:43::/112, then fd00:44::/112, ... (ULA /112s). The first one that overlaps no pod
 * prefix or overlay range of the account is used.
 */
export function* serviceCidrCandidates(family: 4 | 6 = 4): Generator<string> {
  if (family === 6) {
    for (let group = 0x43; group <= 0xff; group++) yield `fd00:${group.toString(16)}::/112`
    return
  }
  yield K3S_DEFAULT_SERVICE_CIDR
  for (let octet = 44; octet <= 255; octet++) yield `10.${octet}.0.0/16`
  for (let octet = 16; octet <= 31; octet++) yield `172.${octet}.0.0/16`
}
