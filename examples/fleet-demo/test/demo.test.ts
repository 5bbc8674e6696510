import { mkdtempSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runDemo } from "../src/index"

describe("npm run demo", () => {
  it("walks the runbook and ends in the state it promises", async () => {
    let output = ""
    const summary = await runDemo({ dir: join(mkdtempSync(join(tmpdir(), "fleetplane-demo-")), ".demo"), fast: true, write: (text) => (output += text) })
    const prod = summary.clusters.find((c) => c.name === "k3s-prod")
    const staging = summary.clusters.find((c) => c.name === "k3s-staging")
    expect(prod).toMatchObject({ status: "active", nodes: 5, vip_epoch: 2 })
    expect(staging).toMatchObject({ status: "decommissioned", nodes: 0, vip_epoch: null })
    expect(summary.nodes.filter((n) => n.cluster === "k3s-prod").map((n) => n.role).sort()).toEqual([
      "control-plane",
      "control-plane",
      "worker",
      "worker",
      "worker"
    ])
    // The killed server shows NotReady (as kubectl would), and that its agent went silent.
    expect(summary.nodes.find((n) => n.hostname === "k3s-prod-server-1")).toMatchObject({ agent: "silent", status: "not_ready" })
    expect(summary.nodes.filter((n) => n.agent === "heartbeating")).toHaveLength(4)
    // R24: asking for another cluster than the template names is refused.
    expect(summary.rejectedWorker.code).toBe("assignment_mismatch")
    expect(summary.rejectedWorker.retry_after_ms).toBeGreaterThan(0)
    expect(summary.networkWarnings.join(" ")).toContain("10.43.0.0/16")
    expect(summary.stagingInstancesStillConnected).toBe(3)
    for (const file of summary.kubeconfigs) expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(summary.convergenceMs).toBeGreaterThanOrEqual(0)
    expect(summary.routedToNewHolder).toBe(4) // every live prod peer, from its WireGuard file on disk
    expect(summary.silenceDetectedMs).toBeGreaterThan(0)
    for (const phase of ["Phase 1", "Phase 2", "Phase 3", "Phase 4", "Phase 5", "Phase 6", "Summary"]) expect(output).toContain(phase)
    expect(summary.elapsedMs).toBeLessThan(60_000)
  })
})
