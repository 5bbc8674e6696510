import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { agentMessageSchemas, CloseCode, gatewayMessageSchemas, ProtocolErrorCode, RefusalCode } from "../src/index"

const protocolDoc = readFileSync(new URL("../PROTOCOL.md", import.meta.url), "utf8")

describe("PROTOCOL.md documents the whole contract", () => {
  it.each(Object.entries(CloseCode))("close code %s (%i)", (name, code) => {
    expect(protocolDoc).toMatch(new RegExp(`\\| ${code} \\| \`${name}\``))
  })

  it.each(Object.values(ProtocolErrorCode))("error code %s", (code) => {
    expect(protocolDoc).toContain(`\`${code}\``)
  })

  it.each(Object.values(RefusalCode))("refusal code %s", (code) => {
    expect(protocolDoc).toMatch(new RegExp(`\\| \`${code}\` \\|`))
  })

  it.each([...new Set([...Object.keys(agentMessageSchemas), ...Object.keys(gatewayMessageSchemas)])])("message %s", (type) => {
    expect(protocolDoc).toMatch(new RegExp(`^### \`${type}\``, "m"))
  })
})
