/**
 * Slows down credential guessing: per remote address, failures beyond a free allowance
 * impose an exponentially growing wait (capped) during which new attempts are refused
 * with close code 4008. Memory is bounded: the least recently seen address is evicted.
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
}

export const DEFAULT_AUTH_THROTTLE: AuthThrottleOptions = {
  freeFailures: 5,
  baseDelayMs: 1_000,
  maxDelayMs: 60_000,
  forgetAfterMs: 15 * 60_000,
  maxTrackedAddresses: 100_000
}

interface AddressRecord {
  failures: number
  blockedUntil: number
  lastSeen: number
}

export type ThrottleVerdict = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterMs: number }

export class AuthThrottle {
  // A Map iterates in insertion order; re-inserting on every touch keeps it in LRU order.
  private readonly records = new Map<string, AddressRecord>()

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

  recordFailure(address: string): void {
    const now = this.now()
    const previous = this.records.get(address)
    const record =
      previous !== undefined && now - previous.lastSeen <= this.options.forgetAfterMs
        ? previous
        : { failures: 0, blockedUntil: 0, lastSeen: now }
    record.failures += 1
    record.lastSeen = now
    const excess = record.failures - this.options.freeFailures
    if (excess > 0) {
      record.blockedUntil = now + Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** Math.min(excess - 1, 30))
    }
    this.records.delete(address)
    this.records.set(address, record)
    while (this.records.size > this.options.maxTrackedAddresses) {
      const oldest = this.records.keys().next().value
      if (oldest === undefined) break
      this.records.delete(oldest)
    }
  }

  recordSuccess(address: string): void {
    this.records.delete(address)
  }

  get trackedAddresses(): number {
    return this.records.size
  }
}
