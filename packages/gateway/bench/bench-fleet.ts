/**
 * What the benchmark servers share: instances provisioned straight into the store (through the
 * actions, provisioning thousands would dominate the run; it is setup, not the figure), and the
 * `welcome` a bare baseline server answers every hello with.
 */
import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import { encodeFrame, PROTOCOL_VERSION } from "@fleetplane/agent-protocol"
import { hashSecret, newId, Store, type AccountId, type TemplateId } from "@fleetplane/sdk"

/** `count` nodes (hostname `${prefix}-${i}`) with a running instance each, in one transaction; their credentials, in order. */
export const seedInstances = (accountId: string, templateId: string, count: number, prefix: string) =>
  Effect.flatMap(Effect.service(Store), (store) =>
    store.transaction((tx) =>
      Effect.gen(function* () {
        const seeded: Array<{ instance_id: string; credential: string }> = []
        for (let i = 0; i < count; i++) {
          const nodeId = newId("node")
          const instanceId = newId("instance")
          const credential = `fpa_bench_${i}_${randomBytes(12).toString("hex")}`
          const at = new Date().toISOString()
          yield* tx.insertNode({ id: nodeId, account_id: accountId as AccountId, hostname: `${prefix}-${i}`, node_template_id: templateId as TemplateId, created_at: at })
          yield* tx.insertInstance({ id: instanceId, account_id: accountId as AccountId, node_id: nodeId, status: "running", credential_hash: hashSecret(credential), created_at: at })
          seeded.push({ instance_id: instanceId, credential })
        }
        return seeded
      })
    )
  )

/** The baseline servers' answer to any hello. */
export const baselineWelcomeFrame = (options: { readonly heartbeatIntervalMs?: number; readonly maxFrameBytes?: number } = {}) =>
  encodeFrame({
    type: "welcome",
    body: {
      session_id: "s",
      gateway_id: "baseline",
      protocol_version: PROTOCOL_VERSION,
      heartbeat_interval_ms: options.heartbeatIntervalMs ?? 5_000,
      silence_threshold_ms: 15_000,
      server_time_ms: Date.now(),
      max_frame_bytes: options.maxFrameBytes ?? 1 << 20
    }
  })
