/** A first `hello` as the benchmarks' simulated agents send it (one place for its shape). */
import { encodeFrame, PROTOCOL_VERSION, type WireguardKeyEntry } from "@fleetplane/agent-protocol"

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
