/**
 * The agent's shipped systemd unit is one systemd accepts (`systemd-analyze verify`, warnings
 * counted as failures), takes its credential from a file systemd hands over (never argv), and
 * uses only flags the agent has.
 */
import { spawnSync } from "node:child_process"
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"

const UNIT = join(__dirname, "..", "systemd", "fleetplane-agent.service")

describe("systemd unit", () => {
  it("passes systemd-analyze verify with no warning, keeps the credential off the command line, and uses flags the agent has", () => {
    if (spawnSync("sh", ["-c", "command -v systemd-analyze"]).status !== 0) {
      throw new Error("systemd-analyze is missing: install Debian's systemd package (npm test does when it runs as root)")
    }
    const unit = readFileSync(UNIT, "utf8")
    const dir = mkdtempSync(join(tmpdir(), "fleetplane-agent-unit-"))
    const binary = join(dir, "fleetplane-agent")
    writeFileSync(binary, "#!/bin/sh\n")
    chmodSync(binary, 0o755)
    const copy = join(dir, "fleetplane-agent.service")
    writeFileSync(copy, unit.replace("/usr/local/bin/fleetplane-agent", binary))
    const verify = spawnSync("systemd-analyze", ["verify", "--man=no", copy], { encoding: "utf8" })
    expect(verify.stderr).toBe("")
    expect(verify.status).toBe(0)

    const execStart = unit.match(/^ExecStart=(.*)$/m)![1]!
    expect(execStart).toContain("--credential-file %d/agent.credential")
    expect(execStart).not.toMatch(/--credential\s/)
    const help = spawnSync(process.execPath, [join(__dirname, "..", "dist", "cli.js"), "--help"], { encoding: "utf8" })
    const usage = `${help.stdout}${help.stderr}`
    for (const flag of execStart.match(/--[a-z-]+/g)!) expect(usage, flag).toContain(`${flag} `)
  })
})
