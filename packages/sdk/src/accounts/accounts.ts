/** Accounts: the tenancy boundary (R20). Each gets its own RFC 4193 ULA /48 for overlays. */
import { Context, Effect, Layer } from "effect"
import { Transactor } from "../domain/transactor"
import { invalidInput, notFound, type InvalidInputError, type NotFoundError, type StoreError } from "../model/errors"
import type { Account } from "../model/entities"
import { newId, type AccountId } from "../model/ids"
import { newUlaGlobalId } from "../network/overlay"

export class Accounts extends Context.Service<
  Accounts,
  {
    readonly create: (name: string) => Effect.Effect<Account, InvalidInputError | StoreError>
    readonly get: (id: string) => Effect.Effect<Account, NotFoundError | StoreError>
    /** Every account, by name (for the operator of the gateway box). */
    readonly list: Effect.Effect<ReadonlyArray<Account>, StoreError>
  }
>()("@fleetplane/sdk/accounts/Accounts") {
  static readonly layer = Layer.effect(
    Accounts,
    Effect.gen(function* () {
      const { transact } = yield* Transactor
      return Accounts.of({
        list: transact((ctx) => ctx.tx.listAccounts()),
        create: (name) =>
          transact((ctx) =>
            Effect.gen(function* () {
              const trimmed = name.trim()
              if (trimmed.length === 0 || trimmed.length > 128) {
                return yield* invalidInput("invalid_name", "an account name must be 1-128 characters", {})
              }
              const account = { id: newId("account"), name: trimmed, created_at: ctx.nowIso }
              yield* ctx.tx.insertAccount({ ...account, ula_global_id: newUlaGlobalId() })
              yield* ctx.emit(account.id, "system.account_created", { account_id: account.id, name: trimmed })
              return account
            })
          ),
        get: (id) =>
          transact((ctx) =>
            Effect.gen(function* () {
              const account = yield* ctx.tx.getAccount(id as AccountId)
              if (account === undefined) return yield* notFound("account_not_found", `account ${id} does not exist`, { account_id: id })
              return { id: account.id, name: account.name, created_at: account.created_at }
            })
          )
      })
    })
  )
}
