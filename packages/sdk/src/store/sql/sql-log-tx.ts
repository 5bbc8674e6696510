/** The SQL store's event log, desired configs and their acks, pending network renders, confirmations and skill runs. */
import { Effect } from "effect"
import type { DesiredConfigRecord } from "../records"
import type { StoreTx } from "../store"
import type { SqlDriver } from "./sql-driver"
import { changedConfigVersions, confirmations, desiredConfigs, events, json, parse, skillRuns } from "./sql-rows"
import type { AccountId, NetworkId } from "../../model/ids"

export const logTx = (db: SqlDriver) => {
  const { one, all, run, write } = db
  return {
    appendEvent: (accountId, type, at, data) =>
      Effect.map(one("INSERT INTO events (account_id, type, at, data) VALUES (?, ?, ?, ?) RETURNING seq", [accountId, type, at, json(data)]), (row) => ({
        seq: Number(row!.seq),
        type,
        at,
        data
      })),
    listEvents: (accountId, since, limit) =>
      Effect.flatMap(all("SELECT * FROM events WHERE account_id = ? AND seq > ? ORDER BY seq LIMIT ?", [accountId, since, limit]), events.all),
    listLatestEvents: (accountId, limit) =>
      Effect.flatMap(all("SELECT * FROM (SELECT * FROM events WHERE account_id = ? ORDER BY seq DESC LIMIT ?) AS latest ORDER BY seq", [accountId, limit]), events.all),

    putDesiredConfig: (instanceId, kind, key, payload, at) =>
      Effect.gen(function* () {
        const text = json(payload)
        // One statement when the payload is new or changed (the usual case: a round trip each on
        // PostgreSQL); the record is read apart only when nothing changed.
        const stored = yield* one(
          `INSERT INTO desired_configs (instance_id, kind, config_key, version, payload, updated_at, acked_version, ack_error)
           VALUES (?, ?, ?, 1, ?, ?, NULL, NULL)
           ON CONFLICT (instance_id, kind, config_key) DO UPDATE SET version = desired_configs.version + 1, payload = excluded.payload,
             updated_at = excluded.updated_at, ack_error = NULL
           WHERE desired_configs.payload <> excluded.payload
           RETURNING *`,
          [instanceId, kind, key, text, at]
        )
        if (stored !== undefined) return { record: (yield* desiredConfigs.one(stored))!, changed: true }
        const existing = yield* one("SELECT * FROM desired_configs WHERE instance_id = ? AND kind = ? AND config_key = ?", [instanceId, kind, key])
        return { record: (yield* desiredConfigs.one(existing!))!, changed: false }
      }),
    markNetworkSyncPending: (accountId, networkId, at) =>
      write("INSERT INTO pending_network_syncs (network_id, account_id, requested_at) VALUES (?, ?, ?) ON CONFLICT (network_id) DO NOTHING", [
          networkId,
          accountId,
          at
        ]),
    listPendingNetworkSyncs: () =>
      Effect.map(all("SELECT account_id, network_id FROM pending_network_syncs ORDER BY requested_at, network_id"), (rows) =>
        rows.map((row) => ({ account_id: String(row.account_id) as AccountId, network_id: String(row.network_id) as NetworkId }))
      ),
    takePendingNetworkSync: (networkId) => Effect.map(run("DELETE FROM pending_network_syncs WHERE network_id = ?", [networkId]), (changed) => changed === 1),
    putDesiredConfigForNetworkPeers: (accountId, networkId, kind, key, payload, at) => {
      const text = json(payload)
      return Effect.gen(function* () {
        // Every changed row holds the same payload: only what differs is read back, and the
        // records share one copy of the payload (as stored: parsed from the text written).
        const changed = yield* changedConfigVersions.all(
          yield* all(
            `INSERT INTO desired_configs (instance_id, kind, config_key, version, payload, updated_at, acked_version, ack_error)
             SELECT p.instance_id, ?, ?, 1, ?, ?, CAST(NULL AS INTEGER), CAST(NULL AS TEXT) FROM peers p WHERE p.account_id = ? AND p.network_id = ?
             ON CONFLICT (instance_id, kind, config_key) DO UPDATE SET version = desired_configs.version + 1, payload = excluded.payload,
               updated_at = excluded.updated_at, ack_error = NULL
             WHERE desired_configs.payload <> excluded.payload
             RETURNING instance_id, version, acked_version`,
            [kind, key, text, at, accountId, networkId]
          )
        )
        if (changed.length === 0) return []
        const stored = parse(text)
        return changed.map((row): DesiredConfigRecord => ({ instance_id: row.instance_id, kind, key, version: row.version, payload: stored, updated_at: at, acked_version: row.acked_version, ack_error: null }))
      })
    },
    listDesiredConfigs: (instanceId, newerThan) =>
      Effect.gen(function* () {
        if (newerThan === undefined) return yield* desiredConfigs.all(yield* all("SELECT * FROM desired_configs WHERE instance_id = ? ORDER BY kind, config_key", [instanceId]))
        // Versions first: a large payload (a WireGuard peer list) is read only when it is to be sent.
        const known = new Map<string, number>()
        for (const c of newerThan) known.set(`${c.kind}\u0000${c.key}`, Math.max(c.version, known.get(`${c.kind}\u0000${c.key}`) ?? 0))
        const versions = yield* all("SELECT kind, config_key, version FROM desired_configs WHERE instance_id = ? ORDER BY kind, config_key", [instanceId])
        const newer = versions.filter((row) => Number(row.version) > (known.get(`${row.kind}\u0000${row.config_key}`) ?? 0))
        // Read together: on PostgreSQL one round trip for all of them.
        const rows = yield* Effect.forEach(newer, (row) => one("SELECT * FROM desired_configs WHERE instance_id = ? AND kind = ? AND config_key = ?", [instanceId, row.kind, row.config_key]), {
          concurrency: "unbounded"
        })
        const records: Array<DesiredConfigRecord> = []
        for (const full of rows) if (full !== undefined) records.push((yield* desiredConfigs.one(full))!)
        return records
      }),
    recordConfigAck: (instanceId, kind, key, version, error) =>
      Effect.map(
        error === null
          ? run(
              `UPDATE desired_configs SET acked_version = ?, ack_error = NULL
               WHERE instance_id = ? AND kind = ? AND config_key = ? AND version >= ? AND (acked_version IS NULL OR acked_version < ?)`,
              [version, instanceId, kind, key, version, version]
            )
          : run("UPDATE desired_configs SET ack_error = ? WHERE instance_id = ? AND kind = ? AND config_key = ? AND version = ?", [error, instanceId, kind, key, version]),
        (changed) => changed === 1
      ),

    redactDesiredConfig: (instanceId, kind, key, version, payload) =>
      Effect.map(
        version === undefined
          ? run("UPDATE desired_configs SET payload = ? WHERE instance_id = ? AND kind = ? AND config_key = ?", [json(payload), instanceId, kind, key])
          : run("UPDATE desired_configs SET payload = ? WHERE instance_id = ? AND kind = ? AND config_key = ? AND version = ?", [json(payload), instanceId, kind, key, version]),
        (changed) => changed === 1
      ),

    insertConfirmation: (confirmation) =>
      write("INSERT INTO confirmations (token_hash, account_id, action, input_hash, expires_at) VALUES (?, ?, ?, ?, ?)", [
          confirmation.token_hash,
          confirmation.account_id,
          confirmation.action,
          confirmation.input_hash,
          confirmation.expires_at
        ]),
    takeConfirmation: (tokenHash) =>
      Effect.flatMap(one("DELETE FROM confirmations WHERE token_hash = ? RETURNING *", [tokenHash]), confirmations.one),

    putSkillRun: (skillRun) =>
      write(
          `INSERT INTO skill_runs (id, account_id, skill, status, inputs, state, created_at, updated_at)
           VALUES (@id, @account_id, @skill, @status, @inputs, @state, @created_at, @updated_at)
           ON CONFLICT (id) DO UPDATE SET status = excluded.status, state = excluded.state, updated_at = excluded.updated_at`,
          {
            id: skillRun.id,
            account_id: skillRun.account_id,
            skill: skillRun.skill,
            status: skillRun.status,
            inputs: json(skillRun.inputs),
            state: json(skillRun.state),
            created_at: skillRun.created_at,
            updated_at: skillRun.updated_at
          }
        ),
    listSkillRuns: (accountId, status) =>
      Effect.flatMap(
        status === undefined
          ? all("SELECT * FROM skill_runs WHERE account_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 500", [accountId])
          : all("SELECT * FROM skill_runs WHERE account_id = ? AND status = ? ORDER BY created_at DESC, rowid DESC LIMIT 500", [accountId, status]),
        skillRuns.all
      ),
    listSkillRunsByStatus: (status) =>
      Effect.flatMap(all("SELECT * FROM skill_runs WHERE status = ? ORDER BY created_at, rowid", [status]), skillRuns.all),
    getSkillRun: (accountId, id) => Effect.flatMap(one("SELECT * FROM skill_runs WHERE account_id = ? AND id = ?", [accountId, id]), skillRuns.one)
  } satisfies Partial<StoreTx>
}
