// A quick end-to-end check of the built package: encode a hello, decode it, print the result.
import { Result } from "effect"
import { decodeAgentFrame, encodeFrame, PROTOCOL_VERSION } from "../dist/index.js"

const hello = {
  type: "hello",
  body: {
    instance_id: "ins_demo",
    credential: "demo-credential",
    agent_version: "0.1.0",
    protocol_versions: [PROTOCOL_VERSION],
    capabilities: ["wireguard", "k3s"],
    wireguard_keys: [],
    applied: [],
    held_vips: []
  }
}
const frame = encodeFrame(hello)
const decoded = decodeAgentFrame(frame)
if (Result.isFailure(decoded)) {
  console.error(`protocol smoke check failed: ${decoded.failure.message}`)
  process.exit(1)
}
console.log(`protocol v${PROTOCOL_VERSION}: a hello encodes to ${frame.length} bytes and decodes back as "${decoded.success.type}".`)
console.log("The full fleet demo arrives with examples/fleet-demo; until then this is the main job.")
