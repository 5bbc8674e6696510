/**
 * CIDR prefixes as exact integer ranges. Parsing is done by ipaddr.js (it knows every
 * IPv4/IPv6 spelling); everything after that is bigint arithmetic, so overlap and
 * containment are exact for both families.
 */
import ipaddr from "ipaddr.js"

export type IpFamily = 4 | 6

export interface Cidr {
  readonly family: IpFamily
  /** First address of the range. */
  readonly start: bigint
  /** Last address of the range. */
  readonly end: bigint
  readonly prefixLength: number
  /** The canonical spelling: network address with host bits zero, compressed IPv6. */
  readonly canonical: string
}

const bitsOf = (family: IpFamily) => (family === 4 ? 32 : 128)

const toBigInt = (bytes: ReadonlyArray<number>): bigint => bytes.reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n)

export const formatAddress = (family: IpFamily, value: bigint): string => {
  const bytes: Array<number> = []
  for (let i = family === 4 ? 3 : 15; i >= 0; i--) bytes.push(Number((value >> BigInt(i * 8)) & 0xffn))
  return ipaddr.fromByteArray(bytes).toString()
}

export type CidrParse =
  | { readonly ok: true; readonly cidr: Cidr; readonly wasCanonical: boolean }
  | { readonly ok: false; readonly reason: string }

/** Parses `a.b.c.d/n` or `x::y/n`. A value with host bits set parses, with `wasCanonical: false`. */
/**
 * Parsed prefixes by text. The store hands back the same prefixes over and over (every network
 * creation and join reads the account's ranges), and parsing is the costly part: a bounded
 * memo makes those reads cheap. Results are immutable, so sharing them is safe.
 */
const parsedPrefixes = new Map<string, CidrParse>()
const MEMO_LIMIT = 20_000

export const parseCidr = (text: string): CidrParse => {
  const known = parsedPrefixes.get(text)
  if (known !== undefined) return known
  const result = parseCidrUncached(text)
  if (parsedPrefixes.size >= MEMO_LIMIT) parsedPrefixes.clear()
  parsedPrefixes.set(text, result)
  return result
}

const parseCidrUncached = (text: string): CidrParse => {
  let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number]
  try {
    // The family by its separator: ipaddr's generic parser tries IPv6 first and throws for IPv4.
    const trimmed = text.trim()
    parsed = trimmed.includes(":") ? ipaddr.IPv6.parseCIDR(trimmed) : ipaddr.IPv4.parseCIDR(trimmed)
  } catch {
    return { ok: false, reason: `"${text}" is not a CIDR prefix such as 10.42.0.0/16 or fd00:1::/64` }
  }
  const [address, prefixLength] = parsed
  if (address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
    return { ok: false, reason: `"${text}" is an IPv4-mapped IPv6 prefix; write the IPv4 prefix instead` }
  }
  const family: IpFamily = address.kind() === "ipv4" ? 4 : 6
  const bits = bitsOf(family)
  const hostBits = BigInt(bits - prefixLength)
  const value = toBigInt(address.toByteArray())
  const start = (value >> hostBits) << hostBits
  const end = start + (1n << hostBits) - 1n
  const canonical = `${formatAddress(family, start)}/${prefixLength}`
  return { ok: true, cidr: { family, start, end, prefixLength, canonical }, wasCanonical: start === value }
}

export const overlaps = (a: Cidr, b: Cidr): boolean => a.family === b.family && a.start <= b.end && b.start <= a.end

export const contains = (outer: Cidr, inner: Cidr): boolean =>
  outer.family === inner.family && outer.start <= inner.start && inner.end <= outer.end

/**
 * A fixed-width, sortable key for a range boundary: IPv4 and IPv6 live in separate families,
 * and 32 hex digits order the same as the numbers, so an ordinary B-tree index answers
 * "the nearest prefix before / after this address" in O(log n) (R6).
 */
export const rangeKey = (value: bigint): string => value.toString(16).padStart(32, "0")

/** The address `hostIndex` inside a prefix (e.g. the n-th /128 in a /64). */
export const addressInPrefix = (prefix: Cidr, hostIndex: bigint): string => {
  if (prefix.start + hostIndex > prefix.end) throw new RangeError(`host ${hostIndex} is outside ${prefix.canonical}`)
  return formatAddress(prefix.family, prefix.start + hostIndex)
}
