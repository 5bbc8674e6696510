import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { ClusterId, ID_PREFIXES, newId, NetworkId, type IdKind } from "../src/index"

describe("entity ids", () => {
  it.each(Object.entries(ID_PREFIXES))("%s ids carry the prefix %s_ and 120 random bits", (kind, prefix) => {
    const id = newId(kind as IdKind)
    expect(id).toMatch(new RegExp(`^${prefix}_[0-9a-hjkmnp-tv-z]{24}$`))
  })

  it("are never repeated or sequential", () => {
    const ids = Array.from({ length: 10_000 }, () => newId("cluster"))
    expect(new Set(ids).size).toBe(ids.length)
    const sorted = [...ids].sort()
    expect(sorted).not.toEqual(ids)
  })

  it("decode only with the right prefix", () => {
    const cluster = newId("cluster")
    expect(Schema.is(ClusterId)(cluster)).toBe(true)
    expect(Schema.is(NetworkId)(cluster)).toBe(false)
    expect(Schema.is(ClusterId)("clu_1")).toBe(false)
  })
})
