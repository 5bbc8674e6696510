/**
 * Admin API keys: each belongs to one account and scopes every request made with it (R20).
 * 256 random bits, shown once, stored as a SHA-256 hash; checked by hash lookup, so the
 * comparison never touches the secret byte by byte.
 */
import { randomBytes } from "node:crypto"
import { Clock, Context, Effect, Layer, PubSub, Schema } from "effect"
import { ApiKeyRole } from "./roles"
import { ApiKeyCache } from "./api-key-cache"
import { FleetConfig } from "../domain/fleet-config"
import { Signals } from "../domain/signals"
import { Transactor } from "../domain/transactor"
import { Store } from "../store/store"
import { hashSecret } from "../agents/credentials"
import { invalidInput, notFound, unauthorized, type InvalidInputError, type NotFoundError, type StoreError, type UnauthorizedError } from "../model/errors"
import { newId, type AccountId } from "../model/ids"

export interface CreatedApiKey {
  readonly id: string
  readonly account_id: AccountId
  readonly name: string
  readonly role: ApiKeyRole
  /** The key itself: shown once, never stored. */
  readonly api_key: string
}

export interface ApiKeyIdentity {
  readonly account_id: AccountId
  readonly api_key_id: string
  readonly name: string
  /** What the key may do (see roles.ts). */
  readonly role: ApiKeyRole
}

export interface ApiKeySummary {
  readonly id: string
  readonly name: string
  readonly role: ApiKeyRole
  readonly created_at: string
  readonly revoked_at: string | null
}

export class ApiKeys extends Context.Service<
  ApiKeys,
  {
    readonly create: (accountId: string, name: string, role: ApiKeyRole) => Effect.Effect<CreatedApiKey, InvalidInputError | NotFoundError | StoreError>
    /** The account a key belongs to; revoked and unknown keys fail alike. */
    readonly authenticate: (apiKey: string) => Effect.Effect<AccountId, UnauthorizedError | StoreError>
    /** Who is calling, for audit records: the account and the key's id and name. */
    readonly identify: (apiKey: string) => Effect.Effect<ApiKeyIdentity, UnauthorizedError | StoreError>
    readonly revoke: (accountId: string, id: string) => Effect.Effect<void, NotFoundError | StoreError>
    /** An account's keys, revoked ones included, without any secret (the key is never stored). */
    readonly list: (accountId: string) => Effect.Effect<ReadonlyArray<ApiKeySummary>, NotFoundError | StoreError>
  }
>()("@fleetplane/sdk/accounts/ApiKeys") {
  static readonly layer = Layer.effect(
    ApiKeys,
    Effect.gen(function* () {
      const { transact, read } = yield* Transactor
      const store = yield* Store
      const cache = new ApiKeyCache((yield* FleetConfig).apiKeyCacheMs)
      // A revocation committed anywhere (another gateway's arrives as its events) drops the key;
      // signals missed from other gateways drop every key.
      const subscription = yield* PubSub.subscribe(yield* Signals)
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.map(PubSub.take(subscription), (signal) => {
            if (signal._tag === "SignalsMissed") return cache.forgetAll()
            if (signal._tag !== "EventsAppended") return
            for (const event of signal.events) if (event.type === "system.api_key_revoked") cache.forget(String(event.data.api_key_id))
          })
        )
      )
      const externalWrites = () => store.externalWrites?.()

      // Every admin request identifies its key: from the cache when it may, else a read, without the write lock.
      const identify = (apiKey: string) =>
        Effect.gen(function* () {
          const keyHash = hashSecret(apiKey)
          const now = yield* Clock.currentTimeMillis
          const cached = cache.get(keyHash, now, externalWrites())
          if (cached !== undefined) return cached
          const generation = cache.begin()
          const writesBefore = externalWrites()
          const identity = yield* read((ctx) =>
            Effect.gen(function* () {
              const record = yield* ctx.tx.findApiKeyByHash(keyHash)
              if (record === undefined || record.revoked_at !== null) {
                return yield* unauthorized("invalid_api_key", "the API key is unknown or revoked; create one with `fleetplane apikey create`", {})
              }
              return { account_id: record.account_id, api_key_id: record.id, name: record.name, role: record.role } satisfies ApiKeyIdentity
            })
          )
          cache.put(keyHash, identity, now, writesBefore, generation)
          return identity
        })
      return ApiKeys.of({
        identify,
        create: (accountId, name, role) =>
          transact((ctx) =>
            Effect.gen(function* () {
              if (name.trim().length === 0 || name.length > 128) return yield* invalidInput("invalid_name", "an API key name must be 1-128 characters", {})
              if (!Schema.is(ApiKeyRole)(role)) return yield* invalidInput("invalid_role", `an API key's role is read, operate or admin, not "${String(role).slice(0, 32)}"`, {})
              const account = yield* ctx.tx.getAccount(accountId as AccountId)
              if (account === undefined) return yield* notFound("account_not_found", `account ${accountId} does not exist`, { account_id: accountId })
              const apiKey = `fpk_${randomBytes(32).toString("base64url")}`
              const id = newId("apiKey")
              yield* ctx.tx.insertApiKey({ id, account_id: account.id, name: name.trim(), role, key_hash: hashSecret(apiKey), created_at: ctx.nowIso, revoked_at: null })
              yield* ctx.emit(account.id, "system.api_key_created", { api_key_id: id, name: name.trim(), role })
              return { id, account_id: account.id, name: name.trim(), role, api_key: apiKey }
            })
          ),
        list: (accountId) =>
          read((ctx) =>
            Effect.gen(function* () {
              if ((yield* ctx.tx.getAccount(accountId as AccountId)) === undefined) {
                return yield* notFound("account_not_found", `account ${accountId} does not exist`, { account_id: accountId })
              }
              const keys = yield* ctx.tx.listApiKeys(accountId as AccountId)
              return keys.map(({ id, name, role, created_at, revoked_at }) => ({ id, name, role, created_at, revoked_at }))
            })
          ),
        authenticate: (apiKey) => Effect.map(identify(apiKey), (identity) => identity.account_id),
        revoke: (accountId, id) =>
          transact((ctx) =>
            Effect.gen(function* () {
              if (!(yield* ctx.tx.revokeApiKey(accountId as AccountId, id, ctx.nowIso))) {
                return yield* notFound("api_key_not_found", `API key ${id} does not exist in this account or is already revoked`, { api_key_id: id })
              }
              yield* ctx.emit(accountId as AccountId, "system.api_key_revoked", { api_key_id: id })
            })
          ).pipe(
            // Refused by this process from the moment `revoke` returns, before the signal is seen.
            Effect.tap(() => Effect.sync(() => cache.forget(id)))
          )
      })
    })
  )
}
