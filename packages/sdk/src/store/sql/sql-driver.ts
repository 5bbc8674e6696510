/**
 * What the store needs from a SQL database: run one statement inside the current
 * transaction. Statements use `?` for positional and `@name` for named parameters; each
 * driver translates them (SQLite takes both as is; PostgreSQL gets `$1..$n`). Every driver
 * returns plain rows with JSON columns as text and integers as numbers, so one set of row
 * mappers serves both backends.
 */
import type { Effect } from "effect"
import type { StoreError } from "../../model/errors"

export type Row = Record<string, unknown>
export type Params = ReadonlyArray<unknown> | Readonly<Record<string, unknown>>

export interface SqlDriver {
  readonly one: (sql: string, params?: Params) => Effect.Effect<Row | undefined, StoreError>
  readonly all: (sql: string, params?: Params) => Effect.Effect<Array<Row>, StoreError>
  /** A write; resolves to the number of rows it changed. */
  readonly run: (sql: string, params?: Params) => Effect.Effect<number, StoreError>
  /**
   * A write whose answer nothing waits for. PostgreSQL sends it without waiting for the answer
   * (the statements of one transaction travel back to back on its connection, so later reads
   * still see it); if it fails, the transaction's next statement, or its commit, fails with its
   * error. SQLite runs it at once.
   */
  readonly write: (sql: string, params?: Params) => Effect.Effect<void, StoreError>
}
