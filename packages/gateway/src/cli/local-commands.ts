/**
 * Commands of the gateway box itself: run a gateway, and manage accounts and API keys on its
 * database directly (before any API key exists there is no other way in).
 */
import { existsSync } from "node:fs"
import { resolve as resolvePath } from "node:path"
import { type Command, InvalidArgumentError, Option } from "commander"
import { createFleet } from "@fleetplane/sdk"
import { startGateway } from "../gateway"
import type { LogLevel } from "../log"
import { CliError } from "./admin-client"
import type { CliSession } from "./cli-session"
import { fields, table } from "./output"

const DEFAULT_DB = "fleet.db"

/** A flag in milliseconds: a positive whole number, or the command stops with usage. */
export const milliseconds = (value: string): number => {
  const parsed = Number(value)
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed <= 0) {
    throw new InvalidArgumentError(`expected a positive whole number of milliseconds, got "${value.slice(0, 32)}"`)
  }
  return parsed
}

export const wholeNumber = (value: string): number => {
  const parsed = Number(value)
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed)) throw new InvalidArgumentError(`expected a whole number (0 or more), got "${value.slice(0, 32)}"`)
  return parsed
}

export const registerLocalCommands = (program: Command, session: CliSession) => {
  const { env, print } = session
  /** The store a command works on: PostgreSQL when given (flag or environment), else the SQLite file. */
  const storeOf = (options: { db: string; postgres?: string }) => {
    const postgres = options.postgres ?? env.FLEETPLANE_POSTGRES_URL
    return postgres === undefined || postgres === "" ? { database: options.db } : { postgres }
  }
  const databaseOptions = (command: Command) =>
    command
      .option("--db <file>", "SQLite database file", DEFAULT_DB)
      .option("--postgres <url>", "the shared PostgreSQL instead (or FLEETPLANE_POSTGRES_URL)")

  program
    .command("gateway")
    .description("run a gateway: agent WebSocket endpoint, admin API, embedded SQLite or shared PostgreSQL")
    .option("--db <file>", "SQLite database file", DEFAULT_DB)
    .option("--postgres <url>", "share state with other gateways on PostgreSQL (or set FLEETPLANE_POSTGRES_URL, which keeps a password out of `ps`)")
    .option("--listen <host:port>", "where agents connect", "0.0.0.0:7443")
    .option("--admin-listen <host:port>", "admin API (keep it private)", "127.0.0.1:7080")
    .option("--tls-cert <file>", "serve agents over wss:// with this certificate (PEM)")
    .option("--tls-key <file>", "the certificate's private key (PEM)")
    .option("--admin-tls-cert <file>", "serve the admin API over https:// with this certificate (PEM)")
    .option("--admin-tls-key <file>", "the admin certificate's private key (PEM)")
    .option("--heartbeat-interval <ms>", "heartbeat interval sent to agents", milliseconds, 5000)
    .option("--silence-threshold <ms>", "silence before a VIP holder is declared silent", milliseconds, 15000)
    .option("--hello-timeout <ms>", "how long a new connection has to send its hello", milliseconds, 10000)
    .option(
      "--liveness-sync <ms>",
      "several gateways: how often each shares and reads agent liveness; a holder heard of through another gateway is declared silent up to twice this after the threshold",
      milliseconds,
      1000
    )
    .option("--vip-probe-interval <ms>", "how often the nodes sampled as reporters probe their cluster's VIP over the overlay (each probe times out after as long)", milliseconds, 2000)
    .option("--vip-probe-reporters <n>", "how many of a cluster's nodes probe its VIP; 0 turns the peers' view off (failover on the holder's heartbeats alone)", wholeNumber, 5)
    .option("--lease-retry <ms>", "several gateways: how often a gateway without the leader lease tries to take it (how soon the sensor resumes after the leader dies)", milliseconds, 1000)
    .option(
      "--api-key-cache <ms>",
      "how long a checked API key is trusted without reading the store again; revocations (through any gateway or the CLI) are seen at once, this bounds one made behind their back; 0 reads the key on every request",
      wholeNumber,
      10000
    )
    .option(
      "--no-memory-reclaim",
      "do not run the compacting collection that gives memory back after a fan-out (it pauses the gateway ~170 ms at 1,000 agents, once per fan-out; needs node --expose-gc)"
    )
    .option("--gateway-id <id>", "name of this gateway in welcome messages")
    .option(
      "--peer-gateway <url>",
      "another gateway's agent endpoint (wss://host:7443/v1/agent), told to agents so they can move there when this one fails or drains; repeat for each",
      (value: string, previous: Array<string>) => {
        if (!/^wss?:\/\/\S+$/.test(value)) throw new InvalidArgumentError(`expected a ws:// or wss:// URL, got "${value.slice(0, 64)}"`)
        return [...previous, value]
      },
      [] as Array<string>
    )
    .addOption(new Option("--log-level <level>", "log level").choices(["debug", "info", "warn", "error"]).default("info"))
    .action(async (options) => {
      if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) throw new CliError("--tls-cert and --tls-key go together", 2, "invalid_tls")
      if ((options.adminTlsCert === undefined) !== (options.adminTlsKey === undefined)) throw new CliError("--admin-tls-cert and --admin-tls-key go together", 2, "invalid_tls")
      const gateway = await startGateway({
        ...storeOf(options),
        listen: options.listen,
        adminListen: options.adminListen,
        heartbeatIntervalMs: options.heartbeatInterval,
        silenceThresholdMs: options.silenceThreshold,
        helloTimeoutMs: options.helloTimeout,
        livenessSyncMs: options.livenessSync,
        leaseRetryMs: options.leaseRetry,
        vipProbeIntervalMs: options.vipProbeInterval,
        vipProbeReporters: options.vipProbeReporters,
        apiKeyCacheMs: options.apiKeyCache,
        memoryReclaim: options.memoryReclaim,
        logLevel: options.logLevel as LogLevel,
        ...(options.gatewayId === undefined ? {} : { gatewayId: options.gatewayId }),
        ...(options.peerGateway.length === 0 ? {} : { peerGateways: options.peerGateway }),
        ...(options.tlsCert === undefined ? {} : { tls: { certFile: options.tlsCert, keyFile: options.tlsKey } }),
        ...(options.adminTlsCert === undefined ? {} : { adminTls: { certFile: options.adminTlsCert, keyFile: options.adminTlsKey } })
      })
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop)
          process.off("SIGTERM", stop)
          void gateway.close().then(resolve)
        }
        process.on("SIGINT", stop)
        process.on("SIGTERM", stop)
      })
    })

  const withLocalFleet = async <A>(store: { db: string; postgres?: string; createDb?: boolean }, f: (fleet: Awaited<ReturnType<typeof createFleet>>) => Promise<A>) => {
    const where = storeOf(store)
    // A typo in --db (or a command run from another directory) must not quietly start a second, empty fleet.
    if ("database" in where && where.database !== ":memory:" && !existsSync(where.database) && store.createDb !== true) {
      throw new CliError(
        `no database at ${resolvePath(where.database)}: point --db at the gateway's database file${where.database === DEFAULT_DB ? " (the default is fleet.db in the current directory)" : ""}, or pass --create-db to start a new one there`,
        2,
        "database_not_found"
      )
    }
    const fleet = await createFleet({ ...where, runSensor: false })
    try {
      return await f(fleet)
    } finally {
      await fleet.close()
    }
  }
  const rows = (items: ReadonlyArray<Record<string, unknown>>, kind: string, columns: ReadonlyArray<string>, name: (row: any) => string) =>
    session.format() === "name" ? items.map((row) => `${kind}/${name(row)}\n`).join("") : table(items, columns)

  const account = program.command("account").description("accounts (on the database file directly)")
  databaseOptions(
    account
      .command("create")
      .description("create an account")
      .requiredOption("--name <name>", "account name")
      .option("--create-db", "create the database file if it does not exist (the first command on a new gateway box)")
  ).action(async (options) => {
    const created = await withLocalFleet(options, (fleet) => fleet.createAccount({ name: options.name }))
    print(created, (a) => fields(a))
  })
  databaseOptions(account.command("list").alias("ls").description("list the accounts")).action(async (options) => {
    const accounts = await withLocalFleet(options, (fleet) => fleet.listAccounts())
    print({ accounts }, (r) => rows(r.accounts, "account", ["id", "name", "created_at"], (a) => a.name))
  })

  const apikey = program.command("apikey").description("admin API keys (on the database file directly)")
  databaseOptions(
    apikey
      .command("create")
      .description("create an API key for an account; the key is printed once")
      .requiredOption("--account <id>", "account id")
      .option("--name <name>", "what the key is for", "cli")
      .addOption(
        new Option("--role <role>", "read: lists, gets, events; operate: also non-destructive changes; admin: also destructive actions, kubeconfigs, terminals")
          .choices(["read", "operate", "admin"])
          .makeOptionMandatory()
      )
  ).action(async (options) => {
    const key = await withLocalFleet(options, (fleet) => fleet.createApiKey({ account_id: options.account, name: options.name, role: options.role }))
    print(key, (k) => `${fields(k)}Store the key now: it is not shown again.\n`)
  })
  databaseOptions(apikey.command("list").alias("ls").description("an account's API keys (never the keys themselves)").requiredOption("--account <id>", "account id")).action(
    async (options) => {
      const keys = await withLocalFleet(options, (fleet) => fleet.listApiKeys({ account_id: options.account }))
      print({ api_keys: keys }, (r) => rows(r.api_keys, "apikey", ["id", "name", "role", "created_at", "revoked_at"], (k) => k.id))
    }
  )
  databaseOptions(
    apikey
      .command("revoke")
      .description("revoke an API key; requests with it are refused from then on")
      .requiredOption("--account <id>", "account id")
      .requiredOption("--id <key_id>", "the key's id (key_…), as printed when it was created")
  ).action(async (options) => {
    await withLocalFleet(options, (fleet) => fleet.revokeApiKey({ account_id: options.account, api_key_id: options.id }))
    print({ revoked: options.id }, fields)
  })
}
