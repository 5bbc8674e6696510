/**
 * PostgreSQL for tests: the throwaway server started by scripts/throwaway-postgres.mjs
 * (vitest globalSetup), and a fresh database per test so tests never see each other's rows.
 * There is no skipping: if PostgreSQL cannot start, the setup fails and says why.
 */
import { randomBytes } from "node:crypto"
import { Effect, Layer } from "effect"
import pg from "pg"
import { postgresStoreLayer } from "../../src/index"

export const postgresUrl = () => {
  const url = process.env.FLEETPLANE_TEST_POSTGRES_URL
  if (url === undefined || url === "") throw new Error("FLEETPLANE_TEST_POSTGRES_URL is not set: the throwaway PostgreSQL (scripts/throwaway-postgres.mjs) did not start")
  return url
}

/** Creates an empty database on the throwaway server; returns its URL. */
export const freshDatabase = async (): Promise<string> => {
  const admin = new pg.Client({ connectionString: postgresUrl() })
  await admin.connect()
  const name = `fleet_${randomBytes(6).toString("hex")}`
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(postgresUrl())
  url.pathname = `/${name}`
  return url.toString()
}

/** Runs one statement on a connection of its own, as another gateway's migration (or a DBA) would. */
export const runAlone = async (url: string, statement: string): Promise<void> => {
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  try {
    await admin.query(statement)
  } finally {
    await admin.end()
  }
}

/** Ends every other connection to the database at `url`, as a server restart (or a DBA's `pg_terminate_backend`) would. */
export const terminateOtherConnections = (url: string): Promise<void> =>
  runAlone(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")

/** A PostgreSQL store on a fresh database, as a layer. */
export const freshPostgresStoreLayer = () => Layer.unwrap(Effect.map(Effect.promise(freshDatabase), (url) => postgresStoreLayer({ url })))

/**
 * Advisory locks held in the database by any session, once those being given back have been:
 * polled for up to 2 s (a gate is given back after its COMMIT without waiting for the answer).
 */
export const advisoryLocksHeld = async (url: string): Promise<number> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const count = async () =>
      Number(
        (await client.query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"))
          .rows[0].n
      )
    const deadline = Date.now() + 2_000
    let held = await count()
    while (held > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      held = await count()
    }
    return held
  } finally {
    await client.end()
  }
}
