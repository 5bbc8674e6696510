import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { phasesWithEffect, phasesWithPromises } from "../src/index"

describe("embedding the SDK", () => {
  it("through the Promise facade: two active clusters and a worker in the one it targeted", async () => {
    const lines: Array<string> = []
    const result = await phasesWithPromises((line) => lines.push(line))
    expect(result.clusters).toEqual([
      { name: "k3s-prod-server-1", status: "active" },
      { name: "k3s-staging-server-1", status: "active" }
    ])
    expect(result.prodNodes.sort()).toEqual(["control-plane", "worker"])
    expect(lines.join("\n")).toContain("prod-worker-1: joined")
  })

  it("through Effect layers: an active cluster, and a typed ConflictError recovered by tag", async () => {
    const result = await Effect.runPromise(phasesWithEffect(() => undefined))
    expect(result).toEqual({ status: "active", refused: "pod_prefix_overlap" })
  })
})
