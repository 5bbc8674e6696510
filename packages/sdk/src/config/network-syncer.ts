/**
 * Coalesced WireGuard publishes. A change that makes a network's peer set stale (an agent
 * registering its key or a new endpoint) only records a request in the store, in the same
 * transaction; the syncer publishes each requested network once per interval — compares the
 * peers with the published set and writes the entries that changed at a new version (O(peers),
 * `syncNetworkWireguard`); each agent is then sent only those entries. So 1,000 agents of one
 * network coming up cost a few publishes, each agent's pushes add up to about one copy of the
 * set, and a request made just before a crash is still there after the restart. On several
 * gateways only the leader publishes.
 *
 * The running syncer reads the requests only when one was made (a signal, from this gateway or
 * another) and every few seconds as a safety net, not on every tick: idle, it costs nothing.
 */
import { Clock, Context, Effect, Layer } from "effect"
import { FleetConfig } from "../domain/fleet-config"
import { makeAlarm, ringOnSignals, whileLeading } from "../domain/leader-loop"
import { Leadership } from "../domain/shared-state"
import { Signals } from "../domain/signals"
import { Transactor, type TxContext } from "../domain/transactor"
import type { AccountId, NetworkId } from "../model/ids"
import { Store, type TransactionGate } from "../store/store"
import { syncNetworkWireguard } from "./desired-configs"

/** Inside a transaction: the network's peer lists will be rendered again shortly (once, however often asked). */
export const requestNetworkWireguardSync = (ctx: TxContext, accountId: AccountId, networkId: NetworkId) =>
  Effect.tap(ctx.tx.markNetworkSyncPending(accountId, networkId, ctx.nowIso), () => Effect.sync(ctx.networkSyncRequested))

/**
 * The gate between a publish and the agents registering keys and endpoints in its account.
 * On PostgreSQL each reads what the other writes (the publish every peer of the network, a
 * hello the desired configs the publish rewrites), so run side by side one of them aborts, and
 * it was mostly the publish: it is long, and a fleet coming up sends ~100 hellos a second. A
 * 1,000-peer publish lost 20 attempts in a row to them, each a whole render. Gated, a publish
 * waits for the hellos under way and the next hellos wait for it. Per account, not per
 * network: a hello names no network before its transaction reads the instance's peers.
 */
export const peerSetGate = (accountId: AccountId, mode: TransactionGate["mode"]): TransactionGate => ({ name: `peer-set:${accountId}`, mode })

/** Without a signal, the requests are still read this often (one missed across gateways is late, never lost). */
const SAFETY_READ_MS = 2_000
/** After a render that took t, the same network waits RENDER_SPACING × t more before the next (renders ≤ 1/(1+R) of the time). */
const RENDER_SPACING = 3
/**
 * And at least as long as the fan-out it caused: each peer whose config the render changed is
 * then sent a push and answers with an ack, work the render's own time does not show. On
 * PostgreSQL, where a render of 1,000 peers commits in ~100 ms, spacing by the render alone
 * published a network coming up every ~0.4 s: 10x the pushes and acks, and the fleet configured
 * later, not sooner. A push costs what it carries: PUSH_MS each plus ENTRY_MS per changed entry
 * (measured: one moved peer reaches 10,000 others in ~1 s, ~0.1 ms a push; a bring-up's large
 * deltas ~7 µs an entry), at most SPACING_PER_PUSH_MS, the figure the bring-up was tuned with.
 * So one peer moving in a 10,000-peer network holds the next publish ~1 s, not 10 s.
 */
const SPACING_PER_PUSH_MS = 1
const PUSH_MS = 0.1
const ENTRY_MS = 0.01
/** How long the next publish of a network waits after one that took `tookMs` and sent `pushes` pushes of `entries` entries. */
const publishSpacingMs = (tookMs: number, pushes: number, entries: number) =>
  Math.max(tookMs * RENDER_SPACING, pushes * Math.min(SPACING_PER_PUSH_MS, PUSH_MS + entries * ENTRY_MS))

export class NetworkSyncer extends Context.Service<
  NetworkSyncer,
  {
    /** Renders every requested network now. */
    readonly flush: Effect.Effect<void>
    /** Renders what is requested, at most every `networkSyncIntervalMs`, while this process leads, forever (fork it). */
    readonly run: Effect.Effect<never>
  }
>()("@fleetplane/sdk/config/NetworkSyncer") {
  static readonly layer = Layer.effect(
    NetworkSyncer,
    Effect.gen(function* () {
      const store = yield* Store
      const { transact } = yield* Transactor
      const leadership = yield* Leadership
      const signals = yield* Signals
      /**
       * When each network may be published again (running loop only): the next one waits at least
       * `RENDER_SPACING` times as long as the last took, so a very large network coming up spends
       * at most a quarter of the time publishing; networks whose publishes take milliseconds are
       * still published within an interval.
       */
      const notBefore = new Map<string, number>()
      /**
       * Renders the requested networks (all of them, or those whose spacing has passed); answers
       * when a network held back by its spacing may be rendered (infinity: none held back).
       */
      const renderPending = (spaced: boolean) =>
        Effect.gen(function* () {
          let heldBackUntil = Number.POSITIVE_INFINITY
          for (const pending of yield* store.transaction((tx) => tx.listPendingNetworkSyncs())) {
            const startedAt = yield* Clock.currentTimeMillis
            const allowedAt = notBefore.get(pending.network_id) ?? 0
            if (spaced && startedAt < allowedAt) {
              heldBackUntil = Math.min(heldBackUntil, allowedAt)
              continue
            }
            let attemptStartedAt = startedAt
            let published = { pushes: 0, entries: 0 }
            yield* transact(
              (ctx) =>
                Effect.gen(function* () {
                  attemptStartedAt = yield* Clock.currentTimeMillis
                  // Taken and rendered in one transaction: a crash in between leaves the request.
                  published = (yield* ctx.tx.takePendingNetworkSync(pending.network_id))
                    ? yield* syncNetworkWireguard(ctx, pending.account_id, pending.network_id)
                    : { pushes: 0, entries: 0 }
                }),
              { gates: [peerSetGate(pending.account_id, "exclusive")] }
            )
            // The render's cost is the attempt that committed. Attempts lost to conflicts (on
            // PostgreSQL, with the very agents registering their keys) are not: counted, a
            // 1,000-peer fleet coming up held its next publish back ~19 s after 6 s of retries.
            const finishedAt = yield* Clock.currentTimeMillis
            const tookMs = finishedAt - attemptStartedAt
            notBefore.set(pending.network_id, finishedAt + publishSpacingMs(tookMs, published.pushes, published.entries))
          }
          return heldBackUntil
        }).pipe(Effect.catch((error) => Effect.as(Effect.logWarning("wireguard.render_failed", { error: error.message, retry: "next tick" }), 0)))
      const flush = Effect.asVoid(renderPending(false))
      const run = Effect.gen(function* () {
        const config = yield* FleetConfig
        const alarm = makeAlarm()
        yield* ringOnSignals(signals, alarm, (signal) => signal._tag === "NetworkSyncRequested" || signal._tag === "SignalsMissed")
        // Requests made within one interval are rendered together (the coalescing above); without
        // a request, the store is still read every SAFETY_READ_MS.
        const step = Effect.gen(function* () {
          const heldBackUntil = yield* renderPending(true)
          return Math.min(heldBackUntil, (yield* Clock.currentTimeMillis) + SAFETY_READ_MS)
        })
        return yield* whileLeading(leadership, config.networkSyncIntervalMs, alarm, step)
      }).pipe(Effect.scoped)
      return NetworkSyncer.of({ flush, run })
    })
  )
}
