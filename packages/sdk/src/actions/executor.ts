/**
 * Runs actions by name in one account's scope: decodes the input with its schema, strictly (a
 * typed `invalid_input` error that names the fields, never the values; unknown fields and empty
 * strings are refused, not ignored), applies the confirmation
 * flow to destructive actions, then runs the action.
 */
import { Context, Effect, Layer, Predicate, Schema } from "effect"
import { describeSchemaError } from "@fleetplane/agent-protocol"
import { AgentLiveness } from "../domain/liveness"
import { FleetConfig } from "../domain/fleet-config"
import { Transactor } from "../domain/transactor"
import { forbidden, invalidInput, notFound, type DomainError } from "../model/errors"
import { HOST_CALLER, roleAllows, type ActionCaller } from "../accounts/roles"
import type { AccountId } from "../model/ids"
import type { ActionDefinition } from "./action"
import { actionCatalog, describeActions, isActionName, type ActionDescription, type ActionName, type ActionOutput } from "./catalog"
import { consumeConfirmation, requestConfirmation } from "./confirmation"

export interface ActionsService {
  /**
   * Runs an action for `caller` (default: the embedding host, with every right). Named by a
   * literal, the result has the action's output type (its published output schema).
   */
  readonly execute: {
    <N extends ActionName>(accountId: AccountId, name: N, input: unknown, caller?: ActionCaller): Effect.Effect<ActionOutput<N>, DomainError>
    (accountId: AccountId, name: string, input: unknown, caller?: ActionCaller): Effect.Effect<unknown, DomainError>
  }
  readonly describe: () => ReadonlyArray<ActionDescription>
}

export class Actions extends Context.Service<Actions, ActionsService>()("@fleetplane/sdk/actions/Actions") {
  static readonly layer = Layer.effect(
    Actions,
    Effect.gen(function* () {
      const transactor = yield* Transactor
      const liveness = yield* AgentLiveness
      const descriptions = describeActions()

      const execute = (accountId: AccountId, name: string, rawInput: unknown, caller: ActionCaller = HOST_CALLER) =>
        Effect.gen(function* () {
          if (!isActionName(name)) {
            return yield* notFound("unknown_action", `there is no action named "${name.slice(0, 80)}"; list the actions to see their names`, {})
          }
          const action: ActionDefinition = actionCatalog[name]
          const raw = rawInput ?? {}
          if (!Predicate.isObject(raw) || Array.isArray(raw)) {
            return yield* invalidInput("invalid_input", `the input of ${name} must be an object`, { action: name })
          }
          const { confirmation_token: token, ...fields } = raw as Record<string, unknown>
          // Roles first: a key that may not run this learns nothing else about it.
          const needed = typeof action.access === "function" ? action.access(fields) : action.access
          if (!roleAllows(caller.role, needed)) {
            return yield* forbidden(
              "forbidden_for_role",
              `this API key's role (${caller.role}) may not run ${name}, which needs ${needed}; use a key with the ${needed} role (fleetplane apikey create --role ${needed})`,
              { action: name, role: caller.role, needed }
            )
          }
          // Unknown fields are refused, naming the field: a typo (`idd`) must not be silently ignored.
          const input = yield* Schema.decodeUnknownEffect(action.input)(fields, { onExcessProperty: "error" }).pipe(
            Effect.mapError((error) => invalidInput("invalid_input", `invalid input for ${name}: ${describeSchemaError(error)}`, { action: name }))
          )
          const scope = { accountId, caller }
          if (action.destructive && (action.needsConfirmation?.(input) ?? true)) {
            const config = yield* FleetConfig
            if (token === undefined || token === null || token === "") {
              const summary = yield* action.describe!(input, scope)
              const error = yield* transactor.transact((ctx) => requestConfirmation(ctx, accountId, name, input, summary, config.confirmationTtlMs))
              return yield* Effect.fail(error)
            }
            if (typeof token !== "string") {
              return yield* invalidInput("invalid_confirmation", "confirmation_token must be a string", { action: name })
            }
            yield* transactor.transact((ctx) => consumeConfirmation(ctx, accountId, name, input, token))
          }
          return yield* action.run(input, scope)
        }).pipe(
          Effect.provideService(Transactor, transactor),
          Effect.provideService(AgentLiveness, liveness),
          // Names only: the input may hold secrets (R20).
          // No stack trace: capturing one costs more than a small action (every admin request runs one).
          Effect.withSpan(
            "Actions.execute",
            {
              attributes: { "fleetplane.action": name.slice(0, 80), "fleetplane.account_id": accountId, "fleetplane.caller_role": caller.role }
            },
            { captureStackTrace: false }
          )
        )

      return Actions.of({ execute: execute as ActionsService["execute"], describe: () => descriptions })
    })
  )
}
