/**
 * What an action is: a name from the runbook, input and output schemas (which also yield the
 * JSON Schemas published to hosts and AI tools), a `destructive` flag, and an effect that
 * runs in one account's scope and returns what its output schema says. Actions only orchestrate; the rules live in the domain folders.
 */
import { Effect, type Schema } from "effect"
import type { AgentLiveness } from "../domain/liveness"
import { Transactor, type ReadContext, type TxContext } from "../domain/transactor"
import type { DomainError } from "../model/errors"
import type { AccountId } from "../model/ids"
import type { ActionCaller, ApiKeyRole } from "../accounts/roles"

export interface ActionScope {
  readonly accountId: AccountId
  /** Who runs it (an API key, or the embedding host). */
  readonly caller: ActionCaller
}

export type ActionServices = Transactor | AgentLiveness

export interface ConfirmationSummary {
  readonly summary: string
  readonly changes: Record<string, unknown>
}

export interface ActionDefinition<I = any, O = unknown> {
  readonly name: string
  readonly description: string
  readonly destructive: boolean
  /** The role an API key needs to run it; a function of the (raw) input when that decides (a dry run reads). */
  readonly access: ApiKeyRole | ((input: Record<string, unknown>) => ApiKeyRole)
  readonly input: Schema.Codec<I, any>
  /** What `run` returns (action-outputs.ts); `run`'s result is checked against it by the compiler. */
  readonly output: Schema.Schema<O>
  /** Destructive actions: whether this particular input needs confirmation (a dry run does not). */
  readonly needsConfirmation?: (input: I) => boolean
  /** Destructive actions: what would change, shown before the operator confirms. */
  readonly describe?: (input: I, scope: ActionScope) => Effect.Effect<ConfirmationSummary, DomainError, ActionServices>
  readonly run: (input: I, scope: ActionScope) => Effect.Effect<NoInfer<O>, DomainError, ActionServices>
}

export const defineAction = <I, O>(definition: ActionDefinition<I, O>): ActionDefinition<I, O> => definition

/** Runs a body in one transaction (most actions are exactly that). */
export const inTransaction = <A, E>(body: (ctx: TxContext) => Effect.Effect<A, E, ActionServices>) =>
  Effect.gen(function* () {
    const { transact } = yield* Transactor
    return yield* transact(body)
  })

/** Runs a body that only reads (listings, lookups) on one snapshot, without taking the write lock. */
export const inReadTransaction = <A, E>(body: (ctx: ReadContext) => Effect.Effect<A, E, ActionServices>) =>
  Effect.gen(function* () {
    const { read } = yield* Transactor
    return yield* read(body)
  })
