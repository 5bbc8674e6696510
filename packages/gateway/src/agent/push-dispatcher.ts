/**
 * Delivers what the SDK decided to the agents connected here. The dispatcher is a `Stream` over
 * the fleet's `Signals` and the one route by which changes reach sessions: after every commit
 * that changed an instance's desired configs it sends that instance the versions the commit
 * carried (a `wireguard` one with its peer-set change); after a VIP holder change, assign /
 * release directives. The store is read only to resume: at hello, when an agent says it lost a
 * config, and for signals that carry no records (another gateway's commit, a resync after a gap
 * in listening). Delivery is level-triggered: a push missed by a disconnected agent is simply
 * the newest desired version, sent at its next hello.
 */
import { Effect, PubSub, Stream, type Clock, type Fiber } from "effect"
import { CloseCode, splitPeerSetPush, type ConfigPushBody } from "@fleetplane/agent-protocol"
import { AgentPort, Signals, toPush, type DesiredConfigRecord, type FleetServices, type PreparedPushes, type Signal, type VipDirective } from "@fleetplane/sdk"
import { failureMessage, type Logger } from "../log"
import type { GatewayMetrics } from "../admin/metrics"
import type { AgentSession } from "./agent-session"
import type { SessionRegistry } from "./session-registry"

export interface PushDeliveryDeps {
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

/** Resume: reads and sends every desired config newer than what the session has; `force` resends one the agent lost. */
export const resumePushes = (deps: PushDeliveryDeps, session: AgentSession, force?: { readonly kind: string; readonly key: string }) =>
  Effect.gen(function* () {
    const port = yield* AgentPort
    const pushes = yield* port.pendingPushes(session.identity, session.knownVersions(force), session.peerVersions)
    // A forced push goes out even though the session has that version.
    if (force !== undefined) session.forget(force)
    sendPushes(deps, session, pushes)
  })

/** Sends the changes a commit carried: as they are, but a `wireguard` one first gets its peer-set change (shared by every session at the same version). */
const deliverCarriedPushes = (deps: PushDeliveryDeps, session: AgentSession, records: ReadonlyArray<DesiredConfigRecord>) =>
  Effect.gen(function* () {
    const fresh = freshOf(session, records)
    if (fresh.length === 0) return
    const pushes = fresh.some((record) => record.kind === "wireguard")
      ? yield* (yield* AgentPort).completePushes(session.identity, fresh, session.peerVersions)
      : fresh.map(toPush)
    sendPushes(deps, session, pushes)
  })

/** The records the session does not have yet (the array itself when it has none of them, the usual case). */
const freshOf = (session: AgentSession, records: ReadonlyArray<DesiredConfigRecord>) =>
  records.some((record) => session.has(record)) ? records.filter((record) => !session.has(record)) : records

/**
 * How much of a fan-out goes out per turn of the event loop: at most this many sessions, and at
 * most this many peer entries (~200 bytes each on the wire). Sessions alone were not enough: a
 * fleet coming up sends hundreds of sessions a ~1,000-entry change each, and 500 of them were
 * ~100 MB of socket writes in one turn (stalls of 0.4-1 s at 1,000 peers). 20,000 entries is a
 * few MB, a few milliseconds of writes.
 */
export const FAN_OUT_SLICE = { sessions: 500, entries: 20_000 } as const

/** A push's weight in a slice: a `wireguard` push counts its peer entries (and removals), any push at least one. */
const entriesIn = (pushes: ReadonlyArray<ConfigPushBody>) => {
  let entries = 0
  for (const push of pushes) entries += 1 + (push.kind === "wireguard" ? push.payload.peers.upserts.length + push.payload.peers.removed.length : 0)
  return entries
}

/** Counts a fan-out's sessions into slices: `add` answers true when the session just added filled one (yield to I/O then). */
export const makeFanOutSlices = (limits: { readonly sessions: number; readonly entries: number } = FAN_OUT_SLICE) => {
  let sessions = 0
  let entries = 0
  return {
    add: (pushes: ReadonlyArray<ConfigPushBody>): boolean => {
      sessions++
      entries += entriesIn(pushes)
      if (sessions < limits.sessions && entries < limits.entries) return false
      sessions = 0
      entries = 0
      return true
    }
  }
}

/** Lets I/O (pings, heartbeats) run: `setImmediate`, after the poll phase, not a microtask. */
const yieldToIo = Effect.callback<void>((resume) => void setImmediate(() => resume(Effect.void)))

type DispatcherDeps = PushDeliveryDeps & {
  readonly registry: SessionRegistry
  readonly log: Logger
  /** Forks work into the gateway's scope (interrupted when it closes). */
  readonly runWork: <A, E>(effect: Effect.Effect<A, E, FleetServices>) => Fiber.Fiber<A, E>
}

/**
 * Pushes prepared for many sessions at once, sent: each session sends its own in order with its
 * other work (at once when it has none waiting), made from the peer-set versions it has then —
 * or, when those moved to a version the preparation did not read, `again` makes them for it
 * alone. In slices, so pings and heartbeats are read between them; a slice's pushes are made
 * just before they are sent, so a 10,000-session fan-out never holds them all.
 */
const sendPrepared = (
  sessions: ReadonlyArray<AgentSession>,
  prepared: PreparedPushes,
  deps: PushDeliveryDeps,
  again: (session: AgentSession, index: number) => Effect.Effect<void, unknown, AgentPort>
) =>
  Effect.gen(function* () {
    const slices = makeFanOutSlices()
    for (const [i, session] of sessions.entries()) {
      let sent: ReadonlyArray<ConfigPushBody> = NOTHING_SENT
      const sendAsPrepared = () => {
        const pushes = prepared.pushesFor(i, session.peerVersions)
        if (pushes === undefined) return false
        sendPushes(deps, session, pushes)
        sent = pushes
        return true
      }
      session.runNowOrEnqueue(sendAsPrepared, Effect.suspend(() => (sendAsPrepared() ? Effect.void : again(session, i))))
      // Only what went out in this turn weighs on the slice (queued work is written in its own).
      if (slices.add(sent)) yield* yieldToIo
    }
  })

const NOTHING_SENT: ReadonlyArray<ConfigPushBody> = []

/** Pushes that could not be made for many sessions at once (logged): each session then reads what it lacks by itself. */
const orEachAlone =
  (deps: DispatcherDeps, sessions: ReadonlyArray<AgentSession>) =>
  <A, E, R>(making: Effect.Effect<A, E, R>): Effect.Effect<A | undefined, never, R> =>
    Effect.catchCause(making, (cause) =>
      Effect.sync(() => {
        deps.log.warn("agent.pushes_not_made", { sessions: sessions.length, error: failureMessage(cause) })
        for (const session of sessions) session.enqueue(resumePushes(deps, session))
        return undefined
      })
    )

/**
 * A publish reaching many sessions: what their pushes are made of is read in one transaction
 * (one read of the network's peers, each starting version's change once); `sendPrepared` then
 * makes and sends them slice by slice.
 */
const deliverPeerSetChanges = (deps: DispatcherDeps, changes: ReadonlyArray<{ session: AgentSession; records: ReadonlyArray<DesiredConfigRecord> }>) =>
  Effect.gen(function* () {
    // Dispatched in the turn that committed the change (and ran what the commit woke): making
    // the pushes, a transaction that reads the whole network, starts a turn of its own.
    yield* yieldToIo
    const port = yield* AgentPort
    const sessions = changes.map(({ session }) => session)
    // The sessions' own version maps: what is prepared is made later from the versions they hold then.
    const requests = changes.map(({ session, records }) => ({ identity: session.identity, records: freshOf(session, records), peerVersions: session.peerVersions }))
    const prepared = yield* port.completePushesMany(requests).pipe(orEachAlone(deps, sessions))
    if (prepared === undefined) return
    yield* sendPrepared(sessions, prepared, deps, (session, i) => deliverCarriedPushes(deps, session, changes[i]!.records))
  })

/**
 * Sessions told their configs changed without the records (another gateway's commit: its
 * signal carries only instance ids): what each lacks is read in one transaction for all of
 * them, not one each — a publish on another gateway reaches every peer of the network here.
 */
const resumeMany = (deps: DispatcherDeps, sessions: ReadonlyArray<AgentSession>) =>
  Effect.gen(function* () {
    const port = yield* AgentPort
    const prepared = yield* port
      .pendingPushesMany(sessions.map((session) => ({ identity: session.identity, applied: session.knownVersions(), peerVersions: session.peerVersions })))
      .pipe(orEachAlone(deps, sessions))
    if (prepared === undefined) return
    yield* sendPrepared(sessions, prepared, deps, (session) => resumePushes(deps, session))
  })

const deliverVipDirectives = (session: AgentSession) =>
  Effect.gen(function* () {
    const held = [...session.heldVips].map(([vip_id, epoch]) => ({ vip_id, epoch }))
    sendVipDirectives(session, yield* (yield* AgentPort).vipDirectives(session.identity, held))
  })

/** What one signal asks of the sessions connected here. */
const dispatch = (deps: DispatcherDeps, signal: Signal) => {
  switch (signal._tag) {
    case "DesiredConfigsChanged": {
      const carried = new Map<string, Array<DesiredConfigRecord>>()
      for (const record of signal.changes ?? []) carried.set(record.instance_id, [...(carried.get(record.instance_id) ?? []), record])
      const peerSetChanges: Array<{ session: AgentSession; records: ReadonlyArray<DesiredConfigRecord> }> = []
      const resumes: Array<AgentSession> = []
      for (const instanceId of signal.instanceIds) {
        const session = deps.registry.get(instanceId)
        if (session === undefined) continue
        const records = carried.get(instanceId)
        if (records === undefined) resumes.push(session)
        else if (records.some((record) => record.kind === "wireguard")) peerSetChanges.push({ session, records })
        else session.enqueue(deliverCarriedPushes(deps, session, records))
      }
      // Forked: a large network's pushes take a transaction to make; VIP directives do not wait behind it.
      if (peerSetChanges.length > 0) deps.runWork(deliverPeerSetChanges(deps, peerSetChanges))
      if (resumes.length > 0) deps.runWork(resumeMany(deps, resumes))
      return
    }
    case "VipHolderChanged":
      for (const instanceId of signal.instanceIds) {
        const session = deps.registry.get(instanceId)
        session?.enqueue(deliverVipDirectives(session))
      }
      return
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
      return
    case "NetworkSyncRequested":
    case "SignalsMissed": // its DesiredConfigsChanged for every connected agent comes with it
      return
  }
}

/**
 * Subscribes to the fleet's signals (before it returns: nothing committed after the gateway
 * starts is missed) and dispatches them for as long as the scope is open. One signal that
 * cannot be dispatched is logged; the dispatcher goes on.
 */
export const runPushDispatcher = (deps: DispatcherDeps) =>
  Effect.gen(function* () {
    const subscription = yield* PubSub.subscribe(yield* Signals)
    yield* Stream.fromSubscription(subscription).pipe(
      Stream.runForEach((signal) =>
        Effect.sync(() => dispatch(deps, signal)).pipe(
          Effect.catchCause((cause) => Effect.sync(() => deps.log.error("agent.dispatch_failed", { signal: signal._tag, error: failureMessage(cause) })))
        )
      ),
      Effect.forkScoped
    )
  })
