import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Result } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { decodeGatewayFrame, encodeFrame, PROTOCOL_VERSION } from "@fleetplane/agent-protocol"
import type { Gateway } from "../src/index"
import { quietGateway, setupAccount } from "./support/gateway-harness"

let gateway: Gateway | undefined
afterEach(async () => {
  await gateway?.close()
  gateway = undefined
})

describe("gateway over TLS", () => {
  it("serves agents on wss:// with the given certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fleetplane-tls-"))
    const certFile = join(dir, "tls.crt")
    const keyFile = join(dir, "tls.key")
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" })
    gateway = await quietGateway({ tls: { certFile, keyFile } })
    expect(gateway.agentUrl.startsWith("wss://")).toBe(true)
    const account = await setupAccount(gateway)
    const node = await account.provision("s1", account.serverTemplateId)
    const socket = new WebSocket(gateway.agentUrl, { ca: readFileSync(certFile) })
    const welcome = await new Promise<string>((resolve, reject) => {
      socket.on("open", () =>
        socket.send(
          encodeFrame({
            type: "hello",
            body: { instance_id: node.instanceId, credential: node.credential, agent_version: "t", protocol_versions: [PROTOCOL_VERSION], capabilities: [], wireguard_keys: [], applied: [], held_vips: [] }
          })
        )
      )
      socket.on("message", (data: Buffer) => {
        const decoded = decodeGatewayFrame(data)
        if (Result.isSuccess(decoded)) resolve(decoded.success.type)
      })
      socket.on("error", reject)
    })
    expect(welcome).toBe("welcome")
    socket.close()
  })
})
