import { describe, expect, it } from "vitest"
import { internedStringLists, internedStrings } from "../src/agent/interned"

describe("values sessions share, kept once", () => {
  it("gives back the first copy of an equal value, and stops remembering at its bound", () => {
    const lists = internedStringLists()
    const first = lists.of(["terminal", "vip-probe"])
    expect(lists.of(["terminal", "vip-probe"])).toBe(first)
    expect(lists.of(["terminal"])).not.toBe(first)
    const strings = internedStrings()
    // An agent sending ever-new values cannot grow the table past its bound: they come back as they are.
    for (let i = 0; i < 5_000; i++) strings.of(`acc_${i}`)
    const late = `acc_${"x".repeat(3)}`
    expect(strings.of(late)).toBe(late)
    expect((strings as unknown as { canonical: Map<string, string> }).canonical.size).toBe(4_096)
  })
})
