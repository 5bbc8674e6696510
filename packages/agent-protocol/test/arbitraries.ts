/**
 * fast-check generators for every protocol message, within the schemas' bounds.
 * Shared by the round-trip and fuzz tests.
 */
import fc from "fast-check"
import type { AgentMessage, GatewayMessage } from "../src/index"

const id = fc.stringMatching(/^[a-z]{2,5}_[A-Za-z0-9]{1,24}$/)
const text = fc.string({ maxLength: 40 })
const count = fc.nat()
const version = fc.integer({ min: 1, max: 2 ** 31 })
const code = fc.stringMatching(/^[a-z][a-z0-9_]{0,20}$/)
const wgKey = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString("base64"))
const moduleName = fc.constantFrom("k3s-server" as const, "k3s-agent" as const)
const configKind = fc.constantFrom("wireguard", "vip_routes", "k3s", "kubeconfig", "token", "module_upgrade", "leave" as const)
const k3s = fc.record(
  {
    service: fc.constantFrom("not_installed", "inactive", "activating", "active", "failed" as const),
    node_ready: fc.boolean(),
    version: text,
    pod_cidr: text
  },
  { requiredKeys: ["service", "node_ready"] }
)
const dimension = fc.integer({ min: 1, max: 1000 })
const small = <T>(arb: fc.Arbitrary<T>) => fc.array(arb, { maxLength: 4 })

const message = <T extends string, B>(type: T, body: fc.Arbitrary<B>) => body.map((b) => ({ type, body: b }))

export const agentMessage: fc.Arbitrary<AgentMessage> = fc.oneof(
  message(
    "hello",
    fc.record({
      instance_id: id,
      credential: fc.string({ minLength: 1, maxLength: 80 }),
      agent_version: text,
      protocol_versions: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 4 }),
      capabilities: small(text),
      wireguard_keys: small(fc.record({ network_id: id, public_key: wgKey })),
      applied: small(fc.record({ kind: configKind, key: id, version })),
      held_vips: small(fc.record({ vip_id: id, epoch: count }))
    })
  ),
  message("wireguard_keys", fc.record({ keys: small(fc.record({ network_id: id, public_key: wgKey })) })),
  message(
    "heartbeat",
    fc.record({
      seq: count,
      k3s,
      wireguard: small(
        fc.tuple(id, count, count).map(([network_id, a, b]) => ({ network_id, peers: Math.max(a, b), fresh_handshakes: Math.min(a, b) }))
      ),
      load: fc.record({
        cpu_ratio: fc.double({ min: 0, max: 64, noNaN: true }),
        memory_ratio: fc.double({ min: 0, max: 1, noNaN: true })
      }),
      vip_probes: small(
        fc.record({
          vip_id: id,
          epoch: count,
          ok: fc.boolean(),
          rtt_ms: fc.option(count, { nil: null }),
          age_ms: count,
          failing_for_ms: fc.option(count, { nil: null }),
          holder_ok: fc.option(fc.boolean(), { nil: null })
        })
      )
    }, { requiredKeys: ["seq", "k3s", "wireguard", "load"] })
  ),
  message(
    "status_report",
    fc.record(
      {
        k3s,
        modules: small(
          fc.record(
            {
              module_name: moduleName,
              version_id: fc.option(id, { nil: null }),
              state: fc.constantFrom("absent", "running", "upgrading", "failed" as const),
              detail: text
            },
            { requiredKeys: ["module_name", "version_id", "state"] }
          )
        ),
        note: text
      },
      { requiredKeys: ["k3s", "modules"] }
    )
  ),
  message(
    "join_request",
    fc.record(
      { request_id: id, module_name: moduleName, target_cluster_id: fc.option(id, { nil: null }), token_fingerprint: text },
      { requiredKeys: ["request_id", "module_name", "target_cluster_id"] }
    )
  ),
  message(
    "config_ack",
    fc.record(
      {
        kind: configKind,
        key: id,
        version,
        status: fc.constantFrom("applied", "failed" as const),
        error: fc.record({ code, message: text })
      },
      { requiredKeys: ["kind", "key", "version", "status"] }
    )
  ),
  message("vip_ack", fc.record({ vip_id: id, epoch: count, held: fc.boolean() })),
  message("terminal_data", fc.record({ channel_id: id, data: fc.uint8Array({ maxLength: 256 }) })),
  message(
    "terminal_exit",
    fc.record({ channel_id: id, exit_code: fc.option(fc.integer(), { nil: null }), signal: fc.option(text, { nil: null }), bytes_out: count })
  ),
  message("terminal_close", fc.record({ channel_id: id, reason: text })),
  message("error", fc.record({ code, message: text, ref_type: text }, { requiredKeys: ["code", "message"] }))
) as fc.Arbitrary<AgentMessage>

const content = fc.string({ maxLength: 400 })

export const gatewayMessage: fc.Arbitrary<GatewayMessage> = fc.oneof(
  message(
    "welcome",
    fc.record({
      session_id: id,
      gateway_id: id,
      protocol_version: version,
      heartbeat_interval_ms: version,
      silence_threshold_ms: version,
      server_time_ms: count,
      max_frame_bytes: version,
      network_ids: small(id)
    }, { requiredKeys: ["session_id", "gateway_id", "protocol_version", "heartbeat_interval_ms", "silence_threshold_ms", "server_time_ms", "max_frame_bytes"] })
  ),
  message(
    "join_accepted",
    fc.record({
      request_id: id,
      cluster_id: id,
      role: fc.constantFrom("control-plane", "worker" as const),
      api_endpoint: text,
      created_cluster: fc.boolean()
    })
  ),
  message("join_rejected", fc.record({ request_id: id, code, message: text, retry_after_ms: count })),
  message(
    "config_push",
    fc.oneof(
      fc.record({
        kind: fc.constant("wireguard" as const),
        key: id,
        version,
        payload: fc.record({
          network_id: id,
          interface_name: text,
          listen_port: version,
          self: fc.record({ peer_id: id, label: text, addresses: fc.array(text, { maxLength: 4 }) }),
          peers: fc.record(
            {
              from_version: count,
              version: count,
              full: fc.boolean(),
              upserts: small(fc.record({ peer_id: id, label: text, public_key: wgKey, endpoint: text, allowed_ips: fc.array(text, { maxLength: 8 }) }, { requiredKeys: ["peer_id", "label", "public_key", "allowed_ips"] })),
              removed: small(id),
              part: fc.record({ index: count, count: version })
            },
            { requiredKeys: ["from_version", "version", "full", "upserts", "removed"] }
          )
        })
      }),
      fc.record({
        kind: fc.constant("vip_routes" as const),
        key: id,
        version,
        payload: fc.record({ network_id: id, interface_name: text, routes: small(
            fc.record(
              {
                vip_id: id,
                address: text,
                public_key: wgKey,
                epoch: count,
                probe: fc.record({ address: text, port: version, holder_address: text, reporters: small(id) })
              },
              { requiredKeys: ["vip_id", "address", "public_key", "epoch"] }
            )
          )
        })
      }),
      fc.record({
        kind: fc.constant("k3s" as const),
        key: id,
        version,
        payload: fc.record({
          cluster_id: id,
          role: fc.constantFrom("control-plane", "worker" as const),
          content,
          files: small(fc.record({ path: fc.stringMatching(/^\/[a-z0-9._/-]{1,40}$/), content, mode: fc.integer({ min: 0, max: 0o777 }) }))
        })
      }),
      fc.record({ kind: fc.constant("kubeconfig" as const), key: id, version, payload: fc.record({ cluster_id: id, content }) }),
      fc.record({ kind: fc.constant("token" as const), key: id, version, payload: fc.record({ cluster_id: id, token: text }) }),
      fc.record({
        kind: fc.constant("module_upgrade" as const),
        key: id,
        version,
        payload: fc.record({ module_name: moduleName, module_id: id, version_id: id, run_id: id })
      }),
      fc.record({ kind: fc.constant("leave" as const), key: id, version, payload: fc.record({ cluster_id: id, reason: text }) })
    )
  ),
  message("vip_assign", fc.record({ vip_id: id, cluster_id: id, network_id: id, address: text, epoch: count })),
  message(
    "vip_release",
    fc.record({ vip_id: id, address: text, epoch: count, reason: fc.constantFrom("fenced", "failover", "decommissioned" as const) })
  ),
  message(
    "terminal_open",
    fc.record({
      channel_id: id,
      command: fc.option(small(text), { nil: null }),
      cols: dimension,
      rows: dimension,
      idle_timeout_ms: version,
      initial_credit_bytes: version
    })
  ),
  message("terminal_data", fc.record({ channel_id: id, data: fc.uint8Array({ maxLength: 256 }) })),
  message("terminal_resize", fc.record({ channel_id: id, cols: dimension, rows: dimension })),
  message("terminal_credit", fc.record({ channel_id: id, bytes: version })),
  message("terminal_close", fc.record({ channel_id: id, reason: text })),
  message("error", fc.record({ code, message: text }))
) as fc.Arbitrary<GatewayMessage>
