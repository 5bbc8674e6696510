import { describe, expect, it } from "vitest"
import { Interned, internedOwnStrings, internedStringLists, internedStrings, ownString } from "../src/domain/interned"

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

  it("holds what `keep` makes of the first value seen, shares it from then on, and still applies `keep` past its bound", () => {
    const kept = new Interned<string>((value) => value.toLowerCase(), (value) => `kept:${value}`)
    expect(kept.of("Ready")).toBe("kept:Ready")
    expect(kept.of("READY")).toBe("kept:Ready")
    for (let i = 0; i < 5_000; i++) kept.of(`net_${i}`)
    expect(kept.of("late")).toBe("kept:late")
    // The copy liveness keeps of a heartbeat's strings is the same text, non-ASCII included.
    const owned = internedOwnStrings()
    expect(owned.of("nœud-ß/10.42.0.0/24")).toBe("nœud-ß/10.42.0.0/24")
    expect(ownString("v1.31.4+k3s1")).toBe("v1.31.4+k3s1")
  })
})
