/**
 * The parts of applying a WireGuard config that the agent does itself instead of running a
 * tool, checked against the tool: what `wg-quick strip` prints, and the AllowedIPs and
 * addresses whose kernel routes and addresses it reconciles.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { addressesOf, allowedIpsOf, stripWgQuickKeys } from "../src/wireguard-interface"

const key = () => execFileSync("wg", ["genkey"], { encoding: "utf8" }).trim()
const config = () => `# generated
[Interface]
PrivateKey = ${key()}
Address = fd00:1::3/128, 100.64.0.3/32
ListenPort = 51820
MTU = 1380
DNS = 10.43.0.10
PostUp = echo up   # wg-quick only
SaveConfig = false

[Peer]
# k3s-prod-server-1
PublicKey = ${execFileSync("wg", ["pubkey"], { input: key(), encoding: "utf8" }).trim()}
Endpoint = 10.77.0.10:51820
AllowedIPs = fd00:1::1/128, 100.64.0.1/32, 10.42.1.0/24
AllowedIPs = 100.64.0.2
PersistentKeepalive = 25
`

describe("applying a WireGuard config without wg-quick on every change", () => {
  it("strips exactly what wg-quick strip strips", () => {
    const content = config()
    const file = join(mkdtempSync(join(tmpdir(), "fleetplane-strip-")), "wg-sdwan-prod.conf")
    writeFileSync(file, content, { mode: 0o600 })
    const byTool = execFileSync("wg-quick", ["strip", file], { encoding: "utf8" })
    // wg-quick prints the kept lines as they are; compare the lines `wg` reads (not blank, not comments).
    const meaningful = (text: string) => text.split("\n").filter((line) => line.replace(/#.*/, "").trim() !== "")
    expect(meaningful(stripWgQuickKeys(content))).toEqual(meaningful(byTool))
    // (That `wg syncconf` applies it to a live interface is shown by the data-plane test.)
  })

  it("reads every address and every AllowedIPs entry, host routes written out", () => {
    const content = config()
    expect(addressesOf(content)).toEqual(["fd00:1::3/128", "100.64.0.3/32"])
    expect(allowedIpsOf(content)).toEqual(["fd00:1::1/128", "100.64.0.1/32", "10.42.1.0/24", "100.64.0.2/32"])
  })
})
