/**
 * In-process notifications published after a transaction commits: new events for an
 * account, instances whose desired configs changed, VIP holder changes. Hosts (the
 * gateway, the Promise facade) subscribe; the durable truth stays in the store.
 */
import { Context, Effect, Layer, PubSub } from "effect"
import type { FleetEvent } from "../model/entities"
import type { AccountId, InstanceId, VipId } from "../model/ids"
import type { DesiredConfigRecord } from "../store/records"

export type Signal =
  | { readonly _tag: "EventsAppended"; readonly accountId: AccountId; readonly events: ReadonlyArray<FleetEvent> }
  | {
      readonly _tag: "DesiredConfigsChanged"
      readonly instanceIds: ReadonlyArray<InstanceId>
      /**
       * The new versions themselves, so a host can deliver them without reading the store (a
       * `wireguard` one still needs its peer-set change: `AgentPort.completePushes`).
       * Instances without records here: read their pending pushes.
       */
      readonly changes?: ReadonlyArray<DesiredConfigRecord>
    }
  | { readonly _tag: "VipHolderChanged"; readonly accountId: AccountId; readonly vipId: VipId; readonly instanceIds: ReadonlyArray<InstanceId> }
  /** A network's WireGuard peer lists were asked to be rendered again (config/network-syncer.ts): the syncer wakes. */
  | { readonly _tag: "NetworkSyncRequested" }
  /**
   * This process did not hear the other gateways for a while (its LISTEN connection was made
   * again): what they committed meanwhile was not signalled here. Memory of shared state (the
   * cache of API keys, the sensor's list of VIPs) starts over. Local only, never sent.
   */
  | { readonly _tag: "SignalsMissed" }

export class Signals extends Context.Service<Signals, PubSub.PubSub<Signal>>()("@fleetplane/sdk/domain/Signals") {
  static readonly layer = Layer.effect(Signals, PubSub.unbounded<Signal>())
}

export const publishSignals = (signals: ReadonlyArray<Signal>) =>
  Effect.gen(function* () {
    if (signals.length === 0) return
    const pubsub = yield* Signals
    yield* PubSub.publishAll(pubsub, signals)
  })
