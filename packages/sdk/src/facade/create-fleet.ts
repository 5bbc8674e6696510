/**
 * The Promise front door for non-Effect apps. It builds the same layer as the Effect API
 * into a `ManagedRuntime`; every call runs an Effect on it, and every failure rejects with
 * a `FleetplaneError` carrying the domain error's `code`, `message` and `details`.
 *
 *   const fleet = await createFleet({ database: "fleet.db" })
 *   const acme = await fleet.createAccount({ name: "acme" })
 *   const ops = fleet.forAccount(acme.id)
 *   const { clusters } = await ops.actions.kubernetes_list_clusters({})
 *   await fleet.close()
 */
import { Cause, type Context, Effect, Exit, Fiber, ManagedRuntime, PubSub } from "effect"
import { Accounts } from "../accounts/accounts"
import { ApiKeys, type ApiKeyIdentity, type ApiKeySummary, type CreatedApiKey } from "../accounts/api-keys"
import { HOST_CALLER, type ActionCaller, type ApiKeyRole } from "../accounts/roles"
import type { ActionInput, ActionName, ActionOutput } from "../actions/catalog"
import { actionCatalog, describeActions } from "../actions/catalog"
import { Actions } from "../actions/executor"
import { AgentPort } from "../agents/agent-port"
import { AgentLiveness } from "../domain/liveness"
import { Signals, type Signal } from "../domain/signals"
import { Transactor } from "../domain/transactor"
import { fleetLayer, type FleetLayerOptions, type FleetServices } from "../fleet-layer"
import type { Account, FleetEvent } from "../model/entities"
import { errorStatus, isDomainError, type DomainError } from "../model/errors"
import type { AccountId } from "../model/ids"
import { VipSensor } from "../vip/sensor"

/** What every rejected facade call rejects with. */
export class FleetplaneError extends Error {
  readonly code: string
  readonly details: Record<string, unknown>
  /** The error category (`NotFoundError`, `ConflictError`, ...) or `InternalError` for a bug. */
  readonly category: DomainError["_tag"] | "InternalError"
  constructor(code: string, message: string, details: Record<string, unknown> = {}, category: DomainError["_tag"] | "InternalError" = "InternalError") {
    super(message)
    this.name = "FleetplaneError"
    this.code = code
    this.details = details
    this.category = category
  }

  /** The HTTP status for this error (the one mapping in `errorStatus`). */
  get httpStatus(): number {
    return this.category === "InternalError" ? 500 : errorStatus[this.category].http
  }

  /** The process exit code a CLI should end with. */
  get exitCode(): number {
    return this.category === "InternalError" ? 1 : errorStatus[this.category].exitCode
  }
}

const toFleetplaneError = (cause: Cause.Cause<unknown>): FleetplaneError => {
  const failure = Cause.findErrorOption(cause)
  if (failure._tag === "Some" && isDomainError(failure.value)) {
    return new FleetplaneError(failure.value.code, failure.value.message, failure.value.details, failure.value._tag)
  }
  const squashed = Cause.squash(cause)
  return new FleetplaneError("internal_error", `an unexpected error occurred: ${squashed instanceof Error ? squashed.message : String(squashed)}`)
}

export type ActionMethods = {
  readonly [N in ActionName]: (input: ActionInput<N> & { readonly confirmation_token?: string }) => Promise<ActionOutput<N>>
}

export interface AccountOperations {
  readonly accountId: AccountId
  /** Typed methods, one per action. */
  readonly actions: ActionMethods
  /** Any action by name (inputs are validated against its schema). */
  readonly execute: (name: string, input?: unknown) => Promise<unknown>
  readonly events: {
    readonly list: (options?: { readonly since?: number; readonly limit?: number }) => Promise<ReadonlyArray<FleetEvent>>
    /** Calls `listener` for each new event of this account; resolves once subscribed, to the unsubscribe function. */
    readonly subscribe: (listener: (event: FleetEvent) => void) => Promise<() => void>
  }
}

export type CreateFleetOptions = FleetLayerOptions

/** The Promise front door on a fleet's own runtime. */
export const createFleet = (options: CreateFleetOptions = { database: ":memory:" }) => fleetFacade(ManagedRuntime.make(fleetLayer(options)))

/**
 * The Promise front door over a runtime the host built (one that provides `fleetLayer`'s
 * services, e.g. with its own layers on top): Effect and Promise code then share one set of
 * services, one store and one signal bus. `close()` disposes the runtime.
 */
export const fleetFacade = async (runtime: ManagedRuntime.ManagedRuntime<FleetServices, unknown>) => {
  const run = async <A, E>(effect: Effect.Effect<A, E, FleetServices>): Promise<A> => {
    const exit = await runtime.runPromiseExit(effect)
    if (Exit.isSuccess(exit)) return exit.value
    throw toFleetplaneError(exit.cause)
  }
  // Surface a store that cannot open now, not on the first call.
  await run(Effect.void)

  /** Every signal (events, changed desired configs, VIP holder changes), for hosts such as the gateway. */
  const subscribeSignals = async (listener: (signal: Signal) => void): Promise<() => void> => {
    let ready!: () => void
    const subscribed = new Promise<void>((resolve) => (ready = resolve))
    const fiber = runtime.runFork(
      Effect.scoped(
        Effect.gen(function* () {
          const subscription = yield* PubSub.subscribe(yield* Signals)
          ready()
          while (true) {
            const signal = yield* PubSub.take(subscription)
            try {
              listener(signal)
            } catch {
              // A throwing listener must not end the subscription.
            }
          }
        })
      )
    )
    await subscribed
    return () => {
      runtime.runFork(Fiber.interrupt(fiber))
    }
  }

  /** An account's operations, run as `caller` (default: this host, with every right). */
  const forAccount = (accountId: string, caller: ActionCaller = HOST_CALLER): AccountOperations => {
    const id = accountId as AccountId
    const execute = (name: string, input: unknown = {}) => run(Effect.flatMap(Effect.service(Actions), (actions) => actions.execute(id, name, input, caller)))
    const actions = Object.fromEntries(Object.keys(actionCatalog).map((name) => [name, (input: unknown) => execute(name, input)])) as unknown as ActionMethods
    return {
      accountId: id,
      actions,
      execute,
      events: {
        list: async (listOptions = {}) => {
          const result = (await execute("system_list_events", listOptions)) as { events: ReadonlyArray<FleetEvent> }
          return result.events
        },
        subscribe: (listener) =>
          subscribeSignals((signal) => {
            if (signal._tag !== "EventsAppended" || signal.accountId !== id) return
            for (const event of signal.events) {
              try {
                listener(event)
              } catch {
                // A throwing listener must not stop the others.
              }
            }
          })
      }
    }
  }

  return {
    createAccount: (input: { readonly name: string }): Promise<Account> => run(Effect.flatMap(Effect.service(Accounts), (accounts) => accounts.create(input.name))),
    getAccount: (id: string): Promise<Account> => run(Effect.flatMap(Effect.service(Accounts), (accounts) => accounts.get(id))),
    /** Every account, by name. */
    listAccounts: (): Promise<ReadonlyArray<Account>> => run(Effect.flatMap(Effect.service(Accounts), (accounts) => accounts.list)),
    forAccount,
    /** The operations an API key may run: its account's, limited by its role. */
    forApiKey: (identity: ApiKeyIdentity): AccountOperations =>
      forAccount(identity.account_id, { role: identity.role, api_key_id: identity.api_key_id, name: identity.name }),
    /** A new admin API key for an account, with its role (`read`, `operate` or `admin`); the key is in the result only. */
    createApiKey: (input: { readonly account_id: string; readonly name: string; readonly role: ApiKeyRole }): Promise<CreatedApiKey> =>
      run(Effect.flatMap(Effect.service(ApiKeys), (keys) => keys.create(input.account_id, input.name, input.role))),
    /** Revokes an API key; requests with it fail with `invalid_api_key` from then on. */
    revokeApiKey: (input: { readonly account_id: string; readonly api_key_id: string }): Promise<void> =>
      run(Effect.flatMap(Effect.service(ApiKeys), (keys) => keys.revoke(input.account_id, input.api_key_id))),
    /** An account's API keys (id, name, role, created, revoked), never the keys themselves. */
    listApiKeys: (input: { readonly account_id: string }): Promise<ReadonlyArray<ApiKeySummary>> =>
      run(Effect.flatMap(Effect.service(ApiKeys), (keys) => keys.list(input.account_id))),
    /** The account and key behind an API key (for audit records); rejects with `invalid_api_key`. */
    identifyApiKey: (apiKey: string): Promise<ApiKeyIdentity> => run(Effect.flatMap(Effect.service(ApiKeys), (keys) => keys.identify(apiKey))),
    /**
     * Appends an audit event to an account's log, for what hosts do outside the action catalog
     * (operator terminals). Never put secrets or terminal content in `data`.
     */
    recordEvent: (accountId: string, type: string, data: Record<string, unknown>) =>
      run(Effect.flatMap(Effect.service(Transactor), ({ transact }) => transact((ctx) => ctx.emit(accountId as AccountId, type, data)))),
    /** The account an API key belongs to; rejects with `invalid_api_key`. */
    authenticateApiKey: (apiKey: string): Promise<AccountId> => run(Effect.flatMap(Effect.service(ApiKeys), (keys) => keys.authenticate(apiKey))),
    /** Every signal (events, changed desired configs, VIP holder changes), for hosts such as the gateway. */
    subscribeSignals,
    /** The in-memory liveness table (the gateway's heartbeat hot path writes to it directly). */
    liveness: () => run(Effect.service(AgentLiveness)),
    /** Names, descriptions, `destructive` flags and input JSON Schemas of every action. */
    describeActions,
    /** Runs any Effect against the fleet's services (for hosts that mix styles, such as a gateway). */
    run,
    /** The fleet's services, for hosts that build their own Effect layers on them (the gateway's admin API). */
    services: (): Promise<Context.Context<FleetServices>> => runtime.context(),
    /** One immediate look at VIP holders (the sensor also runs on its own). */
    checkVipHolders: () => run(Effect.flatMap(Effect.service(VipSensor), (sensor) => sensor.check)),
    agentPort: () => run(Effect.service(AgentPort)),
    close: () => runtime.dispose()
  }
}

export type Fleet = Awaited<ReturnType<typeof fleetFacade>>
