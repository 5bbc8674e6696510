/**
 * Coalesced WireGuard re-renders. A change that makes a network's peer lists stale (an
 * agent registering its key or a new endpoint) only records a request in the store, in the
 * same transaction; the syncer renders each requested network once per interval. So 1,000
 * agents of one network coming up cost a few renders of O(peers^2) text instead of 1,000
 * (O(peers^3) in all: ~17 minutes of CPU at 1,000 peers before this), and a request made just
 * before a crash is still there after the restart. On several gateways only the leader renders.
 *
 * The running syncer reads the requests only when one was made (a signal, from this gateway or
 * another) and every few seconds as a safety net, not on every tick: idle, it costs nothing.
 */
import { Clock, Context, Effect, Layer, PubSub } from "effect"
import { FleetConfig } from "../domain/fleet-config"
import { Leadership, whileLeading } from "../domain/shared-state"
import { Signals } from "../domain/signals"
import { Transactor, type TxContext } from "../domain/transactor"
import type { AccountId, NetworkId } from "../model/ids"
import { Store } from "../store/store"
import { syncNetworkWireguard } from "./desired-configs"

/** Inside a transaction: the network's peer lists will be rendered again shortly (once, however often asked). */
export const requestNetworkWireguardSync = (ctx: TxContext, accountId: AccountId, networkId: NetworkId) =>
  Effect.tap(ctx.tx.markNetworkSyncPending(accountId, networkId, ctx.nowIso), () => Effect.sync(ctx.networkSyncRequested))

/** Without a signal, the requests are still read this often (one missed across gateways is late, never lost). */
const SAFETY_READ_MS = 2_000

export class NetworkSyncer extends Context.Service<
  NetworkSyncer,
  {
    /** Renders every requested network now. */
    readonly flush: Effect.Effect<void>
    /** Flushes every `networkSyncIntervalMs` while this process leads, forever (fork it). */
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
      const flush = Effect.gen(function* () {
        for (const pending of yield* store.transaction((tx) => tx.listPendingNetworkSyncs())) {
          yield* transact((ctx) =>
            Effect.gen(function* () {
              // Taken and rendered in one transaction: a crash in between leaves the request.
              if (yield* ctx.tx.takePendingNetworkSync(pending.network_id)) yield* syncNetworkWireguard(ctx, pending.account_id, pending.network_id)
            })
          )
        }
      }).pipe(Effect.catch((error) => Effect.logWarning("wireguard.render_failed", { error: error.message, retry: "next tick" })))
      const run = Effect.gen(function* () {
        const config = yield* FleetConfig
        let requested = true
        let readAt = 0
        const subscription = yield* PubSub.subscribe(signals)
        yield* Effect.forkScoped(
          Effect.forever(
            Effect.map(PubSub.take(subscription), (signal) => {
              if (signal._tag === "NetworkSyncRequested") requested = true
            })
          )
        )
        // Requests made within one interval are rendered together (the coalescing above).
        const tick = Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          if (!requested && now - readAt < SAFETY_READ_MS) return
          requested = false
          readAt = now
          yield* flush
        })
        return yield* whileLeading(leadership, config.networkSyncIntervalMs, tick)
      }).pipe(Effect.scoped)
      return NetworkSyncer.of({ flush, run })
    })
  )
}
