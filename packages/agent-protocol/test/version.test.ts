import { describe, expect, it } from "vitest"
import { negotiateProtocolVersion, PROTOCOL_VERSION } from "../src/index"

describe("protocol version negotiation", () => {
  it("picks the newest version both sides speak", () => {
    expect(negotiateProtocolVersion([1, 2, 3], [1, 2])).toBe(2)
    expect(negotiateProtocolVersion([PROTOCOL_VERSION])).toBe(PROTOCOL_VERSION)
  })

  it("finds no version when the agent only speaks newer or older ones", () => {
    expect(negotiateProtocolVersion([7, 8], [1, 2])).toBeUndefined()
    expect(negotiateProtocolVersion([])).toBeUndefined()
  })
})
