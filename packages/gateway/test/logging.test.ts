/**
 * One log stream (#16.5): what the SDK logs inside a gateway comes out of the gateway's logger,
 * in its JSON format and under its --log-level, beside the gateway's own lines.
 */
import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { createLogger, type Gateway } from "../src/index"
import { quietGateway } from "./support/gateway-harness"

let gateway: Gateway | undefined
afterEach(async () => {
  await gateway?.close()
  gateway = undefined
})

describe("one log stream", () => {
  it("relays the SDK's log lines through the gateway's logger and level", async () => {
    const lines: Array<Record<string, unknown>> = []
    gateway = await quietGateway({ database: ":memory:", logger: createLogger("warn", (line) => lines.push(JSON.parse(line))) })
    await gateway.fleet.run(Effect.logWarning("wireguard.render_failed", { error: "database is locked", retry: "next tick" }))
    await gateway.fleet.run(Effect.logInfo("below.the_gateway_level"))
    const sdk = lines.filter((l) => l.event === "wireguard.render_failed")
    expect(sdk).toEqual([{ time: expect.any(String), level: "warn", event: "wireguard.render_failed", error: "database is locked", retry: "next tick" }])
    expect(lines.some((l) => l.event === "below.the_gateway_level")).toBe(false)
  })
})
