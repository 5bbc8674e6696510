/**
 * PROTOCOL.md is what a third-party agent author reads: every code this gateway can send an
 * agent must be in it — join rejections (from the SDK), refusals and close codes.
 */
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { CloseCode, RefusalCode } from "@fleetplane/agent-protocol"
import { JOIN_REJECTION_CODES } from "@fleetplane/sdk"

const protocolDoc = readFileSync(new URL("../../agent-protocol/PROTOCOL.md", import.meta.url), "utf8")

describe("PROTOCOL.md lists every code the gateway sends", () => {
  it.each(JOIN_REJECTION_CODES)("join_rejected code %s, with its retry_after_ms", (code) => {
    expect(protocolDoc).toMatch(new RegExp(`\\| (\`[a-z_]+\`, )*\`${code}\`(, \`[a-z_]+\`)* \\| [^|]+ \\| \\d+ \\|`))
  })

  it.each(Object.values(RefusalCode))("refusal %s", (code) => expect(protocolDoc).toContain(`| \`${code}\` |`))

  it.each(Object.values(CloseCode).filter((code) => code >= 1001 && code !== CloseCode.PingTimeout && code !== CloseCode.MessageTooBig))("close code %i has its reason", (code) => {
    expect(protocolDoc).toMatch(new RegExp(`^\\| ${code}( / \\d+)? \\| [^|]+ \\|$`, "m"))
  })
})
