/**
 * Errors on the admin API's wire: every failure is `{ error: { code, message, details,
 * category } }` with the status the SDK's one mapping (`errorStatus`) gives its category.
 * Each schema decodes that body back into the SDK's tagged error, so a client derived from
 * the API (the CLI's) gets the same typed errors the Effect API fails with.
 */
import { Schema, SchemaTransformation } from "effect"
import { HttpApiSchema } from "effect/http-api"
import {
  ConfirmationRequiredError,
  ConflictError,
  errorStatus,
  ForbiddenError,
  InvalidInputError,
  NotFoundError,
  StateError,
  StoreError,
  UnauthorizedError,
  type DomainError
} from "@fleetplane/sdk"

const fields = {
  code: Schema.String,
  message: Schema.String,
  details: Schema.Record(Schema.String, Schema.Unknown)
}

/** The gateway's own refusals, outside the SDK's categories. */
export class TooManyFailedKeysError extends Schema.TaggedError<TooManyFailedKeysError>()("TooManyFailedKeysError", fields) {}
export class BodyTooLargeError extends Schema.TaggedError<BodyTooLargeError>()("BodyTooLargeError", fields) {}
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", fields) {}

export type AdminError = DomainError | TooManyFailedKeysError | BodyTooLargeError | InternalError

type ErrorClass = Schema.Top & { readonly Type: { readonly _tag: string; readonly code: string; readonly message: string; readonly details: Record<string, unknown> } }

/** `Class` (tagged `tag`) as `{ error: { ..., category } }` at `status`; clients map `category` to exit codes. */
const onTheWire = <S extends ErrorClass>(Class: S, tag: S["Type"]["_tag"], category: string, status: number, description: string) =>
  Schema.Struct({
    error: Schema.Struct({ ...fields, category: Schema.Literal(category) })
  }).pipe(
    Schema.decodeTo(
      Class as unknown as Schema.Codec<S["Type"], { readonly _tag: string; readonly code: string; readonly message: string; readonly details: Record<string, unknown> }>,
      SchemaTransformation.transform({
        decode: ({ error }) => ({ _tag: tag, code: error.code, message: error.message, details: error.details }),
        encode: (value) => ({ error: { code: value.code, message: value.message, details: value.details, category } })
      })
    ),
    HttpApiSchema.status(status),
    Schema.annotate({ description })
  )

const sdk = <S extends ErrorClass>(Class: S, tag: DomainError["_tag"], description: string) => onTheWire(Class, tag, tag, errorStatus[tag].http, description)

export const InvalidInput = sdk(InvalidInputError, "InvalidInputError", "The input has the wrong shape or breaks a rule; `code` says which.")
export const Unauthorized = sdk(UnauthorizedError, "UnauthorizedError", "No API key, an unknown one, or a revoked one.")
export const Forbidden = sdk(ForbiddenError, "ForbiddenError", "The key's role does not allow this action.")
export const NotFound = sdk(NotFoundError, "NotFoundError", "No such entity in this account (or no such action).")
export const Conflict = sdk(ConflictError, "ConflictError", "The change collides with existing state.")
export const State = sdk(StateError, "StateError", "The entity is not in a state that allows this.")
export const ConfirmationRequired = sdk(
  ConfirmationRequiredError,
  "ConfirmationRequiredError",
  "A destructive action: `details` has the summary and a one-time `confirmation_token`; repeat the same call with it."
)
export const StoreUnavailable = sdk(StoreError, "StoreError", "The store failed; nothing was changed. Retry.")

/** Throttled key guessing: category `UnauthorizedError` (the CLI's exit code 3), with Retry-After. */
export const TooManyFailedKeys = onTheWire(TooManyFailedKeysError, "TooManyFailedKeysError", "UnauthorizedError", 429, "Too many failed API keys from this address; wait `details.retry_after_ms`.")
export const BodyTooLarge = onTheWire(BodyTooLargeError, "BodyTooLargeError", "InvalidInputError", 413, "The request body is larger than 1 MiB.")
export const Internal = onTheWire(InternalError, "InternalError", "InternalError", 500, "The gateway failed to answer; retry, and report it if it persists.")

/** What any action may fail with, besides the key check's failures. */
export const ActionErrors = [InvalidInput, Forbidden, NotFound, Conflict, State, ConfirmationRequired, StoreUnavailable, BodyTooLarge, Internal] as const
/** What the API key check may fail with (Forbidden: a console change without its CSRF token). */
export const KeyErrors = [Unauthorized, Forbidden, TooManyFailedKeys, StoreUnavailable, Internal] as const

/** A typed error as the wire's plain fields (for clients that print or rethrow it). */
export const errorFields = (error: AdminError) => ({ code: error.code, message: error.message, details: error.details, category: wireCategory(error) })

const wireCategory = (error: AdminError): string =>
  error._tag === "TooManyFailedKeysError" ? "UnauthorizedError" : error._tag === "BodyTooLargeError" ? "InvalidInputError" : error._tag
