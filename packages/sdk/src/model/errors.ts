/**
 * Domain errors. Each carries a stable snake_case `code`, a `message` that tells the
 * operator what to do next, and `details` with the values involved (never secrets).
 * The error class is the category; `errorStatus` maps it once to HTTP / CLI / protocol.
 */
import { Schema } from "effect"

const fields = {
  code: Schema.String,
  message: Schema.String,
  details: Schema.Record(Schema.String, Schema.Unknown)
}

type Details = Record<string, unknown>

/** The input does not have the right shape or violates a rule about values (R1, R3, R5, ...). */
export class InvalidInputError extends Schema.TaggedError<InvalidInputError>()("InvalidInputError", fields) {}
/** The entity does not exist in this account (also used for other accounts' entities: no existence leak). */
export class NotFoundError extends Schema.TaggedError<NotFoundError>()("NotFoundError", fields) {}
/** The change collides with existing state (overlapping prefixes, duplicate names, ...). */
export class ConflictError extends Schema.TaggedError<ConflictError>()("ConflictError", fields) {}
/** The entity is not in a state that allows this (cluster not active, no failover candidate, ...). */
export class StateError extends Schema.TaggedError<StateError>()("StateError", fields) {}
/** A destructive action needs its confirmation token; `details` has the summary and the token. */
export class ConfirmationRequiredError extends Schema.TaggedError<ConfirmationRequiredError>()("ConfirmationRequiredError", fields) {}
/** Unknown agent, wrong credential, revoked key. */
export class UnauthorizedError extends Schema.TaggedError<UnauthorizedError>()("UnauthorizedError", fields) {}
/** The caller is known but its API key's role does not allow this action. */
export class ForbiddenError extends Schema.TaggedError<ForbiddenError>()("ForbiddenError", fields) {}
/** The store failed (disk full, corrupt file, ...). Nothing was changed. */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", fields) {}

export type DomainError =
  | InvalidInputError
  | NotFoundError
  | ConflictError
  | StateError
  | ConfirmationRequiredError
  | UnauthorizedError
  | ForbiddenError
  | StoreError

const make =
  <E>(Class: new (args: { code: string; message: string; details: Details }) => E) =>
  (code: string, message: string, details: Details = {}): E =>
    new Class({ code, message, details })

export const invalidInput = make(InvalidInputError)
export const notFound = make(NotFoundError)
export const conflict = make(ConflictError)
export const stateError = make(StateError)
export const unauthorized = make(UnauthorizedError)
export const forbidden = make(ForbiddenError)
export const storeError = make(StoreError)

/** The one mapping from error category to HTTP status and CLI exit code. */
export const errorStatus: Record<DomainError["_tag"], { readonly http: number; readonly exitCode: number }> = {
  InvalidInputError: { http: 400, exitCode: 2 },
  UnauthorizedError: { http: 401, exitCode: 3 },
  ForbiddenError: { http: 403, exitCode: 3 },
  NotFoundError: { http: 404, exitCode: 4 },
  ConflictError: { http: 409, exitCode: 5 },
  StateError: { http: 409, exitCode: 6 },
  ConfirmationRequiredError: { http: 428, exitCode: 7 },
  StoreError: { http: 503, exitCode: 10 }
}

export const isDomainError = (value: unknown): value is DomainError =>
  typeof value === "object" && value !== null && "_tag" in value && (value as { _tag: string })._tag in errorStatus
