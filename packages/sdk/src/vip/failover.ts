/**
 * VIP failover: candidate planning, promotion with epochs and fencing (R13, R16, R17),
 * the `sdwan_vip_failover` skill (R15) and approval decisions, including "moot" ones.
 *
 * R13 rests on one compare-and-set: a promotion writes the new holder only if the VIP is
 * still at the epoch it was planned at, and bumps the epoch. The sensor, approvals and
 * manual failovers all promote through `promoteVipHolder`, so no interleaving of them can
 * produce two holders for one epoch.
 */
import { Effect } from "effect"
import { isSilentNow, type AgentLivenessService } from "../domain/liveness"
import type { FleetConfigShape } from "../domain/fleet-config"
import type { ReadContext, TxContext } from "../domain/transactor"
import { notFound, stateError } from "../model/errors"
import { newId, type AccountId, type ApprovalId, type PeerId, type VipId } from "../model/ids"
import { syncNetworkVipRoutes } from "../config/desired-configs"
import type { ApprovalRecord, VipIncident, VipRecord } from "../store/records"
import type { PeerView } from "./peer-view"
import { scoreFailoverCandidate, type CandidateScore } from "./scoring"

export interface FailoverDeps {
  readonly liveness: AgentLivenessService
  readonly config: FleetConfigShape
  readonly now: number
}

export interface RankedCandidate extends CandidateScore {
  readonly peer: PeerId
  readonly hostname: string | null
  readonly instance_id: string
}

/** A VIP by id, or the VIP of the cluster with this id or name (`k3s-prod`). */
/** From when a VIP holder's silence can count: it became the holder, or this process started watching. */
export const holderSince = (vip: VipRecord, startedAt: number) => Math.max(vip.holder_since === null ? 0 : Date.parse(vip.holder_since), startedAt)

export const requireVip = (ctx: TxContext, accountId: AccountId, vipRef: string) =>
  Effect.gen(function* () {
    const byId = yield* ctx.tx.getVip(accountId, vipRef as VipId)
    if (byId !== undefined) return byId
    const cluster = (yield* ctx.tx.getCluster(accountId, vipRef as never)) ?? (yield* ctx.tx.findClusterByName(accountId, vipRef))
    const ofCluster = cluster === undefined ? undefined : yield* ctx.tx.findVipOfCluster(accountId, cluster.id)
    if (ofCluster === undefined) {
      return yield* notFound("virtual_ip_not_found", `there is no virtual IP "${vipRef.slice(0, 128)}" (a VIP id, or a cluster's id or name) in this account`, {
        virtual_ip_id: vipRef
      })
    }
    return ofCluster
  })

/** The hostname of a peer's node, or null. */
export const hostnameOf = (ctx: ReadContext, accountId: AccountId, peerId: PeerId | null) =>
  peerId === null ? Effect.succeed(null) : Effect.map(ctx.tx.hostnameOfPeer(accountId, peerId), (hostname) => hostname ?? null)

/** Every failover candidate with its score, best first (ties by peer id). */
export const rankCandidates = (ctx: TxContext, deps: FailoverDeps, vip: VipRecord) =>
  Effect.gen(function* () {
    const ranked: Array<RankedCandidate> = []
    for (const peerId of vip.failover_holder_peer_ids) {
      if (peerId === vip.holder_peer_id) continue
      const peer = yield* ctx.tx.getPeer(vip.account_id, peerId)
      if (peer === undefined) continue
      const scored = scoreFailoverCandidate(deps.liveness.get(peer.instance_id), vip.network_id, deps.now, deps.config.silenceThresholdMs)
      ranked.push({ ...scored, peer: peerId, hostname: yield* hostnameOf(ctx, vip.account_id, peerId), instance_id: peer.instance_id })
    }
    return ranked.sort((a, b) => b.score - a.score || (a.peer < b.peer ? -1 : 1))
  })

const instanceOfPeer = (ctx: TxContext, accountId: AccountId, peerId: PeerId | null) =>
  peerId === null ? Effect.succeed(undefined) : Effect.map(ctx.tx.getPeer(accountId, peerId), (peer) => peer?.instance_id)

/** R13 + R16: moves the VIP to `to` if it is still at `expectedEpoch`; every peer's WireGuard config follows. */
export const promoteVipHolder = (
  ctx: TxContext,
  vip: VipRecord,
  expectedEpoch: number,
  to: RankedCandidate,
  reason: "automatic" | "approval" | "manual"
) =>
  Effect.gen(function* () {
    const { tx } = ctx
    const accountId = vip.account_id
    const from = vip.holder_peer_id
    const fromInstance = yield* instanceOfPeer(ctx, accountId, from)
    // The old holder stays a candidate only while it is still a server of the cluster.
    const fromMembership = fromInstance === undefined ? undefined : yield* tx.findKubernetesNodeOfInstance(accountId, fromInstance as never)
    const keepOld = from !== null && fromMembership?.cluster_id === vip.cluster_id && fromMembership.role === "control-plane"
    const candidates = [...vip.failover_holder_peer_ids.filter((p) => p !== to.peer), ...(keepOld && from !== null ? [from] : [])]
    const epoch = expectedEpoch + 1
    const changed = yield* tx.updateVipIfEpoch(accountId, vip.id, expectedEpoch, {
      holder_peer_id: to.peer,
      holder_since: ctx.nowIso,
      failover_holder_peer_ids: candidates,
      epoch,
      silent_epoch: null,
      incident: null
    })
    if (!changed) {
      return yield* stateError(
        "vip_epoch_changed",
        `virtual IP ${vip.id} changed holder while this failover was being decided; review the new state and decide again`,
        { virtual_ip_id: vip.id, expected_epoch: expectedEpoch }
      )
    }
    const pending = yield* tx.findPendingApproval(accountId, vip.id)
    if (pending !== undefined && reason !== "approval") {
      yield* tx.decideApproval(accountId, pending.id, {
        status: "moot",
        decided_at: ctx.nowIso,
        reason: `superseded by a ${reason} failover`,
        resolution: { moot: "superseded", epoch }
      })
    }
    const fromHostname = yield* hostnameOf(ctx, accountId, from)
    yield* ctx.emit(accountId, "sdwan.vip_failover_promoted", {
      virtual_ip_id: vip.id,
      cluster_id: vip.cluster_id,
      address: vip.address,
      address_ipv4: vip.address_ipv4,
      from_peer_id: from,
      from_hostname: fromHostname,
      to_peer_id: to.peer,
      to_hostname: to.hostname,
      epoch,
      score: to.score,
      reason
    })
    yield* syncNetworkVipRoutes(ctx, accountId, vip.network_id)
    ctx.vipHolderChanged(accountId, vip.id, [...(fromInstance === undefined ? [] : [fromInstance as never]), to.instance_id as never])
    return { virtual_ip_id: vip.id, previous_holder: from, previous_holder_hostname: fromHostname, new_holder: to.peer, new_holder_hostname: to.hostname, epoch, score: to.score }
  }).pipe(
    Effect.withSpan("VipFailover.promote", {
      attributes: { "fleetplane.vip_id": vip.id, "fleetplane.cluster_id": vip.cluster_id, "fleetplane.epoch": expectedEpoch + 1, "fleetplane.failover.reason": reason, "fleetplane.peer_id": to.peer }
    })
  )

const noCandidate = (vip: VipRecord) =>
  stateError(
    "no_failover_candidate",
    `virtual IP ${vip.id} has no healthy failover candidate (a candidate must be a second k3s server that is heartbeating and ready); add a k3s-server to the cluster`,
    { virtual_ip_id: vip.id, cluster_id: vip.cluster_id, candidates: vip.failover_holder_peer_ids.length }
  )

/** Why the skill runs (R26): the incident the sensor opened and what the peers saw. */
export interface FailoverTrigger {
  readonly incident: VipIncident
  readonly peerView: PeerView
}

/** What an approval tells the operator about the incident, in a sentence or two. */
const incidentSummary = (trigger: FailoverTrigger, vipName: string, holderName: string) => {
  const view = trigger.peerView
  switch (trigger.incident) {
    case "gateway_unreachable":
      return (
        `The holder of ${vipName}, ${holderName}, is silent to the gateway, but ${view.reachable} of ${view.reporters} reporting peers still reach the VIP over the overlay: ` +
        `most likely only its link to the gateway is down. Failing over would move the VIP away from a holder that serves it; approve only if you know ${holderName} is unhealthy.`
      )
    case "vip_unreachable":
      return (
        `${view.unreachable} of ${view.reporters} reporting peers have not reached ${vipName} for the silence threshold, though its holder ${holderName} still heartbeats ` +
        `(${view.holder_address_reachable === 0 ? "its API server does not answer on its own address either: hung or stopped" : "its own address answers: the VIP is missing or misrouted there"}).`
      )
    case "holder_silent":
      return `The holder of ${vipName}, ${holderName}, is silent${view.reporters === 0 ? "" : ` and ${view.unreachable} of ${view.reporters} reporting peers cannot reach the VIP either`}.`
  }
}

/**
 * R15: the `sdwan_vip_failover` skill, run once per incident. Promotes the best candidate
 * (`automatic`) or files an approval (`require_approval`) saying what the incident is (R26);
 * with no healthy candidate it records `no_failover_candidate` and changes nothing (R17).
 */
export const runVipFailoverSkill = (ctx: TxContext, deps: FailoverDeps, vip: VipRecord, trigger: FailoverTrigger) =>
  Effect.gen(function* () {
    const ranked = yield* rankCandidates(ctx, deps, vip)
    const best = ranked[0]
    if (best === undefined || best.score === 0) {
      yield* ctx.emit(vip.account_id, "sdwan.vip_failover_skipped", {
        virtual_ip_id: vip.id,
        cluster_id: vip.cluster_id,
        code: "no_failover_candidate",
        candidates: ranked.map((c) => ({ peer: c.peer, hostname: c.hostname, score: c.score, disqualified: c.disqualified }))
      })
      return { outcome: "no_failover_candidate" as const }
    }
    if (vip.policy === "automatic") {
      const promoted = yield* promoteVipHolder(ctx, vip, vip.epoch, best, "automatic")
      return { outcome: "promoted" as const, ...promoted }
    }
    const existing = yield* ctx.tx.findPendingApproval(vip.account_id, vip.id)
    if (existing !== undefined) return { outcome: "approval_pending" as const, approval_id: existing.id }
    const approval: ApprovalRecord = {
      id: newId("approval"),
      account_id: vip.account_id,
      kind: "vip_failover",
      status: "pending",
      virtual_ip_id: vip.id,
      cluster_id: vip.cluster_id,
      epoch: vip.epoch,
      summary: `${incidentSummary(
        trigger,
        `VIP ${vip.address_ipv4} / ${vip.address} (cluster ${(yield* ctx.tx.getCluster(vip.account_id, vip.cluster_id))?.name ?? vip.cluster_id})`,
        (yield* hostnameOf(ctx, vip.account_id, vip.holder_peer_id)) ?? vip.holder_peer_id ?? "its holder"
      )} Approve to promote the best candidate at that time (now ${best.hostname ?? best.peer}, score ${best.score}).`,
      created_at: ctx.nowIso,
      decided_at: null,
      reason: null,
      resolution: null
    }
    yield* ctx.tx.insertApproval(approval)
    yield* ctx.emit(vip.account_id, "sdwan.vip_failover_approval_requested", {
      approval_id: approval.id,
      virtual_ip_id: vip.id,
      cluster_id: vip.cluster_id,
      epoch: vip.epoch,
      incident: trigger.incident,
      best_candidate: { peer: best.peer, hostname: best.hostname, score: best.score }
    })
    return { outcome: "approval_requested" as const, approval_id: approval.id }
  })

const requirePendingApproval = (ctx: TxContext, accountId: AccountId, approvalId: string) =>
  Effect.gen(function* () {
    const approval = yield* ctx.tx.getApproval(accountId, approvalId as ApprovalId)
    if (approval === undefined) {
      return yield* notFound("approval_not_found", `approval ${approvalId} does not exist in this account; system_list_approvals shows them`, { approval_id: approvalId })
    }
    if (approval.status !== "pending") {
      return yield* stateError("approval_not_pending", `approval ${approvalId} was already decided (${approval.status})`, { approval_id: approvalId, status: approval.status })
    }
    return approval
  })

/**
 * Approving a failover: promotes the best candidate at decision time, or resolves the
 * approval as moot when there is nothing left to fail over (the holder came back, the VIP
 * moved on to a later epoch, or the cluster is gone).
 */
export const approveFailover = (ctx: TxContext, deps: FailoverDeps, accountId: AccountId, approvalId: string) =>
  Effect.gen(function* () {
    const approval = yield* requirePendingApproval(ctx, accountId, approvalId)
    const moot = (why: string, message: string) =>
      Effect.gen(function* () {
        yield* ctx.tx.decideApproval(accountId, approval.id, { status: "moot", decided_at: ctx.nowIso, reason: message, resolution: { moot: why } })
        yield* ctx.emit(accountId, "sdwan.vip_failover_moot", { approval_id: approval.id, virtual_ip_id: approval.virtual_ip_id, why })
        return { approval_id: approval.id, status: "moot" as const, resolution: { moot: why }, message }
      })
    const vip = yield* ctx.tx.getVip(accountId, approval.virtual_ip_id)
    if (vip === undefined) return yield* moot("virtual_ip_gone", "the cluster was decommissioned; nothing to fail over")
    if (vip.epoch !== approval.epoch) return yield* moot("epoch_changed", `the VIP already moved on (epoch ${vip.epoch}); nothing to fail over`)
    const holderInstance = yield* instanceOfPeer(ctx, accountId, vip.holder_peer_id)
    // The incident the approval was filed for (the kind stays recorded after the incident closes).
    if ((vip.incident ?? "holder_silent") === "vip_unreachable") {
      if (vip.silent_epoch !== vip.epoch) return yield* moot("vip_answers_again", "the VIP answers its peers again; no failover was done")
    } else if (
      // A holder that was silent and heartbeats again (even before the sensor has seen it) is back.
      holderInstance !== undefined &&
      !isSilentNow(deps.liveness.get(holderInstance as never), holderSince(vip, deps.liveness.startedAt), deps.now, deps.config)
    ) {
      return yield* moot("holder_returned", "the holder is heartbeating again; no failover was done")
    }
    const best = (yield* rankCandidates(ctx, deps, vip))[0]
    if (best === undefined || best.score === 0) return yield* noCandidate(vip)
    const promoted = yield* promoteVipHolder(ctx, vip, approval.epoch, best, "approval")
    const resolution = { promoted: promoted.new_holder, hostname: promoted.new_holder_hostname, epoch: promoted.epoch, score: promoted.score }
    yield* ctx.tx.decideApproval(accountId, approval.id, { status: "approved", decided_at: ctx.nowIso, reason: null, resolution })
    return {
      approval_id: approval.id,
      status: "approved" as const,
      resolution,
      message: `promoted ${promoted.new_holder_hostname ?? promoted.new_holder} to VIP holder at epoch ${promoted.epoch}`
    }
  })

export const rejectFailover = (ctx: TxContext, accountId: AccountId, approvalId: string, reason: string | undefined) =>
  Effect.gen(function* () {
    const approval = yield* requirePendingApproval(ctx, accountId, approvalId)
    yield* ctx.tx.decideApproval(accountId, approval.id, { status: "rejected", decided_at: ctx.nowIso, reason: reason ?? null, resolution: null })
    yield* ctx.emit(accountId, "sdwan.vip_failover_rejected", { approval_id: approval.id, virtual_ip_id: approval.virtual_ip_id, reason: reason ?? null })
    return { approval_id: approval.id, status: "rejected" as const }
  })

/** `system_sdwan_failover_virtual_ip`: the dry-run plan, or a manual promotion (confirmed by the caller). */
export const manualFailover = (ctx: TxContext, deps: FailoverDeps, accountId: AccountId, vipId: string, dryRun: boolean) =>
  Effect.gen(function* () {
    const vip = yield* requireVip(ctx, accountId, vipId)
    const ranked = yield* rankCandidates(ctx, deps, vip)
    if (dryRun) {
      return {
        resolved: false as const,
        dry_run: true as const,
        current_holder: vip.holder_peer_id,
        current_holder_hostname: yield* hostnameOf(ctx, accountId, vip.holder_peer_id),
        epoch: vip.epoch,
        candidates: ranked.map((c) => ({ peer: c.peer, hostname: c.hostname, score: c.score, components: c.components, disqualified: c.disqualified }))
      }
    }
    const best = ranked[0]
    if (best === undefined || best.score === 0) return yield* noCandidate(vip)
    const promoted = yield* promoteVipHolder(ctx, vip, vip.epoch, best, "manual")
    return {
      resolved: true as const,
      dry_run: false as const,
      current_holder: promoted.new_holder,
      current_holder_hostname: promoted.new_holder_hostname,
      previous_holder: promoted.previous_holder,
      previous_holder_hostname: promoted.previous_holder_hostname,
      epoch: promoted.epoch,
      score: promoted.score
    }
  })
