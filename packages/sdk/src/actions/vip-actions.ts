/** VIP failover and approval actions (runbook phase 4 and the troubleshooting table). */
import { Clock, Effect, Schema } from "effect"
import { AgentLiveness } from "../domain/liveness"
import { FleetConfig } from "../domain/fleet-config"
import { ApprovalStatus } from "../model/entities"
import { approveFailover, hostnameOf, manualFailover, rankCandidates, rejectFailover, requireVip, type FailoverDeps } from "../vip/failover"
import { defineAction, inReadTransaction, inTransaction } from "./action"
import { ApproveOutput, FailoverOutput, ListApprovalsOutput, RejectOutput } from "./action-outputs"
import { Note, Ref } from "./input-fields"
import { presentApproval } from "./presenters"


const failoverDeps = Effect.gen(function* () {
  return { liveness: yield* AgentLiveness, config: yield* FleetConfig, now: yield* Clock.currentTimeMillis } satisfies FailoverDeps
})

export const systemSdwanFailoverVirtualIp = defineAction({
  name: "system_sdwan_failover_virtual_ip",
  description:
    "Fail a VIP over to its best candidate (virtual_ip_id: the VIP's id, or its cluster's id or name). dry_run: true shows the current holder and every candidate's score, with hostnames, without changing anything.",
  destructive: true,
  access: (input) => (input.dry_run === true ? "read" : "admin"),
  input: Schema.Struct({ virtual_ip_id: Ref, dry_run: Schema.optionalKey(Schema.Boolean) }),
  output: FailoverOutput,
  needsConfirmation: (input) => input.dry_run !== true,
  describe: (input, { accountId }) =>
    Effect.gen(function* () {
      const deps = yield* failoverDeps
      return yield* inTransaction((ctx) =>
        Effect.gen(function* () {
          const vip = yield* requireVip(ctx, accountId, input.virtual_ip_id)
          const best = (yield* rankCandidates(ctx, deps, vip))[0]
          const holder = (yield* hostnameOf(ctx, accountId, vip.holder_peer_id)) ?? vip.holder_peer_id ?? "(none)"
          return {
            summary: `move VIP ${vip.address_ipv4} / ${vip.address} from ${holder} to ${best === undefined ? "(no candidate)" : `${best.hostname ?? best.peer} (score ${best.score})`}; every peer of the network gets a new WireGuard config`,
            changes: { virtual_ip_id: vip.id, from: vip.holder_peer_id, from_hostname: holder, to: best?.peer ?? null, to_hostname: best?.hostname ?? null, epoch: vip.epoch + 1 }
          }
        })
      )
    }),
  run: (input, { accountId }) =>
    Effect.gen(function* () {
      const deps = yield* failoverDeps
      return yield* inTransaction((ctx) => manualFailover(ctx, deps, accountId, input.virtual_ip_id, input.dry_run === true))
    })
})

export const systemListApprovals = defineAction({
  name: "system_list_approvals",
  description: "Pending (or all) approvals, such as VIP failovers waiting for an operator under the require_approval policy.",
  destructive: false,
  access: "read",
  input: Schema.Struct({ status: Schema.optionalKey(ApprovalStatus) }),
  output: ListApprovalsOutput,
  run: (input, { accountId }) =>
    inReadTransaction((ctx) => Effect.map(ctx.tx.listApprovals(accountId, input.status), (approvals) => ({ approvals: approvals.map(presentApproval) })))
})

export const systemApprove = defineAction({
  name: "system_approve",
  description: "Approve a pending decision. A failover approved after the holder came back resolves as moot, without a failover.",
  destructive: false,
  access: "operate",
  input: Schema.Struct({ approval_id: Ref }),
  output: ApproveOutput,
  run: (input, { accountId }) =>
    Effect.gen(function* () {
      const deps = yield* failoverDeps
      return yield* inTransaction((ctx) => approveFailover(ctx, deps, accountId, input.approval_id))
    })
})

export const systemReject = defineAction({
  name: "system_reject",
  description: "Reject a pending decision.",
  destructive: false,
  access: "operate",
  input: Schema.Struct({ approval_id: Ref, reason: Schema.optionalKey(Note) }),
  output: RejectOutput,
  run: (input, { accountId }) => inTransaction((ctx) => rejectFailover(ctx, accountId, input.approval_id, input.reason))
})
