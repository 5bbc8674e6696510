/**
 * Identities of API keys recently checked, so an admin request does not read the store for its
 * key every time (a read and a transaction on every request: a tenth of a small request's CPU).
 *
 * A cached identity is used only while all of these hold:
 * - it is younger than `ttlMs` — the bound on a revocation made without the SDK (by hand);
 * - no revocation was seen since: `forget` (the key's own revocation, committed here or
 *   announced by another gateway) drops it, and `forgetAll` drops everything (after signals
 *   from other gateways may have been missed);
 * - the store's `externalWrites` counter has not moved (SQLite: another process, such as
 *   `fleetplane apikey revoke --db`, committed to the file), so a revocation from outside is
 *   seen by the next request, as before the cache.
 *
 * Only the secret's hash is kept (the key itself is never stored), and only for known keys: an
 * unknown or revoked key is read from the store every time, so a key created a moment ago
 * works at once and guessing fills nothing.
 */
import type { ApiKeyIdentity } from "./api-keys"

interface Entry {
  readonly identity: ApiKeyIdentity
  readonly checkedAt: number
  readonly externalWrites: number | undefined
}

export class ApiKeyCache {
  private readonly entries = new Map<string, Entry>()
  /** Moves on every forget: a read that began before it must not cache what it read. */
  private generation = 0

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000
  ) {}

  get(keyHash: string, now: number, externalWrites: number | undefined): ApiKeyIdentity | undefined {
    const entry = this.entries.get(keyHash)
    if (entry === undefined) return undefined
    if (now - entry.checkedAt >= this.ttlMs || now < entry.checkedAt || entry.externalWrites !== externalWrites) {
      this.entries.delete(keyHash)
      return undefined
    }
    return entry.identity
  }

  /** What `put` needs to know whether a revocation happened while the store was read. */
  begin(): number {
    return this.generation
  }

  put(keyHash: string, identity: ApiKeyIdentity, checkedAt: number, externalWrites: number | undefined, generation: number): void {
    if (this.ttlMs <= 0 || generation !== this.generation) return
    if (this.entries.size >= this.maxEntries && !this.entries.has(keyHash)) {
      // The oldest insertion goes first (a Map iterates in insertion order).
      this.entries.delete(this.entries.keys().next().value!)
    }
    this.entries.set(keyHash, { identity, checkedAt, externalWrites })
  }

  /** A key was revoked. */
  forget(apiKeyId: string): void {
    this.generation++
    for (const [hash, entry] of this.entries) if (entry.identity.api_key_id === apiKeyId) this.entries.delete(hash)
  }

  forgetAll(): void {
    this.generation++
    this.entries.clear()
  }

  get size(): number {
    return this.entries.size
  }
}
