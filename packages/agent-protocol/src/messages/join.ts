/**
 * Joining a cluster. The agent asks with the `target_cluster_id` from its module
 * assignment; the gateway answers with `join_accepted` (configs follow as pushes)
 * or `join_rejected` with a reason code and when to retry.
 */
import { Schema } from "effect"
import { Code, Count, defineMessage as message, Id, MessageText, ModuleName, ShortText } from "./fields"

export const JoinRequestBody = Schema.Struct({
  /** Chosen by the agent; echoed in the answer. */
  request_id: Id,
  module_name: ModuleName,
  /** From the module assignment's config; `null` for the bootstrap server or the legacy single-cluster fallback. */
  target_cluster_id: Schema.NullOr(Id),
  /** SHA-256 (hex) of the join token the node holds, if any; a stale one gets the current token pushed. */
  token_fingerprint: Schema.optionalKey(ShortText)
})
export const JoinRequest = message("join_request", JoinRequestBody)
export type JoinRequest = typeof JoinRequest.Type

export const ClusterRole = Schema.Literals(["control-plane", "worker"])
export type ClusterRole = typeof ClusterRole.Type

export const JoinAcceptedBody = Schema.Struct({
  request_id: Id,
  cluster_id: Id,
  role: ClusterRole,
  api_endpoint: ShortText,
  /** True when this server bootstrapped a new cluster (R7). */
  created_cluster: Schema.Boolean
})
export const JoinAccepted = message("join_accepted", JoinAcceptedBody)
export type JoinAccepted = typeof JoinAccepted.Type

export const JoinRejectedBody = Schema.Struct({
  request_id: Id,
  /** `cluster_not_found`, `cluster_not_active`, `no_active_cluster`, `network_mismatch`, `sdwan_peer_required`, ... */
  code: Code,
  message: MessageText,
  /** Wait at least this long before asking again. */
  retry_after_ms: Count
})
export const JoinRejected = message("join_rejected", JoinRejectedBody)
export type JoinRejected = typeof JoinRejected.Type
export type JoinRequestBody = typeof JoinRequestBody.Type
export type JoinAcceptedBody = typeof JoinAcceptedBody.Type
export type JoinRejectedBody = typeof JoinRejectedBody.Type
