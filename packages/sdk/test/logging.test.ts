/**
 * One log stream (#16.5): the SDK logs through Effect's logger as JSON lines, in the gateway's
 * format, filtered by the host's level, to the host's writer.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { createFleet } from "../src/index"

describe("logging", () => {
  it("writes JSON lines { time, level, event, ...fields } to the host's writer, at its level and above", async () => {
    const lines: Array<string> = []
    const fleet = await createFleet({ database: ":memory:", runSensor: false, logging: { level: "warn", write: (line) => lines.push(line) } })
    try {
      await fleet.run(Effect.logInfo("below.the_level", { a: 1 }))
      await fleet.run(Effect.logWarning("wireguard.render_failed", { error: "database is locked", retry: "next tick" }))
      await fleet.run(Effect.logError("something.odd", "with", "words"))
      const parsed = lines.map((line) => JSON.parse(line))
      expect(lines.every((line) => line.endsWith("\n") && !line.slice(0, -1).includes("\n"))).toBe(true)
      expect(parsed.map((p) => [p.level, p.event])).toEqual([
        ["warn", "wireguard.render_failed"],
        ["error", "something.odd"]
      ])
      expect(parsed[0]).toMatchObject({ error: "database is locked", retry: "next tick" })
      expect(parsed[1].detail).toBe("with words")
      expect(Date.parse(parsed[0].time)).not.toBeNaN()
    } finally {
      await fleet.close()
    }
    const quiet: Array<string> = []
    const silent = await createFleet({ database: ":memory:", runSensor: false, logging: { level: "silent", write: (line) => quiet.push(line) } })
    await silent.run(Effect.logError("not.written"))
    await silent.close()
    expect(quiet).toEqual([])
  })
})
