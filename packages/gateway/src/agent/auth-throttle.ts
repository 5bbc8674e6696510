/**
 * Slows down credential guessing: per remote address, failures beyond a free allowance
 * impose an exponentially growing wait (capped) during which new attempts are refused
 * with close code 4008. Memory is bounded: the least recently seen address is evicted.
 *
 * Checked where credentials are checked (each `hello`), not only at the upgrade, and at most
 * `maxConcurrentChecks` checks run at once per address (the others wait their turn and are
 * judged with the failures of those before them): 40 sockets opened first and 40 bad hellos
 * sent at once get about `freeFailures` credential checks, not 40. A success does not wipe an
 * address's failures, it halves them: one good agent cannot launder a guesser behind the
 * same address.
 *
 * Agents behind one NAT address share its allowance. Only failures count; healthy agents'
 * successes decay it; sessions already open are never touched. A broken agent at such a site
 * can delay other agents' reconnects there by at most `maxDelayMs` (raise `freeFailures` for
 * a site with many agents behind one address).
 */
export interface AuthThrottleOptions {
  /** Failures allowed before any delay applies. */
  readonly freeFailures: number
  /** First delay after the free allowance; doubles per further failure. */
  readonly baseDelayMs: number
  readonly maxDelayMs: number
  /** A quiet address is forgotten after this long. */
  readonly forgetAfterMs: number
  readonly maxTrackedAddresses: number
  /** Credential checks run at once per address; more wait (a reconnect storm behind one NAT still flows). */
  readonly maxConcurrentChecks?: number
  /** Hellos waiting per address beyond which new ones are refused at once (4008). */
  readonly maxWaitingChecks?: number
}

export const DEFAULT_AUTH_THROTTLE: AuthThrottleOptions = {
  freeFailures: 5,
  baseDelayMs: 1_000,
  maxDelayMs: 60_000,
  forgetAfterMs: 15 * 60_000,
  maxTrackedAddresses: 100_000,
  maxConcurrentChecks: 4,
  maxWaitingChecks: 10_000
}

interface AddressRecord {
  failures: number
  blockedUntil: number
  lastSeen: number
}

interface CheckGate {
  running: number
  readonly waiting: Array<() => void>
}

export type ThrottleVerdict = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterMs: number }

export class AuthThrottle {
  // A Map iterates in insertion order; re-inserting on every touch keeps it in LRU order.
  private readonly records = new Map<string, AddressRecord>()
  private readonly gates = new Map<string, CheckGate>()

  constructor(
    private readonly options: AuthThrottleOptions = DEFAULT_AUTH_THROTTLE,
    private readonly now: () => number = Date.now
  ) {}

  /** Whether an attempt from this address may be checked now. */
  check(address: string): ThrottleVerdict {
    const record = this.records.get(address)
    if (record === undefined) return { allowed: true }
    const now = this.now()
    if (now - record.lastSeen > this.options.forgetAfterMs) {
      this.records.delete(address)
      return { allowed: true }
    }
    return record.blockedUntil > now ? { allowed: false, retryAfterMs: record.blockedUntil - now } : { allowed: true }
  }

  /**
   * A credential check wants to start: waits for one of the address's check slots, then
   * judges it with every failure recorded so far. When allowed, call `finish` once the check
   * is done (it frees the slot).
   */
  async begin(address: string): Promise<ThrottleVerdict> {
    let gate = this.gates.get(address)
    if (gate === undefined) {
      gate = { running: 0, waiting: [] }
      this.gates.set(address, gate)
    }
    if (gate.running >= (this.options.maxConcurrentChecks ?? 4)) {
      if (gate.waiting.length >= (this.options.maxWaitingChecks ?? 10_000)) return { allowed: false, retryAfterMs: this.options.baseDelayMs }
      await new Promise<void>((resolve) => gate!.waiting.push(resolve))
    }
    gate.running += 1
    const verdict = this.check(address)
    if (!verdict.allowed) this.release(address)
    return verdict
  }

  /** A check allowed by `begin` finished; `ok: undefined` when it could not be decided (the store failed). */
  finish(address: string, ok: boolean | undefined): void {
    if (ok === true) this.recordSuccess(address)
    else if (ok === false) this.recordFailure(address)
    this.release(address)
  }

  private release(address: string) {
    const gate = this.gates.get(address)
    if (gate === undefined) return
    gate.running -= 1
    const next = gate.waiting.shift()
    if (next !== undefined) next()
    else if (gate.running === 0) this.gates.delete(address)
  }

  private touch(address: string): AddressRecord {
    const now = this.now()
    const previous = this.records.get(address)
    const record =
      previous !== undefined && now - previous.lastSeen <= this.options.forgetAfterMs
        ? previous
        : { failures: 0, blockedUntil: 0, lastSeen: now }
    record.lastSeen = now
    this.records.delete(address)
    this.records.set(address, record)
    return record
  }

  recordFailure(address: string): void {
    const now = this.now()
    const record = this.touch(address)
    record.failures += 1
    const excess = record.failures - this.options.freeFailures
    if (excess > 0) {
      record.blockedUntil = now + Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** Math.min(excess - 1, 30))
    }
    while (this.records.size > this.options.maxTrackedAddresses) {
      const oldest = this.records.keys().next().value
      if (oldest === undefined) break
      this.records.delete(oldest)
    }
  }

  /** A success halves the address's failures (and lifts nothing early: a running block stays). */
  recordSuccess(address: string): void {
    const record = this.records.get(address)
    if (record === undefined) return
    record.failures = Math.floor(record.failures / 2)
    if (record.failures === 0 && record.blockedUntil <= this.now()) this.records.delete(address)
  }

  get trackedAddresses(): number {
    return this.records.size
  }
}
