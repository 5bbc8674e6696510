import { describe, expect, it } from "vitest"
import { ApiKeyCache } from "../src/accounts/api-key-cache"
import type { ApiKeyIdentity } from "../src/accounts/api-keys"
import type { AccountId } from "../src/model/ids"

const identity = (id: string): ApiKeyIdentity => ({ account_id: "acc_a" as AccountId, api_key_id: id, name: id, role: "admin" })

describe("the cache of checked API keys", () => {
  it("serves an identity until its time is up, or until another process wrote to the store", () => {
    const cache = new ApiKeyCache(1_000)
    cache.put("h1", identity("key_1"), 10_000, 7, cache.begin())
    expect(cache.get("h1", 10_999, 7)?.api_key_id).toBe("key_1")
    expect(cache.get("h1", 11_000, 7)).toBeUndefined()
    cache.put("h1", identity("key_1"), 20_000, 7, cache.begin())
    expect(cache.get("h1", 20_001, 8)).toBeUndefined()
    // A clock that went back does not stretch an entry's life.
    cache.put("h1", identity("key_1"), 30_000, undefined, cache.begin())
    expect(cache.get("h1", 29_000, undefined)).toBeUndefined()
  })

  it("a revocation drops the key, and a check that read the store before it does not put it back", () => {
    const cache = new ApiKeyCache(60_000)
    cache.put("h1", identity("key_1"), 0, undefined, cache.begin())
    cache.put("h2", identity("key_2"), 0, undefined, cache.begin())
    const readBefore = cache.begin()
    cache.forget("key_1")
    expect(cache.get("h1", 1, undefined)).toBeUndefined()
    expect(cache.get("h2", 1, undefined)?.api_key_id).toBe("key_2")
    cache.put("h1", identity("key_1"), 1, undefined, readBefore)
    expect(cache.get("h1", 2, undefined)).toBeUndefined()
    cache.forgetAll()
    expect(cache.size).toBe(0)
  })

  it("holds at most its bound, dropping the oldest first; a zero time keeps nothing", () => {
    const cache = new ApiKeyCache(60_000, 3)
    for (const n of [1, 2, 3, 4]) cache.put(`h${n}`, identity(`key_${n}`), 0, undefined, cache.begin())
    expect(cache.size).toBe(3)
    expect(cache.get("h1", 1, undefined)).toBeUndefined()
    expect(cache.get("h4", 1, undefined)?.api_key_id).toBe("key_4")
    const off = new ApiKeyCache(0)
    off.put("h1", identity("key_1"), 0, undefined, off.begin())
    expect(off.size).toBe(0)
  })
})
