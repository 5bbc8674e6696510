/**
 * The shared store: PostgreSQL through `pg`, for several gateways on one consistent state.
 *
 * Every transaction runs SERIALIZABLE: two gateways validating joins into the same cluster,
 * or promoting the same VIP, cannot both commit decisions that only hold one at a time —
 * PostgreSQL aborts one with a serialization failure, and the store runs that transaction's
 * body again (bounded, with jittered backoff). A transaction's events are written when it
 * commits, in one statement, under a transaction-level advisory lock taken just then: their
 * sequence numbers are in commit order, so an event-stream reader following `seq` never skips
 * one that committed late, and the lock is held for two round trips, not the transaction. Statements
 * whose answers nothing waits for are pipelined (see `PgConnection`). Migrations run under an advisory
 * lock too, so gateways starting together apply them once.
 *
 * While PostgreSQL is unreachable, calls fail with `store_unavailable` (nothing is half
 * written: the transaction never committed — except a connection lost during the commit, whose
 * error says the outcome is unknown); agent sessions and heartbeats live in each gateway's
 * memory and carry on.
 */
import { randomBytes } from "node:crypto"
import { Cause, Deferred, Effect, Exit, Layer, Option, Schedule, Semaphore } from "effect"
import pg from "pg"
import { storeError, StoreError } from "../../model/errors"
import type { Params, Row, SqlDriver } from "../sql/sql-driver"
import { inSavepoint, makeSqlStoreTx } from "../sql/sql-store-tx"
import { hasStaleStatements, Store, type SharedStore, type StoreTx, type TransactionGate, type TransactionOptions } from "../store"
import { postgresMigrations } from "./migrations"
import { migrationError, runMigrations } from "../migrator"

export interface PostgresStoreOptions {
  /** A connection string, e.g. `postgres://fleetplane@db.example:5432/fleetplane`. */
  readonly url: string
  /** Connections in the pool (default 10). */
  readonly poolSize?: number
  /** Attempts for a transaction that keeps meeting serialization conflicts (default 20). */
  readonly maxAttempts?: number
}

/**
 * SQLSTATEs after which the whole transaction runs again: serialization failures and
 * deadlocks, and unique violations — under concurrency a transaction can collide with a
 * row another one committed after this one checked for it (a name, a lease); run again, it
 * sees that row and answers as a serial execution would (usually with a typed domain error).
 */
const RETRYABLE = new Set(["40001", "40P01", "23505"])
/** SQLSTATE classes meaning the server or the connection is gone. */
const UNAVAILABLE = /^(08|57P0|53)/
const EVENTS_LOCK = 0x6670_6576 // "fpev"
/** The NOTIFY channel the gateways' signals travel on (see domain/shared-state.ts). */
const SIGNALS_CHANNEL = "fleetplane_signals"
const MIGRATIONS_LOCK = 0x6670_6d67 // "fpmg"
/** "current transaction is aborted, commands ignored until end of transaction block". */
const IN_FAILED_TRANSACTION = "25P02"

const sqlState = (cause: unknown) => (typeof cause === "object" && cause !== null && "code" in cause ? String((cause as { code: unknown }).code) : "")

const toStoreError = (cause: unknown): StoreError => {
  const code = sqlState(cause)
  const message = cause instanceof Error ? cause.message : String(cause)
  if (RETRYABLE.has(code)) return storeError("store_conflict", "a concurrent change conflicted with this one; nothing was changed, retry", { sqlstate: code })
  if (code === "0A000" && /cached plan/.test(message)) {
    return storeError(
      "store_failed",
      "PostgreSQL's tables changed under this gateway's prepared statements (a newer gateway migrated the database?); nothing was changed. Retry, and upgrade this gateway to the database's version",
      { sqlstate: code, stalePlans: true }
    )
  }
  if (UNAVAILABLE.test(code) || /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|Connection terminated|connection error|not queryable|timeout/i.test(message)) {
    return storeError("store_unavailable", `PostgreSQL is unavailable (${message}); nothing was changed. Retry once the database is back`, {})
  }
  return storeError("store_failed", `the database failed: ${message}; nothing was changed. Check the database and retry`, code === "" ? {} : { sqlstate: code })
}

/**
 * The connection lost while committing: `COMMIT` may have reached the server, so "nothing was
 * changed" would not be known to be true. Same code, an honest message, and no automatic retry.
 */
const outcomeUnknownIfLost = (error: StoreError): StoreError =>
  error.code === "store_unavailable"
    ? storeError(
        "store_unavailable",
        "PostgreSQL became unavailable while this change was committing; it may or may not have been committed. Read its result back before retrying",
        { outcome: "unknown" }
      )
    : error

/** No connection could be had at all (marked so a transaction is not tried again: that would only double the wait). */
const connectFailed = (error: StoreError): StoreError =>
  error.code === "store_unavailable" ? storeError(error.code, error.message, { ...error.details, connecting: true }) : error

/**
 * Worth one more run on a fresh connection, as nothing was committed: the connection was lost
 * before the commit was sent, or its prepared statements went stale.
 */
const failedBeforeCommitOnItsConnection = (error: unknown) => {
  if (hasStaleStatements(error)) return true
  if (!(error instanceof StoreError) || error.code !== "store_unavailable") return false
  const details = error.details as { outcome?: string; connecting?: boolean }
  return details.outcome !== "unknown" && details.connecting !== true
}

const isConflict = (error: unknown) => error instanceof StoreError && error.code === "store_conflict"

/** `?` -> `$n` in order, or `@name` -> `$n` by name. Our statements have neither inside string literals. */
const translateText = (sql: string, named: boolean): { readonly text: string; readonly order: ReadonlyArray<string> } => {
  if (!named) {
    let index = 0
    return { text: sql.replace(/\?/g, () => `$${++index}`), order: [] }
  }
  const order: Array<string> = []
  const text = sql.replace(/@([a-z_][a-z0-9_]*)/g, (_, name: string) => {
    let at = order.indexOf(name)
    if (at === -1) at = order.push(name) - 1
    return `$${at + 1}`
  })
  return { text, order }
}

/**
 * Translations by statement text: the store's statements are a fixed set, translated once each.
 * A statement run again is named, so each connection has PostgreSQL parse and plan it once and
 * then only bind it (an unnamed statement is parsed and planned every time it runs). Statements
 * whose text varies (a batch of rows of another length, a change of other columns) are named
 * only if they recur, and at most `NAMED_KEPT` of them: each named one is kept on every connection.
 */
interface Translation {
  readonly text: string
  readonly order: ReadonlyArray<string>
  /** Given when the statement runs a second time. */
  name: string | undefined
}
const translations = new Map<string, Translation>()
const TRANSLATIONS_KEPT = 2_000
const NAMED_KEPT = 500
let named = 0

interface Submission {
  readonly text: string
  readonly values: Array<unknown>
  readonly name: string | undefined
}

const translate = (sql: string, params: Params | undefined): Submission => {
  if (params === undefined) return { text: sql, values: [], name: undefined }
  const byName = !Array.isArray(params)
  const key = byName ? `@${sql}` : sql
  let translated = translations.get(key)
  if (translated === undefined) {
    translated = { ...translateText(sql, byName), name: undefined }
    if (translations.size < TRANSLATIONS_KEPT) translations.set(key, translated)
  } else if (translated.name === undefined && named < NAMED_KEPT) {
    translated.name = `fp${named++}`
  }
  const { text, name } = translated
  if (!byName) return { text, name, values: [...(params as ReadonlyArray<unknown>)] }
  const values = params as Readonly<Record<string, unknown>>
  return { text, name, values: translated.order.map((field) => values[field] ?? null) }
}

/** Rows as the SQLite driver returns them: without the `rowid` ordering column. */
const plain = (row: Row): Row => {
  if (!("rowid" in row)) return row
  const { rowid: _, ...rest } = row
  return rest
}

interface PendingEvent {
  readonly accountId: string
  readonly event: { seq: number; type: string; at: string; data: Record<string, unknown> }
}

/**
 * One pooled connection as the store uses it, made once per connection: its driver, the ~150
 * store operations over that driver (building them for every transaction cost more CPU than
 * the transaction's round trips), and the current transaction's events and notices.
 *
 * The connection is pipelined (`pg`'s pipeline mode): a statement whose answer nothing waits
 * for — `BEGIN`, a write through `write`, the statements of the commit — is held and sent
 * with the next statement something waits for, its answer read with that one's, so a join's
 * writes ride with its next read and its commit costs two round trips, not five.
 * PostgreSQL runs a connection's statements in the order sent, so a read still sees every write
 * before it; the first statement that failed is the one whose error the next awaited answer
 * (at the latest, `COMMIT`'s) reports.
 */
interface PgConnection {
  readonly driver: SqlDriver
  readonly tx: StoreTx
  /** Forgets what an ended transaction left (all of it answered by then). */
  readonly begin: () => void
  readonly pendingEvents: Array<PendingEvent>
  readonly pendingNotices: Array<() => ReadonlyArray<string>>
}

const ignore = () => undefined

const connectionFor = (client: pg.PoolClient): PgConnection => {
  // Answers not read yet, in the order their statements were sent.
  let unanswered: Array<Promise<unknown>> = []
  // Statements sent in one turn of the event loop leave in one socket write: on a busy machine
  // each write costs tens of microseconds (it wakes the server process), more than the statement.
  const stream = (client as unknown as { connection: { stream: { cork?: () => void; uncork?: () => void } } }).connection.stream
  let corked = false
  const uncork = () => {
    corked = false
    stream.uncork?.()
  }
  // The transaction's first failed statement. Statements sent together (reads made concurrently)
  // after it fail only with "current transaction is aborted" (25P02), which says nothing of the
  // cause: a serialization failure reported that way would not be retried. Answers arrive in the
  // order sent, so the first rejection seen is the earliest statement's.
  let firstFailure: unknown = undefined
  const noteFailure = (error: unknown) => {
    if (firstFailure === undefined && sqlState(error) !== IN_FAILED_TRANSACTION) firstFailure = error
  }
  const cause = (error: unknown) => (sqlState(error) === IN_FAILED_TRANSACTION && firstFailure !== undefined ? firstFailure : error)
  const submit = (sql: string, params: Params | undefined) => {
    const { text, values, name } = translate(sql, params)
    if (!corked && stream.cork !== undefined) {
      corked = true
      stream.cork()
      queueMicrotask(uncork)
    }
    const answer = client.query(name === undefined ? { text, values } : { name, text, values })
    answer.catch(noteFailure)
    return answer
  }
  // Statements nothing waits for, held until the next one something waits for: they leave with it,
  // in its socket write, however many turns of the event loop the body took between them.
  let held: Array<readonly [string, Params | undefined]> = []
  const sendHeld = () => {
    for (const [sql, params] of held) {
      const answer = submit(sql, params)
      answer.catch(ignore) // read (and reported) through the next awaited answer
      unanswered.push(answer)
    }
    held = []
  }
  // An awaited statement waits for the ones sent before it: the earliest failure is the one reported.
  const query = (sql: string, params: Params | undefined) =>
    Effect.tryPromise({
      try: () => {
        if (held.length > 0) sendHeld()
        const answer = submit(sql, params)
        if (unanswered.length === 0) return answer
        const before = unanswered
        unanswered = []
        return Promise.all([...before, answer]).then(() => answer)
      },
      catch: (error) => toStoreError(cause(error))
    })
  const driver: SqlDriver = {
    one: (sql, params) => Effect.map(query(sql, params), (result) => (result.rows[0] === undefined ? undefined : plain(result.rows[0] as Row))),
    all: (sql, params) => Effect.map(query(sql, params), (result) => (result.rows as Array<Row>).map(plain)),
    run: (sql, params) => Effect.map(query(sql, params), (result) => result.rowCount ?? 0),
    write: (sql, params) => Effect.sync(() => void held.push([sql, params]))
  }
  const pendingEvents: Array<PendingEvent> = []
  const pendingNotices: Array<() => ReadonlyArray<string>> = []
  // Waits for its own answer only: an earlier failure is the failed body's, which this undoes.
  const rollBackToSavepoint = Effect.tryPromise({
    try: () => {
      if (held.length > 0) sendHeld()
      const before = unanswered
      unanswered = []
      const answer = submit("ROLLBACK TO SAVEPOINT fp_body", undefined)
      // The failure was the body's; the transaction goes on healthy.
      return Promise.allSettled(before).then(() => answer).then((done) => {
        firstFailure = undefined
        return done
      })
    },
    catch: (error) => toStoreError(cause(error))
  })
  const tx: StoreTx = {
    ...makeSqlStoreTx(driver),
    // Events and notices wait for the commit in memory: a failed body's go with its writes.
    inSavepoint: (body) =>
      Effect.suspend(() => {
        const events = pendingEvents.length
        const notices = pendingNotices.length
        const forget = Effect.sync(() => {
          pendingEvents.length = events
          pendingNotices.length = notices
        })
        // Released with a wait: a pipelined write of the body that failed fails the body, not a later one.
        return inSavepoint(driver, { rollBack: Effect.andThen(forget, rollBackToSavepoint), end: driver.run("RELEASE SAVEPOINT fp_body") })(body)
      }),
    // Events are written at commit, under the events lock, in one statement (see `commit`).
    appendEvent: (accountId, type, at, data) =>
      Effect.sync(() => {
        const event = { seq: 0, type, at, data }
        pendingEvents.push({ accountId, event })
        return event
      }),
    notifyOnCommit: (payloads) => {
      pendingNotices.push(payloads)
    }
  }
  return {
    driver,
    tx,
    begin: () => {
      unanswered = []
      held = []
      firstFailure = undefined
      pendingEvents.length = 0
      pendingNotices.length = 0
    },
    pendingEvents,
    pendingNotices
  }
}

const connections = new WeakMap<pg.PoolClient, PgConnection>()
const connectionOf = (client: pg.PoolClient) => {
  let connection = connections.get(client)
  if (connection === undefined) {
    connection = connectionFor(client)
    connections.set(client, connection)
  }
  return connection
}

/**
 * The end of a transaction that succeeded: its events under the events lock (which keeps
 * sequence numbers in commit order, held from here to the commit) in one statement, then its
 * notices (transactional: delivered only if it commits; they carry the events' sequence
 * numbers) and `COMMIT`, sent back to back — two round trips, one without events.
 */
const commit = (connection: PgConnection) =>
  Effect.gen(function* () {
    const { driver, pendingEvents } = connection
    if (pendingEvents.length > 0) {
      yield* driver.write("SELECT pg_advisory_xact_lock(?)", [EVENTS_LOCK])
      const rows = yield* driver.all(
        `INSERT INTO events (account_id, type, at, data)
         SELECT account_id, type, at, data FROM unnest(?::text[], ?::text[], ?::text[], ?::text[]) WITH ORDINALITY AS e(account_id, type, at, data, n)
         ORDER BY n RETURNING seq`,
        [
          pendingEvents.map((p) => p.accountId),
          pendingEvents.map((p) => p.event.type),
          pendingEvents.map((p) => p.event.at),
          pendingEvents.map((p) => JSON.stringify(p.event.data))
        ]
      )
      // One statement under the lock: its sequence numbers are consecutive, in row order.
      const seqs = rows.map((row) => Number(row.seq)).sort((a, b) => a - b)
      pendingEvents.forEach((pending, i) => (pending.event.seq = seqs[i]!))
    }
    const payloads = connection.pendingNotices.flatMap((compute) => compute())
    if (payloads.length > 0) yield* driver.write("SELECT pg_notify(?, payload) FROM unnest(?::text[]) AS payload", [SIGNALS_CHANNEL, payloads])
    yield* driver.run("COMMIT")
  })

/** BIGINT (int8) and NUMERIC as numbers: every such value the store keeps is far below 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === 20 || oid === 1700 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as never)) as typeof pg.types.getTypeParser
}

/** Migrations on one connection, under an advisory lock: several gateways starting at once migrate once. */
const migrate = (pool: pg.Pool, url: string) =>
  Effect.tryPromise({
    try: async () => {
      const client = await pool.connect()
      try {
        await client.query("SELECT pg_advisory_lock($1)", [MIGRATIONS_LOCK])
        await runMigrations(
          {
            exec: async (sql) => void (await client.query(sql)),
            appliedVersions: async () => (await client.query("SELECT version FROM schema_migrations")).rows.map((r) => Number(r.version)),
            record: async (migration, appliedAt) =>
              void (await client.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", [migration.version, migration.name, appliedAt]))
          },
          postgresMigrations
        )
      } finally {
        await client.query("SELECT pg_advisory_unlock($1)", [MIGRATIONS_LOCK]).catch(() => undefined)
        client.release()
      }
    },
    // The URL may carry a password: only its host and database name go into the error.
    catch: migrationError(redactedUrl(url), (cause) => toStoreError(cause).message)
  })

/** host:port/database of a connection URL, without user or password. */
const redactedUrl = (url: string) => {
  try {
    const parsed = new URL(url)
    return `${parsed.host}${parsed.pathname}`
  } catch {
    return "the PostgreSQL database"
  }
}

/** Connects to PostgreSQL and applies pending migrations. */
export const openPostgresStore = (options: PostgresStoreOptions) =>
  Effect.gen(function* () {
    const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 10, types, connectionTimeoutMillis: 10_000, pipeline: true } as pg.PoolConfig)
    // A connection dropping (database restarted, network cut) must not crash the host
    // process: idle clients report to the pool, busy ones to their own listener; the query in
    // flight fails with store_unavailable either way.
    pool.on("error", () => undefined)
    pool.on("connect", (client) => client.on("error", () => undefined))
    yield* Effect.addFinalizer(() => Effect.promise(() => pool.end()))
    yield* migrate(pool, options.url)

    const attempt = <A, E, R>(body: (tx: StoreTx) => Effect.Effect<A, E, R>, begin: string, gates: ReadonlyArray<TransactionGate>): Effect.Effect<A, E | StoreError, R> =>
      Effect.acquireUseRelease(
        Effect.tryPromise({ try: () => pool.connect(), catch: (cause) => connectFailed(toStoreError(cause)) }),
        (client) =>
          Effect.uninterruptibleMask((restore) =>
            Effect.gen(function* () {
              const connection = connectionOf(client)
              connection.begin()
              // Before BEGIN, so the snapshot is taken once the gate is passed. Both are sent with the
              // first statement of the body, not waited for on their own.
              for (const gate of gates) yield* connection.driver.write(gate.mode === "shared" ? "SELECT pg_advisory_lock_shared(?)" : "SELECT pg_advisory_lock(?)", [gateKey(gate)])
              yield* connection.driver.write(begin)
              const exit = yield* Effect.exit(restore(body(connection.tx)))
              if (Exit.isSuccess(exit)) {
                const committed = yield* Effect.exit(commit(connection).pipe(Effect.mapError(outcomeUnknownIfLost)))
                if (Exit.isFailure(committed)) {
                  yield* Effect.ignore(connection.driver.run("ROLLBACK"))
                  return yield* Effect.failCause(committed.cause)
                }
                return exit.value
              }
              // Waits for everything the body sent, then rolls back: the connection goes back to the pool idle.
              yield* Effect.ignore(connection.driver.run("ROLLBACK"))
              return yield* exit
            })
          ),
        // Stale prepared statements: the connection is closed, not pooled, so the next one prepares them afresh.
        (client, exit) =>
          Effect.sync(() => {
            const destroy = Exit.isFailure(exit) && Cause.findErrorOption(exit.cause).pipe(Option.exists(hasStaleStatements))
            // After COMMIT or ROLLBACK, ahead of whatever the connection's next borrower sends. Not
            // waited for: it cannot fail on a live connection, and a dead one's locks died with it.
            if (!destroy) {
              for (const gate of gates) {
                client
                  .query({ text: gate.mode === "shared" ? "SELECT pg_advisory_unlock_shared($1)" : "SELECT pg_advisory_unlock($1)", values: [gateKey(gate)] })
                  .catch(() => undefined)
              }
            }
            client.release(destroy)
          })
      )

    // Transactions that met a conflict run again one at a time: run side by side they tend to meet
    // again (concurrent joins read and write the same small index pages), so a burst of them could
    // use up its attempts; in this lane each meets only first attempts and other gateways.
    const retryLane = Semaphore.makeUnsafe(1)
    const inTransaction =
      (begin: string) =>
      <A, E, R>(body: (tx: StoreTx) => Effect.Effect<A, E, R>, transaction?: TransactionOptions): Effect.Effect<A, E | StoreError, R> => {
        const gates = gatesInOrder(transaction?.gates)
        return attempt(body, begin, gates).pipe(
          // A pooled connection that died while idle (a database restart, a dropped TCP session)
          // fails the first statement sent on it, and one whose prepared statements went stale
          // fails the first of them: once, the transaction runs again on a fresh connection.
          Effect.catchIf(failedBeforeCommitOnItsConnection, () => attempt(body, begin, gates)),
          Effect.catchIf(isConflict, () =>
            retryLane.withPermits(1)(
              attempt(body, begin, gates).pipe(
                Effect.retry({
                  while: isConflict,
                  times: (options.maxAttempts ?? 20) - 2,
                  // Short, jittered and capped: conflicts clear as soon as the other transaction commits.
                  schedule: Schedule.min([Schedule.exponential("2 millis", 1.5), Schedule.spaced("50 millis")]).pipe(Schedule.jittered)
                })
              )
            )
          )
        )
      }

    const integrityCheck = Effect.tryPromise({
      try: async () => {
        await pool.query("SELECT 1")
        return "ok"
      },
      catch: toStoreError
    })

    return Store.of({
      transaction: inTransaction("BEGIN ISOLATION LEVEL SERIALIZABLE"),
      // Read-only serializable transactions are cheaper for PostgreSQL to track, and cannot write.
      read: inTransaction("BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY"),
      integrityCheck,
      shared: sharedStore(options.url, pool)
    })
  })

/** A client of its own (not from the pool), for LISTEN and for a lease that lives as long as its session. */
const dedicatedClient = (url: string) =>
  Effect.tryPromise({
    try: async () => {
      const client = new pg.Client({ connectionString: url, types })
      client.on("error", () => undefined)
      await client.connect()
      return client
    },
    catch: toStoreError
  })

const closeQuietly = (client: pg.Client | undefined) => (client === undefined ? Effect.void : Effect.promise(() => client.end().catch(() => undefined)))

/** Sorted by name, one per name (the stronger mode if asked twice). */
const gatesInOrder = (gates: ReadonlyArray<TransactionGate> | undefined): ReadonlyArray<TransactionGate> => {
  if (gates === undefined || gates.length === 0) return []
  const byName = new Map<string, TransactionGate>()
  for (const gate of gates) if (byName.get(gate.name)?.mode !== "exclusive") byName.set(gate.name, gate)
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/** A gate's advisory lock key: in the leases' key space, under names of its own. */
const gateKey = (gate: TransactionGate) => leaseKey(`gate:${gate.name}`)

/** A lease name as a 64-bit advisory lock key. */
const leaseKey = (name: string) => {
  let hash = 0n
  for (const char of `fleetplane:${name}`) hash = (hash * 31n + BigInt(char.codePointAt(0)!)) & 0x7fff_ffff_ffff_ffffn
  return hash.toString()
}

const sharedStore = (url: string, pool: pg.Pool): SharedStore => ({
  origin: `${process.pid}-${randomBytes(6).toString("hex")}`,

  listen: (onMessage, onReconnect) =>
    Effect.gen(function* () {
      // Returns once the first LISTEN is in place (or after 10 s without one): nothing committed
      // after the fleet is up goes unheard.
      const listening = yield* Deferred.make<void>()
      yield* Effect.forkScoped(
        Effect.gen(function* () {
          let first = true
          // Reconnect forever; notifications sent while disconnected are lost, so a reconnect is reported.
          while (true) {
            const client = yield* Effect.option(dedicatedClient(url))
            if (client._tag === "Some") {
              yield* Effect.callback<void>((resume) => {
                client.value.on("notification", (message) => {
                  if (message.channel === SIGNALS_CHANNEL && message.payload !== undefined) onMessage(message.payload)
                })
                client.value.once("end", () => resume(Effect.void))
                client.value.once("error", () => resume(Effect.void))
                client.value
                  .query(`LISTEN ${SIGNALS_CHANNEL}`)
                  .then(() => {
                    if (!first) onReconnect()
                    first = false
                    Deferred.doneUnsafe(listening, Exit.void)
                  })
                  .catch(() => resume(Effect.void))
                return closeQuietly(client.value)
              })
              yield* closeQuietly(client.value)
            }
            yield* Effect.sleep("500 millis")
          }
        })
      )
      yield* Deferred.await(listening).pipe(Effect.timeout("10 seconds"), Effect.ignore)
    }),

  holdLease: (name, retryMs, onChange) =>
    Effect.forkScoped(
      Effect.gen(function* () {
        const key = leaseKey(name)
        while (true) {
          const client = yield* Effect.option(dedicatedClient(url))
          if (client._tag === "Some") {
            // Held while this session lives: a process that dies releases it with its connection.
            yield* Effect.acquireUseRelease(
              Effect.succeed(client.value),
              (session) =>
                Effect.gen(function* () {
                  let held = false
                  while (true) {
                    const answer = yield* Effect.tryPromise(() =>
                      held ? session.query("SELECT true AS held") : session.query("SELECT pg_try_advisory_lock($1::bigint) AS held", [key])
                    )
                    const now = answer.rows[0]?.held === true
                    if (now !== held) {
                      held = now
                      onChange(held)
                    }
                    yield* Effect.sleep(retryMs)
                  }
                }).pipe(
                  Effect.ignore,
                  Effect.onExit(() => Effect.sync(() => onChange(false)))
                ),
              (session) => closeQuietly(session)
            )
          }
          yield* Effect.sleep(retryMs)
        }
      })
    ).pipe(Effect.asVoid),

  publishLiveness: (rows) =>
    rows.length === 0
      ? Effect.void
      : Effect.asVoid(
          Effect.tryPromise({
            try: () =>
              pool.query(
                `INSERT INTO agent_liveness (instance_id, gateway, last_seen_at, connected, k3s, wireguard, load, vip_probes)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::boolean[], $5::text[], $6::text[], $7::text[], $8::text[])
                 ON CONFLICT (instance_id) DO UPDATE SET gateway = excluded.gateway, last_seen_at = excluded.last_seen_at,
                   connected = excluded.connected, k3s = excluded.k3s, wireguard = excluded.wireguard, load = excluded.load,
                   vip_probes = excluded.vip_probes
                 WHERE agent_liveness.last_seen_at <= excluded.last_seen_at`,
                [
                  rows.map((r) => r.instance_id),
                  rows.map((r) => r.gateway),
                  rows.map((r) => r.last_seen_at),
                  rows.map((r) => r.connected),
                  rows.map((r) => (r.k3s === undefined ? null : JSON.stringify(r.k3s))),
                  rows.map((r) => JSON.stringify(r.wireguard ?? [])),
                  rows.map((r) => (r.load === undefined ? null : JSON.stringify(r.load))),
                  rows.map((r) => (r.vip_probes === undefined || (Array.isArray(r.vip_probes) && r.vip_probes.length === 0) ? null : JSON.stringify(r.vip_probes)))
                ]
              ),
            catch: toStoreError
          })
        ),

  readLiveness: (sinceMs) =>
    Effect.tryPromise({
      try: async () =>
        (await pool.query("SELECT * FROM agent_liveness WHERE last_seen_at > $1", [sinceMs])).rows.map((row) => ({
          instance_id: row.instance_id,
          gateway: row.gateway,
          last_seen_at: Number(row.last_seen_at),
          connected: row.connected === true,
          k3s: row.k3s === null ? undefined : JSON.parse(row.k3s),
          wireguard: JSON.parse(row.wireguard),
          load: row.load === null ? undefined : JSON.parse(row.load),
          vip_probes: row.vip_probes === null || row.vip_probes === undefined ? [] : JSON.parse(row.vip_probes)
        })),
      catch: toStoreError
    })
})

/** The PostgreSQL store as a layer; the pool closes when the layer's scope ends. */
export const postgresStoreLayer = (options: PostgresStoreOptions) => Layer.effect(Store, openPostgresStore(options))
