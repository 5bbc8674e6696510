/**
 * The shipped systemd unit is one systemd accepts (`systemd-analyze verify`, with unknown or
 * misspelt keys counted as failures, though systemd only warns), and its command line uses
 * only flags the gateway has.
 */
import { spawnSync } from "node:child_process"
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runCli } from "../src/index"

const UNIT = join(__dirname, "..", "systemd", "fleetplane-gateway.service")

describe("systemd unit", () => {
  it("passes systemd-analyze verify with no warning, and starts the gateway with flags it has", async () => {
    if (spawnSync("sh", ["-c", "command -v systemd-analyze"]).status !== 0) {
      throw new Error("systemd-analyze is missing: install Debian's systemd package (npm test does when it runs as root)")
    }
    const unit = readFileSync(UNIT, "utf8")
    // verify checks that ExecStart's binary exists: point it at a stand-in.
    const dir = mkdtempSync(join(tmpdir(), "fleetplane-unit-"))
    const binary = join(dir, "fleetplane")
    writeFileSync(binary, "#!/bin/sh\n")
    chmodSync(binary, 0o755)
    const copy = join(dir, "fleetplane-gateway.service")
    writeFileSync(copy, unit.replace("/usr/local/bin/fleetplane", binary))
    const verify = spawnSync("systemd-analyze", ["verify", "--man=no", copy], { encoding: "utf8" })
    expect(verify.stderr).toBe("")
    expect(verify.status).toBe(0)
    expect(unit).toMatch(/^NoNewPrivileges=yes$/m)
    expect(unit).toMatch(/^ProtectSystem=strict$/m)

    const execStart = unit.match(/^ExecStart=(.*)$/m)![1]!
    let help = ""
    await runCli(["gateway", "--help"], { out: (t) => (help += t), err: () => undefined, ask: undefined }, {})
    for (const flag of execStart.match(/--[a-z-]+/g)!) expect(help, flag).toContain(`${flag} `)
  })
})
