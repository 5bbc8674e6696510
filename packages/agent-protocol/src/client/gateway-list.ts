import { lookup } from "node:dns/promises"
import { isIP } from "node:net"

/**
 * Which gateway an agent dials next, when it knows several (configured, named by a gateway in
 * `welcome`, or one DNS name that resolves to several addresses):
 *
 * - the first configured gateway is preferred;
 * - a session that ends for any other reason is retried on the same gateway (and address)
 *   first (most drops are blips);
 * - an attempt that fails before `welcome` moves to the next address of the same name, and
 *   after its last address to the next gateway (names are resolved again on the next pass, so
 *   a changed DNS record is seen);
 * - a gateway that drains (closes with 1001, going away) sends the agent to the preferred one,
 *   or to the next when it was the preferred one itself.
 *
 * Backoff counts whole rounds through the list, so a dead gateway costs one quick attempt,
 * not a growing delay, while the agent has others to try.
 */
export const MAX_KNOWN_GATEWAYS = 32
/** At most this many addresses of one name are tried in a pass (a huge record set must not stall a pass). */
export const MAX_ADDRESSES_PER_NAME = 8

/** Every address a host name resolves to (A and AAAA), in the resolver's order. */
export type ResolveAddresses = (hostname: string) => Promise<ReadonlyArray<string>>

export const resolveAllAddresses: ResolveAddresses = async (hostname) =>
  (await lookup(hostname, { all: true, order: "verbatim" })).map((entry) => entry.address)

/** Where the next connection goes: the gateway URL and, for a name with several addresses, the one to use. */
export interface DialTarget {
  readonly url: string
  /** Undefined when the URL's host is an address, resolves to one address, or could not be resolved. */
  readonly address: string | undefined
}

export class GatewayList {
  private readonly urls: Array<string>
  private index = 0
  /** The current URL's addresses for this pass (undefined: not resolved yet). */
  private addresses: ReadonlyArray<string> | undefined
  private addressIndex = 0
  private roundsSinceWelcome = 0

  constructor(configured: ReadonlyArray<string>) {
    if (configured.length === 0) throw new Error("at least one gateway URL is needed")
    this.urls = [...new Set(configured)].slice(0, MAX_KNOWN_GATEWAYS)
  }

  get current(): string {
    return this.urls[this.index]!
  }

  /** The address the current connection was pinned to, when its name resolved to several. */
  get currentAddress(): string | undefined {
    return this.addresses !== undefined && this.addresses.length > 1 ? this.addresses[this.addressIndex] : undefined
  }

  get all(): ReadonlyArray<string> {
    return this.urls
  }

  /** Gateways named in `welcome`: tried after the configured ones. */
  learn(urls: ReadonlyArray<string>) {
    for (const url of urls) if (!this.urls.includes(url) && this.urls.length < MAX_KNOWN_GATEWAYS) this.urls.push(url)
  }

  /** The next connection's target, resolving the current URL's host name when this pass has not yet. */
  async target(resolve: ResolveAddresses): Promise<DialTarget> {
    const url = this.current
    if (this.addresses === undefined) {
      const hostname = hostOf(url)
      const addresses = hostname === undefined || isIP(hostname) !== 0 ? [] : await resolve(hostname).catch(() => [])
      // The list may have moved on while resolving (a stop, a drain): keep only what is still current.
      if (url !== this.current) return { url, address: undefined }
      this.addresses = [...new Set(addresses)].slice(0, MAX_ADDRESSES_PER_NAME)
      this.addressIndex = 0
    }
    return { url, address: this.currentAddress }
  }

  welcomed() {
    this.roundsSinceWelcome = 0
  }

  /** The connection ended; `welcomed` says whether it had a session. Returns the backoff attempt number. */
  ended(welcomed: boolean, draining: boolean): number {
    if (draining) {
      this.moveTo(this.index === 0 ? 1 % this.urls.length : 0)
      return 0
    }
    if (welcomed) return 0
    const attempt = this.roundsSinceWelcome
    if (this.addresses !== undefined && this.addressIndex + 1 < this.addresses.length) {
      this.addressIndex += 1
      return attempt
    }
    const next = (this.index + 1) % this.urls.length
    if (next === 0) this.roundsSinceWelcome += 1
    this.moveTo(next)
    return attempt
  }

  private moveTo(index: number) {
    this.index = index
    this.addresses = undefined
    this.addressIndex = 0
  }
}

const hostOf = (url: string): string | undefined => {
  try {
    const hostname = new URL(url).hostname
    // URL keeps IPv6 literals in brackets.
    return hostname.startsWith("[") ? hostname.slice(1, -1) : hostname
  } catch {
    return undefined
  }
}
