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

  it("does not punish other addresses; a success halves an address's failures instead of wiping them", () => {
    const { throttle, advance } = throttleAt()
    for (let i = 0; i < 5; i++) throttle.recordFailure("bad")
    expect(throttle.check("bad").allowed).toBe(false)
    expect(throttle.check("good").allowed).toBe(true)
    advance(8_000)
    throttle.recordSuccess("bad") // 5 failures -> 2
    expect(throttle.check("bad").allowed).toBe(true)
    throttle.recordFailure("bad") // 3: still free
    expect(throttle.check("bad").allowed).toBe(true)
    throttle.recordFailure("bad") // 4: one over the allowance
    expect(throttle.check("bad").allowed).toBe(false)
    // A single good agent cannot launder the address: two successes leave it at 2, not 0.
  })

  it("runs at most a few checks at once per address; the others wait their turn and see the failures before them", async () => {
    const { throttle } = throttleAt()
    const verdicts = Array.from({ length: 10 }, () => throttle.begin("nat"))
    const started: Array<boolean> = []
    for (const [i, verdict] of verdicts.entries()) void verdict.then((v) => (started[i] = v.allowed))
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect(started.filter((allowed) => allowed)).toHaveLength(4)
    for (let i = 0; i < 4; i++) throttle.finish("nat", false)
    await Promise.all(verdicts)
    // 4 failures recorded (3 free): everything that waited is refused without a check.
    expect(started.filter((allowed) => allowed)).toHaveLength(4)
    expect(started).toHaveLength(10)
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
