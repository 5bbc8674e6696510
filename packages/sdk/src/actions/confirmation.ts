/**
 * The confirmation flow for destructive actions (SPEC §5): a call without a token answers
 * `confirmation_required` with a summary and a one-time token; the same call repeated with
 * that token (same account, same action, same input, before it expires) executes. Tokens
 * are stored hashed and work once.
 */
import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import type { TxContext } from "../domain/transactor"
import { ConfirmationRequiredError, invalidInput } from "../model/errors"
import type { AccountId } from "../model/ids"
import { hashSecret } from "../agents/credentials"
import type { ConfirmationSummary } from "./action"

/** A stable hash of an action input: keys sorted, so `{a, b}` and `{b, a}` confirm the same call. */
export const hashActionInput = (input: unknown): string => {
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical)
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, canonical(v)]))
    }
    return value
  }
  return hashSecret(JSON.stringify(canonical(input)))
}

/** Records a new confirmation and answers with the error that carries its token. */
export const requestConfirmation = (ctx: TxContext, accountId: AccountId, action: string, input: unknown, summary: ConfirmationSummary, ttlMs: number) =>
  Effect.gen(function* () {
    const token = `fpc_${randomBytes(24).toString("base64url")}`
    const expiresAt = ctx.now.getTime() + ttlMs
    yield* ctx.tx.insertConfirmation({ token_hash: hashSecret(token), account_id: accountId, action, input_hash: hashActionInput(input), expires_at: expiresAt })
    return new ConfirmationRequiredError({
      code: "confirmation_required",
      message: `${action} is destructive: ${summary.summary}. Repeat the same call with confirmation_token to execute it (valid until ${new Date(expiresAt).toISOString()}).`,
      details: { summary: summary.summary, changes: summary.changes, confirmation_token: token, expires_at: new Date(expiresAt).toISOString() }
    })
  })

/** Consumes a token; fails with `invalid_confirmation` unless it was issued for exactly this call. */
export const consumeConfirmation = (ctx: TxContext, accountId: AccountId, action: string, input: unknown, token: string) =>
  Effect.gen(function* () {
    const record = yield* ctx.tx.takeConfirmation(hashSecret(token))
    const valid =
      record !== undefined &&
      record.account_id === accountId &&
      record.action === action &&
      record.input_hash === hashActionInput(input) &&
      record.expires_at > ctx.now.getTime()
    if (!valid) {
      return yield* invalidInput(
        "invalid_confirmation",
        `the confirmation_token is unknown, expired, already used, or was issued for a different call; call ${action} without a token to get a new one`,
        { action }
      )
    }
  })
