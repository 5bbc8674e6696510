/** A first `hello` as the benchmarks' simulated agents send it (one place for its shape), and their acks. */
import { Result } from "effect"
import type WebSocket from "ws"
import { decodeGatewayFrame, encodeFrame, PROTOCOL_VERSION, type WireguardKeyEntry } from "@fleetplane/agent-protocol"

/** A joiner that only acknowledges every config push as applied (what is measured is the others' receipt). */
export const ackEveryConfigPush = (socket: WebSocket) => {
  socket.on("message", (data: Buffer) => {
    const decoded = decodeGatewayFrame(data)
    if (Result.isSuccess(decoded) && decoded.success.type === "config_push") {
      const body = decoded.success.body
      socket.send(encodeFrame({ type: "config_ack", body: { kind: body.kind, key: body.key, version: body.version, status: "applied" } }))
    }
  })
  socket.on("error", () => undefined)
}

export const helloFrame = (
  agent: { readonly instance_id: string; readonly credential: string },
  options: { readonly capabilities?: ReadonlyArray<string>; readonly wireguardKeys?: ReadonlyArray<WireguardKeyEntry>; readonly agentVersion?: string } = {}
) =>
  encodeFrame({
    type: "hello",
    body: {
      instance_id: agent.instance_id,
      credential: agent.credential,
      agent_version: options.agentVersion ?? "bench",
      protocol_versions: [PROTOCOL_VERSION],
      capabilities: [...(options.capabilities ?? [])] as never,
      wireguard_keys: [...(options.wireguardKeys ?? [])],
      applied: [],
      held_vips: []
    }
  })
