/**
 * Delivers what the SDK decided to the agents connected here: after every commit that
 * changed an instance's desired configs it sends that instance the versions it does not have
 * yet (carried in the signal when small, else read from the store); after a VIP holder change it sends assign / release directives. Delivery is
 * level-triggered: a push missed by a disconnected agent is simply the newest desired
 * version, sent at its next hello.
 */
import type { Clock } from "effect"
import { CloseCode, splitPeerSetPush, type ConfigPushBody } from "@fleetplane/agent-protocol"
import { toPush, type AgentPortService, type DesiredConfigRecord, type Fleet, type Signal, type VipDirective } from "@fleetplane/sdk"
import type { Logger } from "../log"
import type { GatewayMetrics } from "../admin/metrics"
import type { AgentSession } from "./agent-session"
import type { SessionRegistry } from "./session-registry"

export interface PushDeliveryDeps {
  readonly fleet: Fleet
  readonly port: AgentPortService
  readonly metrics: GatewayMetrics
  /** The fleet's Clock (see AgentEndpointDeps). */
  readonly clock: Clock.Clock
}

/** Sends the pushes the session does not have yet (applied or on their way), in order; a peer set too large for one frame goes in parts. */
export const sendPushes = (deps: PushDeliveryDeps, session: AgentSession, pushes: ReadonlyArray<ConfigPushBody>) => {
  const now = deps.clock.currentTimeMillisUnsafe()
  for (const push of pushes) {
    if (session.has(push)) continue
    for (const part of splitPeerSetPush(push)) if (!session.sendPush(part)) return
    session.markSent(push, now)
    deps.metrics.pushesSent.inc()
  }
}

/** Sends VIP directives, tracking what the agent will hold once it follows them (its vip_ack confirms). */
export const sendVipDirectives = (session: AgentSession, directives: ReadonlyArray<VipDirective>) => {
  for (const directive of directives) {
    if (!session.send(directive)) return
    if (directive.type === "vip_assign") session.heldVips.set(directive.body.vip_id, directive.body.epoch)
    else session.heldVips.delete(directive.body.vip_id)
  }
}

/** Reads and sends every desired config newer than what the session has; `force` resends one kind regardless. */
export const deliverPendingPushes = async (deps: PushDeliveryDeps, session: AgentSession, force?: { readonly kind: string; readonly key: string }) => {
  const known = session.knownVersions(force)
  const pushes = await deps.fleet.run(deps.port.pendingPushes(session.identity, known, session.peerVersions))
  // A forced push goes out even though the session has that version.
  if (force !== undefined) session.forget(force)
  sendPushes(deps, session, pushes)
}

/** Sends the changes a commit carried: as they are, but a `wireguard` one first gets its peer-set change (shared by every session at the same version). */
const deliverCarriedPushes = async (deps: PushDeliveryDeps, session: AgentSession, records: ReadonlyArray<DesiredConfigRecord>) => {
  const fresh = records.filter((record) => !session.has(record))
  const pushes = fresh.some((record) => record.kind === "wireguard")
    ? await deps.fleet.run(deps.port.completePushes(session.identity, fresh, session.peerVersions))
    : fresh.map(toPush)
  sendPushes(deps, session, pushes)
}

/** Sessions sent to per turn of the event loop when one publish reaches many. */
const SESSIONS_PER_SLICE = 500

/**
 * A publish reaching many sessions: their pushes are made in one transaction (one read of the
 * network's peers, each starting version's change read once), then each session sends its own
 * in its queue — as made, when the session's peer-set versions are still the ones they were
 * made from; otherwise (something was sent to it meanwhile) made again for it alone.
 */
const deliverPeerSetChanges = (deps: PushDeliveryDeps & { readonly log: Logger }, changes: ReadonlyArray<{ session: AgentSession; records: ReadonlyArray<DesiredConfigRecord> }>) => {
  const bases = changes.map(({ session }) => new Map(session.peerVersions))
  const requests = changes.map(({ session, records }, i) => ({ identity: session.identity, records: records.filter((record) => !session.has(record)), peerVersions: bases[i]! }))
  deps.fleet
    .run(deps.port.completePushesMany(requests))
    .then(async (made) => {
      for (const [i, { session, records }] of changes.entries()) {
        void session.enqueue(async () => {
          const base = bases[i]!
          const unchanged = base.size === session.peerVersions.size && [...base].every(([network, version]) => session.peerVersions.get(network) === version)
          return unchanged ? sendPushes(deps, session, made[i]!) : deliverCarriedPushes(deps, session, records)
        })
        // In slices, so pings and heartbeats are read between them. (At 10,000 sessions the canary
        // still sees ~0.4 s: most of it is the publish and this transaction, not the sends.)
        if (i % SESSIONS_PER_SLICE === SESSIONS_PER_SLICE - 1) await new Promise((resolve) => setImmediate(resolve))
      }
    })
    .catch((error) => {
      deps.log.warn("agent.pushes_not_made", { sessions: changes.length, error: error instanceof Error ? error.message : String(error) })
      // Each session then reads what it lacks by itself.
      for (const { session } of changes) void session.enqueue(() => deliverPendingPushes(deps, session))
    })
}

export const deliverVipDirectives = async (deps: PushDeliveryDeps, session: AgentSession) => {
  const held = [...session.heldVips].map(([vip_id, epoch]) => ({ vip_id, epoch }))
  sendVipDirectives(session, await deps.fleet.run(deps.port.vipDirectives(session.identity, held)))
}

export const startPushDispatcher = async (deps: PushDeliveryDeps & { readonly registry: SessionRegistry; readonly log: Logger }) =>
  deps.fleet.subscribeSignals((signal: Signal) => {
    switch (signal._tag) {
      case "DesiredConfigsChanged": {
        const carried = new Map<string, Array<DesiredConfigRecord>>()
        for (const record of signal.changes ?? []) carried.set(record.instance_id, [...(carried.get(record.instance_id) ?? []), record])
        const peerSetChanges: Array<{ session: AgentSession; records: ReadonlyArray<DesiredConfigRecord> }> = []
        for (const instanceId of signal.instanceIds) {
          const session = deps.registry.get(instanceId)
          if (session === undefined) continue
          const records = carried.get(instanceId)
          if (records?.some((record) => record.kind === "wireguard")) peerSetChanges.push({ session, records })
          else void session.enqueue(async () => (records === undefined ? deliverPendingPushes(deps, session) : deliverCarriedPushes(deps, session, records)))
        }
        if (peerSetChanges.length > 0) deliverPeerSetChanges(deps, peerSetChanges)
        break
      }
      case "VipHolderChanged":
        for (const instanceId of signal.instanceIds) {
          const session = deps.registry.get(instanceId)
          if (session !== undefined) void session.enqueue(() => deliverVipDirectives(deps, session))
        }
        break
      case "EventsAppended":
        for (const event of signal.events) {
          if (event.type === "sdwan.vip_holder_silent") {
            deps.metrics.silenceIncidents.inc()
            deps.log.warn("vip.holder_silent", { account_id: signal.accountId, ...event.data })
          } else if (event.type === "system.instance_terminated") {
            // R25: the session of a terminated instance ends now, not at its next hello.
            deps.registry.get(String(event.data.instance_id))?.close(CloseCode.InstanceTerminated, "instance terminated")
          }
        }
        break
    }
  })
