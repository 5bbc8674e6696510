/**
 * What an authenticated agent session's messages do: heartbeats into liveness (memory only),
 * keys and status reports to the SDK (refusals told back), joins answered, acks recorded in
 * group commits (a failed `wireguard` one resets the agent's peer-set version), VIP acks,
 * terminal traffic to its bridge. Work that touches the store runs in the session's queue, in
 * arrival order.
 */
import { ProtocolErrorCode, type AgentMessage } from "@fleetplane/agent-protocol"
import type { AgentLivenessService, AgentPortService, AgentRefusal } from "@fleetplane/sdk"
import { Effect, type Clock } from "effect"
import type { GatewayMetrics } from "../admin/metrics"
import type { Logger } from "../log"
import type { AckBatcher } from "./ack-batcher"
import type { AgentSession } from "./agent-session"
import { resumePushes } from "./push-dispatcher"

export interface SessionMessagesDeps {
  readonly port: AgentPortService
  readonly liveness: AgentLivenessService
  readonly metrics: GatewayMetrics
  readonly log: Logger
  readonly clock: Clock.Clock
  readonly acks: AckBatcher
}

export const createSessionMessages = (deps: SessionMessagesDeps) => {
  const { port, liveness, metrics, log, acks, clock } = deps

  /** What the SDK refused of an agent's report, told to the agent; the session stays open. */
  const sendRefusals = (session: AgentSession, refusals: ReadonlyArray<AgentRefusal>, refType: string) => {
    for (const refusal of refusals) {
      metrics.refusals.inc()
      log.warn("agent.report_refused", { instance_id: session.identity.instanceId, code: refusal.code })
      session.send({ type: "error", body: { code: refusal.code, message: refusal.message.slice(0, 4000), ref_type: refType } })
    }
  }

  /** The hot path: a map update in memory, synchronous — no promise, no database, no log line. */
  const recordHeartbeat = (session: AgentSession, beat: Extract<AgentMessage, { type: "heartbeat" }>["body"]) => {
    liveness.recordHeartbeat(session.identity.instanceId, clock.currentTimeMillisUnsafe(), beat.k3s, beat.wireguard, beat.load, beat.vip_probes)
    metrics.heartbeats.inc()
  }

  /** Handles one message: at once when it only touches memory, else as a task in the session's queue. */
  const handleMessage = (session: AgentSession, message: AgentMessage): void => {
    const { identity } = session
    switch (message.type) {
      case "heartbeat":
        return recordHeartbeat(session, message.body)
      case "wireguard_keys":
        return session.enqueue(Effect.map(port.registerWireguardKeys(identity, message.body.keys), (refusals) => sendRefusals(session, refusals, message.type)))
      case "status_report":
        return session.enqueue(Effect.map(port.statusReport(identity, message.body), (refusals) => sendRefusals(session, refusals, message.type)))
      case "join_request":
        return session.enqueue(Effect.gen(function* () {
          // The join could not be decided (no free service CIDR: a StateError; the store failing: a
          // StoreError; a defect): the agent still gets an answer, with the reason and when to retry.
          const decided = yield* port.joinRequest(identity, message.body).pipe(
            Effect.map((outcome) => ({ outcome })),
            Effect.catchTags({
              StateError: (e) => Effect.succeed({ failed: { code: e.code, message: e.message } }),
              StoreError: (e) => Effect.succeed({ failed: { code: e.code, message: e.message } })
            }),
            Effect.catchCause(() => Effect.succeed({ failed: { code: "internal_error", message: "the join could not be decided; retry" } }))
          )
          if ("failed" in decided) {
            metrics.joinsRejected.inc()
            log.warn("agent.join_failed", { instance_id: identity.instanceId, code: decided.failed.code })
            session.send({
              type: "join_rejected",
              body: { request_id: message.body.request_id, code: decided.failed.code, message: decided.failed.message.slice(0, 4000), retry_after_ms: 60_000 }
            })
            return
          }
          const { outcome } = decided
          if (outcome.accepted) {
            metrics.joinsAccepted.inc()
            session.send({
              type: "join_accepted",
              body: {
                request_id: message.body.request_id,
                cluster_id: outcome.cluster_id,
                role: outcome.role,
                api_endpoint: outcome.api_endpoint,
                created_cluster: outcome.created_cluster
              }
            })
            // The configs the join changed reach the agent through the dispatcher (the commit's
            // signal); only a token the agent says is stale (a fingerprint that differs) is resent here.
            if (outcome.resend_token) yield* resumePushes(deps, session, { kind: "token", key: outcome.cluster_id })
          } else {
            metrics.joinsRejected.inc()
            session.send({
              type: "join_rejected",
              body: { request_id: message.body.request_id, code: outcome.code, message: outcome.message, retry_after_ms: outcome.retry_after_ms }
            })
          }
        }))
      case "config_ack": {
        const body = message.body
        const applied = body.status === "applied"
        const noteAck = () => {
          const latency = session.markAcked(body.kind, body.key, body.version, applied, clock.currentTimeMillisUnsafe())
          if (latency !== undefined) metrics.metrics.observePushLatency(body.kind, body.key, latency / 1000)
          if (applied) metrics.pushesAcked.inc()
          else metrics.pushesFailed.inc()
        }
        const inTurn = Effect.gen(function* () {
          noteAck()
          yield* acks.record(identity, body)
          if (!applied && body.kind === "wireguard") {
            // What the agent has of the peer set is unknown now: the next push carries the full set,
            // and one whose delta did not fit the agent's copy is sent again at once.
            session.peerVersions.delete(body.key)
            if (body.error?.code === "peer_set_out_of_sync") yield* resumePushes(deps, session, { kind: "wireguard", key: body.key })
          }
        })
        // An applied ack changes nothing the session's later work reads: on an idle session it is
        // noted now and committed with the others of its turn, no fiber waiting for it (a fan-out
        // brings one per session). A failed one, or one behind queued work, waits its turn.
        if (!applied) return session.enqueue(inTurn)
        return session.runNowOrEnqueue(() => {
          noteAck()
          acks.submit(identity, body)
          return true
        }, inTurn)
      }
      case "vip_ack":
        if (message.body.held) session.heldVips.set(message.body.vip_id, message.body.epoch)
        else session.heldVips.delete(message.body.vip_id)
        return
      case "error":
        log.warn("agent.reported_error", { instance_id: identity.instanceId, code: message.body.code, ref_type: message.body.ref_type ?? null })
        return
      case "terminal_data":
      case "terminal_exit":
      case "terminal_close": {
        const bridge = session.terminals.get(message.body.channel_id)
        if (bridge !== undefined) {
          if (message.type === "terminal_data") bridge.fromAgentData(message.body.data)
          else if (message.type === "terminal_exit") bridge.fromAgentExit(message.body.exit_code, message.body.signal)
          else bridge.fromAgentClose(message.body.reason)
          return
        }
        // Terminal traffic for a channel this gateway never opened (or already closed).
        if (message.type === "terminal_data") return
        session.send({ type: "error", body: { code: ProtocolErrorCode.UnexpectedMessage, message: `no open terminal ${message.body.channel_id.slice(0, 64)}`, ref_type: message.type } })
        return
      }
      case "hello":
        // A second hello on an authenticated session.
        session.send({ type: "error", body: { code: ProtocolErrorCode.UnexpectedMessage, message: `${message.type} is not expected now`, ref_type: message.type } })
        return
    }
  }

  return { handleMessage, sendRefusals }
}
