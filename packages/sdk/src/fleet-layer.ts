/**
 * The Effect front door: one layer with every SDK service on a store — embedded SQLite, or
 * PostgreSQL shared by several gateways — and the background loops running in its scope.
 */
import { Effect, Layer } from "effect"
import { loggingLayer, type LoggingOptions } from "./domain/logging"
import { tracingLayer, type TracingOptions } from "./domain/tracing"
import { Accounts } from "./accounts/accounts"
import { ApiKeys } from "./accounts/api-keys"
import { Actions } from "./actions/executor"
import { AgentPort } from "./agents/agent-port"
import { DEFAULT_FLEET_CONFIG, FleetConfig, type FleetConfigShape } from "./domain/fleet-config"
import { AgentLiveness } from "./domain/liveness"
import { Leadership, sharedStateLayer } from "./domain/shared-state"
import { Signals } from "./domain/signals"
import { Transactor } from "./domain/transactor"
import { postgresStoreLayer } from "./store/postgres/postgres-store"
import { sqliteStoreLayer, type SqliteStoreOptions } from "./store/sqlite/sqlite-store"
import type { Store } from "./store/store"
import { NetworkSyncer } from "./config/network-syncer"
import { KubeconfigRenewer } from "./config/kubeconfig-renewer"
import { SkillRunner } from "./upgrade/skill-runner"
import { VipSensor } from "./vip/sensor"
import { backfillAddressFamilies } from "./network/address-family-backfill"

export interface FleetLayerOptions {
  /** SQLite file, or `":memory:"` (the default). Ignored when `postgres` is set. */
  readonly database?: string
  readonly synchronous?: SqliteStoreOptions["synchronous"]
  /** A PostgreSQL connection string: the store several gateways share (see "Running several gateways"). */
  readonly postgres?: string
  readonly config?: Partial<FleetConfigShape>
  /**
   * Run the background loops — the VIP silence sensor, the skill runner and the WireGuard
   * re-renders — (default true). Tests may call `VipSensor.check`, `SkillRunner.tick` and
   * `NetworkSyncer.flush` themselves instead.
   */
  readonly runSensor?: boolean
  /** Log lines: JSON, one per line, at `level` and above (default: stderr, `info`); see domain/logging.ts. */
  readonly logging?: LoggingOptions
  /** Export spans over OTLP/HTTP (see domain/tracing.ts); none by default. */
  readonly tracing?: TracingOptions
}

/** Every SDK service, over any `Store` implementation. */
export const fleetServicesLayer = (options: { readonly config?: Partial<FleetConfigShape>; readonly runSensor?: boolean } = {}) => {
  const config = Layer.succeed(FleetConfig)({ ...DEFAULT_FLEET_CONFIG, ...options.config })
  const core = Transactor.layer.pipe(Layer.provideMerge(Layer.mergeAll(Signals.layer, AgentLiveness.layer)))
  // Leadership and, on a shared store, signals and liveness exchanged with the other gateways.
  const shared = sharedStateLayer.pipe(Layer.provideMerge(core), Layer.provideMerge(config))
  const services = Layer.mergeAll(
    Actions.layer,
    AgentPort.layer,
    Accounts.layer,
    ApiKeys.layer,
    VipSensor.layer,
    SkillRunner.layer,
    NetworkSyncer.layer,
    KubeconfigRenewer.layer
  ).pipe(
    Layer.provideMerge(shared)
  )
  const sensor = Layer.effectDiscard(
    Effect.gen(function* () {
      // Data written before a schema change is brought up to date before anything reads it.
      yield* (yield* Transactor).transact(backfillAddressFamilies)
      if (options.runSensor === false) return
      yield* Effect.forkScoped((yield* VipSensor).run)
      yield* Effect.forkScoped((yield* SkillRunner).run)
      yield* Effect.forkScoped((yield* NetworkSyncer).run)
      yield* Effect.forkScoped((yield* KubeconfigRenewer).run)
    })
  )
  return sensor.pipe(Layer.provideMerge(services), Layer.provideMerge(config))
}

/** The SDK on PostgreSQL when `postgres` is given, else on the embedded SQLite store. */
export const fleetLayer = (options: FleetLayerOptions) => {
  const store =
    options.postgres !== undefined
      ? postgresStoreLayer({ url: options.postgres })
      : sqliteStoreLayer({ filename: options.database ?? ":memory:", ...(options.synchronous === undefined ? {} : { synchronous: options.synchronous }) })
  return fleetServicesLayer({
    ...(options.config === undefined ? {} : { config: options.config }),
    ...(options.runSensor === undefined ? {} : { runSensor: options.runSensor })
  }).pipe(
    Layer.provideMerge(store),
    Layer.provideMerge(loggingLayer(options.logging)),
    // Last, so every service and background loop is built with the tracer in place.
    Layer.provideMerge(options.tracing === undefined ? Layer.empty : tracingLayer(options.tracing))
  )
}

export type FleetServices = Accounts | ApiKeys | Actions | AgentPort | VipSensor | SkillRunner | NetworkSyncer | KubeconfigRenewer | Transactor | Signals | AgentLiveness | Leadership | Store
