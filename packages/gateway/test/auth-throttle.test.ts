import { describe, expect, it } from "vitest"
import { AuthThrottle } from "../src/index"

const options = { freeFailures: 3, baseDelayMs: 1000, maxDelayMs: 8000, forgetAfterMs: 60_000, maxTrackedAddresses: 3 }

const throttleAt = () => {
  let now = 0
  const throttle = new AuthThrottle(options, () => now)
  return { throttle, advance: (ms: number) => (now += ms) }
}

describe("authentication failure throttle", () => {
  it("lets the first few failures through, then refuses attempts with a retry delay", () => {
    const { throttle } = throttleAt()
    for (let i = 0; i < 3; i++) {
      expect(throttle.check("10.0.0.1").allowed).toBe(true)
      throttle.recordFailure("10.0.0.1")
    }
    expect(throttle.check("10.0.0.1")).toEqual({ allowed: true })
    throttle.recordFailure("10.0.0.1")
    expect(throttle.check("10.0.0.1")).toEqual({ allowed: false, retryAfterMs: 1000 })
  })

  it("doubles the delay per further failure up to the cap", () => {
    const { throttle, advance } = throttleAt()
    const delays: Array<number> = []
    for (let i = 0; i < 9; i++) {
      throttle.recordFailure("a")
      const verdict = throttle.check("a")
      if (!verdict.allowed) {
        delays.push(verdict.retryAfterMs)
        advance(verdict.retryAfterMs)
      }
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 8000, 8000])
  })

  it("does not punish other addresses, and forgets an address after success", () => {
    const { throttle } = throttleAt()
    for (let i = 0; i < 5; i++) throttle.recordFailure("bad")
    expect(throttle.check("bad").allowed).toBe(false)
    expect(throttle.check("good").allowed).toBe(true)
    throttle.recordSuccess("bad")
    expect(throttle.check("bad").allowed).toBe(true)
  })

  it("forgets a quiet address after forgetAfterMs", () => {
    const { throttle, advance } = throttleAt()
    for (let i = 0; i < 5; i++) throttle.recordFailure("x")
    advance(60_001)
    expect(throttle.check("x").allowed).toBe(true)
    throttle.recordFailure("x")
    expect(throttle.check("x").allowed).toBe(true)
  })

  it("keeps memory bounded by evicting the least recently seen address", () => {
    const { throttle } = throttleAt()
    for (const address of ["a", "b", "c", "d", "e"]) throttle.recordFailure(address)
    expect(throttle.trackedAddresses).toBe(3)
  })
})
