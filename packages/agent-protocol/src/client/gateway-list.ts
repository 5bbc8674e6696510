/**
 * Which gateway an agent dials next, when it knows several (configured, or named by a
 * gateway in `welcome`):
 *
 * - the first configured gateway is preferred;
 * - a session that ends for any other reason is retried on the same gateway first (most
 *   drops are blips);
 * - an attempt that fails before `welcome` moves to the next gateway;
 * - a gateway that drains (closes with 1001, going away) sends the agent to the preferred one,
 *   or to the next when it was the preferred one itself.
 *
 * Backoff counts whole rounds through the list, so a dead gateway costs one quick attempt,
 * not a growing delay, while the agent has others to try.
 */
export const MAX_KNOWN_GATEWAYS = 32

export class GatewayList {
  private readonly urls: Array<string>
  private index = 0
  private failuresSinceWelcome = 0

  constructor(configured: ReadonlyArray<string>) {
    if (configured.length === 0) throw new Error("at least one gateway URL is needed")
    this.urls = [...new Set(configured)].slice(0, MAX_KNOWN_GATEWAYS)
  }

  get current(): string {
    return this.urls[this.index]!
  }

  get all(): ReadonlyArray<string> {
    return this.urls
  }

  /** Gateways named in `welcome`: tried after the configured ones. */
  learn(urls: ReadonlyArray<string>) {
    for (const url of urls) if (!this.urls.includes(url) && this.urls.length < MAX_KNOWN_GATEWAYS) this.urls.push(url)
  }

  welcomed() {
    this.failuresSinceWelcome = 0
  }

  /** The connection ended; `welcomed` says whether it had a session. Returns the backoff attempt number. */
  ended(welcomed: boolean, draining: boolean): number {
    if (draining) {
      this.index = this.index === 0 ? 1 % this.urls.length : 0
      return 0
    }
    if (welcomed) return 0
    this.failuresSinceWelcome += 1
    this.index = (this.index + 1) % this.urls.length
    return Math.floor((this.failuresSinceWelcome - 1) / this.urls.length)
  }
}
