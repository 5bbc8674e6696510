/**
 * The embedded store: SQLite through better-sqlite3, one file, zero setup.
 *
 * Settings, chosen for crash safety: WAL journal (readers never block the writer, a crash
 * mid-write leaves the last committed state), `synchronous = NORMAL` by default (a killed
 * process loses nothing it committed; a power cut may lose the last few commits but never
 * corrupts the file; pass `synchronous: "FULL"` to fsync every commit), foreign keys on.
 * better-sqlite3 is synchronous, so a transaction holds the one connection; a semaphore
 * makes sure no other fiber's statements land inside it.
 */
import Database from "better-sqlite3"
import { Effect, Exit, Layer, Semaphore } from "effect"
import type { ConfigKind } from "@fleetplane/agent-protocol"
import type { FleetEvent } from "../../model/entities"
import { storeError, type StoreError } from "../../model/errors"
import type { ClusterId } from "../../model/ids"
import type {
  ApprovalRecord,
  ClusterRecord,
  DesiredConfigRecord,
  KubernetesNodeRecord,
  NetworkRecord,
  PeerRecord,
  SkillRunRecord,
  TemplateRecord,
  VipRecord
} from "../records"
import { Store, type PrefixRange, type StoreTx } from "../store"
import { migrations } from "./migrations"

export interface SqliteStoreOptions {
  /** A file path, or `":memory:"` for tests. */
  readonly filename: string
  readonly synchronous?: "NORMAL" | "FULL"
}

type Row = Record<string, unknown>

const json = (value: unknown) => JSON.stringify(value)
const parse = <A>(text: unknown): A => JSON.parse(String(text)) as A

const toStoreError = (cause: unknown): StoreError =>
  storeError(
    "store_failed",
    `the database failed: ${cause instanceof Error ? cause.message : String(cause)}; nothing was changed. Check disk space and file permissions, then retry`,
    {}
  )

const templateFrom = (row: Row, modules: ReadonlyArray<Row>): TemplateRecord =>
  ({
    id: row.id,
    account_id: row.account_id,
    name: row.name,
    created_at: row.created_at,
    modules: modules.map((m) => ({
      module_name: m.module_name,
      module_version_id: m.module_version_id ?? null,
      config: parse(m.config)
    }))
  }) as TemplateRecord

const networkFrom = (row: Row): NetworkRecord =>
  ({
    id: row.id,
    account_id: row.account_id,
    name: row.name,
    handle: row.handle,
    interface_name: `wg-sdwan-${String(row.handle)}`,
    overlay_prefix: row.overlay_prefix,
    pod_subnet_prefix: row.pod_subnet_prefix ?? null,
    listen_port: row.listen_port,
    created_at: row.created_at,
    ula_global_id: row.ula_global_id ?? null,
    subnet_index: row.subnet_index ?? null
  }) as NetworkRecord

const clusterFrom = ({ activation_seq: _, ...row }: Row): ClusterRecord =>
  ({
    ...row,
    flavor: "k3s",
    version: row.version ?? null,
    cluster_cidr: row.cluster_cidr ?? null,
    activated_at: row.activated_at ?? null,
    warnings: parse(row.warnings)
  }) as ClusterRecord

const vipFrom = (row: Row): VipRecord =>
  ({
    ...row,
    holder_peer_id: row.holder_peer_id ?? null,
    silent_epoch: row.silent_epoch ?? null,
    failover_holder_peer_ids: parse(row.failover_holder_peer_ids)
  }) as VipRecord

const approvalFrom = (row: Row): ApprovalRecord =>
  ({
    ...row,
    decided_at: row.decided_at ?? null,
    reason: row.reason ?? null,
    resolution: row.resolution == null ? null : parse(row.resolution)
  }) as ApprovalRecord

const eventFrom = (row: Row): FleetEvent => ({ seq: Number(row.seq), type: String(row.type), at: String(row.at), data: parse(row.data) })

const desiredFrom = (row: Row): DesiredConfigRecord =>
  ({
    instance_id: row.instance_id,
    kind: row.kind,
    key: row.config_key,
    version: row.version,
    payload: parse(row.payload),
    updated_at: row.updated_at,
    acked_version: row.acked_version ?? null,
    ack_error: row.ack_error ?? null
  }) as DesiredConfigRecord

const setClause = (changes: Record<string, unknown>, jsonColumns: ReadonlyArray<string> = []) => {
  const entries = Object.entries(changes).filter(([, value]) => value !== undefined)
  return {
    sql: entries.map(([column]) => `${column} = @${column}`).join(", "),
    values: Object.fromEntries(entries.map(([column, value]) => [column, jsonColumns.includes(column) ? json(value) : value])),
    empty: entries.length === 0
  }
}

/** Applies pending migrations; safe to run on every open. */
const migrate = (db: Database.Database) => {
  db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
  const applied = new Set(db.prepare("SELECT version FROM schema_migrations").pluck().all() as Array<number>)
  for (const migration of migrations) {
    if (applied.has(migration.version)) continue
    db.transaction(() => {
      db.exec(migration.sql)
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(
        migration.version,
        migration.name,
        new Date().toISOString()
      )
    })()
  }
}

const makeTx = (db: Database.Database): StoreTx => {
  // Statements are compiled once per text and reused.
  const cache = new Map<string, Database.Statement>()
  const stmt = (sql: string) => {
    let prepared = cache.get(sql)
    if (prepared === undefined) {
      prepared = db.prepare(sql)
      cache.set(sql, prepared)
    }
    return prepared
  }
  const op = <A>(f: () => A): Effect.Effect<A, StoreError> => Effect.try({ try: f, catch: toStoreError })
  const one = (sql: string, ...params: Array<unknown>) => stmt(sql).get(...params) as Row | undefined
  const all = (sql: string, ...params: Array<unknown>) => stmt(sql).all(...params) as Array<Row>
  const run = (sql: string, ...params: Array<unknown>) => stmt(sql).run(...params)

  const loadTemplate = (row: Row | undefined) =>
    row === undefined ? undefined : templateFrom(row, all("SELECT * FROM module_assignments WHERE template_id = ? ORDER BY module_name", row.id))

  return {
    insertAccount: (account) =>
      op(() => {
        run("INSERT INTO accounts (id, name, ula_global_id, created_at) VALUES (?, ?, ?, ?)", account.id, account.name, account.ula_global_id, account.created_at)
      }),
    getAccount: (id) => op(() => one("SELECT * FROM accounts WHERE id = ?", id) as never),
    setAccountUlaGlobalId: (id, ulaGlobalId) =>
      op(() => {
        run("UPDATE accounts SET ula_global_id = ? WHERE id = ?", ulaGlobalId, id)
      }),

    insertTemplate: (template) =>
      op(() => {
        run("INSERT INTO templates (id, account_id, name, created_at) VALUES (?, ?, ?, ?)", template.id, template.account_id, template.name, template.created_at)
      }),
    getTemplate: (accountId, id) => op(() => loadTemplate(one("SELECT * FROM templates WHERE account_id = ? AND id = ?", accountId, id))),
    findTemplateByName: (accountId, name) =>
      op(() => loadTemplate(one("SELECT * FROM templates WHERE account_id = ? AND name = ?", accountId, name))),
    putModuleAssignment: (templateId, assignment) =>
      op(() => {
        run(
          `INSERT INTO module_assignments (template_id, module_name, module_version_id, config) VALUES (?, ?, ?, ?)
           ON CONFLICT (template_id, module_name) DO UPDATE SET module_version_id = excluded.module_version_id, config = excluded.config`,
          templateId,
          assignment.module_name,
          assignment.module_version_id,
          json(assignment.config)
        )
      }),

    insertNode: (node) =>
      op(() => {
        run(
          "INSERT INTO nodes (id, account_id, hostname, node_template_id, created_at) VALUES (?, ?, ?, ?, ?)",
          node.id,
          node.account_id,
          node.hostname,
          node.node_template_id,
          node.created_at
        )
      }),
    getNode: (accountId, id) => op(() => one("SELECT * FROM nodes WHERE account_id = ? AND id = ?", accountId, id) as never),
    listNodes: (accountId) => op(() => all("SELECT * FROM nodes WHERE account_id = ? ORDER BY created_at, rowid", accountId) as never),
    findNodeByHostname: (accountId, hostname) =>
      op(() => one("SELECT * FROM nodes WHERE account_id = ? AND hostname = ?", accountId, hostname) as never),
    insertInstance: (instance) =>
      op(() => {
        run(
          "INSERT INTO instances (id, account_id, node_id, status, credential_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
          instance.id,
          instance.account_id,
          instance.node_id,
          instance.status,
          instance.credential_hash,
          instance.created_at
        )
      }),
    getInstance: (accountId, id) => op(() => one("SELECT * FROM instances WHERE account_id = ? AND id = ?", accountId, id) as never),
    getInstanceForAuthentication: (id) => op(() => one("SELECT * FROM instances WHERE id = ?", id) as never),
    setInstanceStatus: (accountId, id, status) =>
      op(() => {
        run("UPDATE instances SET status = ? WHERE account_id = ? AND id = ?", status, accountId, id)
      }),
    listInstancesOfTemplate: (accountId, templateId) =>
      op(
        () =>
          all(
            `SELECT i.* FROM instances i JOIN nodes n ON n.id = i.node_id
             WHERE i.account_id = ? AND n.node_template_id = ? AND i.status = 'running' ORDER BY i.created_at, i.rowid`,
            accountId,
            templateId
          ) as never
      ),

    insertNetwork: (network, podRange) =>
      op(() => {
        run(
          `INSERT INTO networks (id, account_id, name, handle, overlay_prefix, ula_global_id, subnet_index, pod_subnet_prefix,
             pod_family, pod_start_key, pod_end_key, listen_port, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          network.id,
          network.account_id,
          network.name,
          network.handle,
          network.overlay_prefix,
          network.ula_global_id,
          network.subnet_index,
          network.pod_subnet_prefix,
          podRange?.family ?? null,
          podRange?.startKey ?? null,
          podRange?.endKey ?? null,
          network.listen_port,
          network.created_at
        )
      }),
    getNetwork: (accountId, id) => op(() => mapOptional(one("SELECT * FROM networks WHERE account_id = ? AND id = ?", accountId, id), networkFrom)),
    findNetworkByHandle: (accountId, handle) =>
      op(() => mapOptional(one("SELECT * FROM networks WHERE account_id = ? AND handle = ?", accountId, handle), networkFrom)),
    findNetworkByName: (accountId, name) =>
      op(() => mapOptional(one("SELECT * FROM networks WHERE account_id = ? AND name = ?", accountId, name), networkFrom)),
    listNetworks: (accountId) => op(() => all("SELECT * FROM networks WHERE account_id = ? ORDER BY created_at, rowid", accountId).map(networkFrom)),
    podPrefixNeighbours: (accountId, range) =>
      op(() =>
        // One statement, two index probes: the nearest pod prefix starting at or before the
        // range, and the first one starting after it (R6).
        all(
          `SELECT * FROM (SELECT * FROM networks WHERE account_id = ? AND pod_family = ? AND pod_start_key IS NOT NULL AND pod_start_key <= ?
             ORDER BY pod_start_key DESC LIMIT 1)
           UNION ALL
           SELECT * FROM (SELECT * FROM networks WHERE account_id = ? AND pod_family = ? AND pod_start_key IS NOT NULL AND pod_start_key > ?
             ORDER BY pod_start_key ASC LIMIT 1)`,
          accountId,
          range.family,
          range.startKey,
          accountId,
          range.family,
          range.startKey
        ).map((row) => ({
          ...networkFrom(row),
          family: Number(row.pod_family) as PrefixRange["family"],
          startKey: String(row.pod_start_key),
          endKey: String(row.pod_end_key)
        }))
      ),
    maxSubnetIndex: (accountId, ulaGlobalId) =>
      op(() => {
        const row = one("SELECT MAX(subnet_index) AS max FROM networks WHERE account_id = ? AND ula_global_id = ?", accountId, ulaGlobalId)
        return row?.max == null ? undefined : Number(row.max)
      }),
    overlayPrefixInUse: (accountId, overlayPrefix) =>
      op(() => one("SELECT 1 AS found FROM networks WHERE account_id = ? AND overlay_prefix = ?", accountId, overlayPrefix) !== undefined),

    leaseNextHostIndex: (networkId, ownerId) =>
      op(() => {
        const row = one("SELECT COALESCE(MAX(host_index), 0) + 1 AS next FROM overlay_leases WHERE network_id = ?", networkId)
        const next = Number(row?.next ?? 1)
        run("INSERT INTO overlay_leases (network_id, host_index, owner_id) VALUES (?, ?, ?)", networkId, next, ownerId)
        return BigInt(next)
      }),
    releaseLease: (networkId, ownerId) =>
      op(() => {
        run("DELETE FROM overlay_leases WHERE network_id = ? AND owner_id = ?", networkId, ownerId)
      }),

    insertPeer: (peer) =>
      op(() => {
        run(
          `INSERT INTO peers (id, account_id, network_id, instance_id, public_key, overlay_address, endpoint, pod_subnet, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          peer.id,
          peer.account_id,
          peer.network_id,
          peer.instance_id,
          peer.public_key,
          peer.overlay_address,
          peer.endpoint,
          peer.pod_subnet,
          peer.created_at
        )
      }),
    getPeer: (accountId, id) => op(() => one("SELECT * FROM peers WHERE account_id = ? AND id = ?", accountId, id) as PeerRecord | undefined),
    findPeer: (accountId, networkId, instanceId) =>
      op(() => one("SELECT * FROM peers WHERE account_id = ? AND network_id = ? AND instance_id = ?", accountId, networkId, instanceId) as PeerRecord | undefined),
    listPeersOfNetwork: (accountId, networkId) =>
      op(
        () =>
          all(
            `SELECT p.*, n.hostname FROM peers p JOIN instances i ON i.id = p.instance_id JOIN nodes n ON n.id = i.node_id
             WHERE p.account_id = ? AND p.network_id = ? ORDER BY p.created_at, p.rowid`,
            accountId,
            networkId
          ) as unknown as Array<PeerRecord & { hostname: string }>
      ),
    listPeersOfInstance: (accountId, instanceId) =>
      op(() => all("SELECT * FROM peers WHERE account_id = ? AND instance_id = ? ORDER BY created_at, rowid", accountId, instanceId) as unknown as Array<PeerRecord>),
    updatePeer: (accountId, id, changes) =>
      op(() => {
        const set = setClause(changes)
        if (!set.empty) stmt(`UPDATE peers SET ${set.sql} WHERE account_id = @account_id AND id = @id`).run({ ...set.values, account_id: accountId, id })
      }),

    insertCluster: (cluster) =>
      op(() => {
        stmt(
          `INSERT INTO clusters (id, account_id, name, status, api_endpoint, version, network_id, cni_plugin, cluster_cidr, service_cidr,
             warnings, bootstrap_instance_id, ca_cert_pem, ca_key_pem, token_secret, token_version, admin_cert_pem, admin_key_pem, created_at, activated_at)
           VALUES (@id, @account_id, @name, @status, @api_endpoint, @version, @network_id, @cni_plugin, @cluster_cidr, @service_cidr,
             @warnings, @bootstrap_instance_id, @ca_cert_pem, @ca_key_pem, @token_secret, @token_version, @admin_cert_pem, @admin_key_pem, @created_at, @activated_at)`
        ).run({
          id: cluster.id,
          account_id: cluster.account_id,
          name: cluster.name,
          status: cluster.status,
          api_endpoint: cluster.api_endpoint,
          version: cluster.version,
          network_id: cluster.network_id,
          cni_plugin: cluster.cni_plugin,
          cluster_cidr: cluster.cluster_cidr,
          service_cidr: cluster.service_cidr,
          warnings: json(cluster.warnings),
          bootstrap_instance_id: cluster.bootstrap_instance_id,
          ca_cert_pem: cluster.ca_cert_pem,
          ca_key_pem: cluster.ca_key_pem,
          token_secret: cluster.token_secret,
          token_version: cluster.token_version,
          admin_cert_pem: cluster.admin_cert_pem,
          admin_key_pem: cluster.admin_key_pem,
          created_at: cluster.created_at,
          activated_at: cluster.activated_at
        })
      }),
    getCluster: (accountId, id) => op(() => mapOptional(one("SELECT * FROM clusters WHERE account_id = ? AND id = ?", accountId, id), clusterFrom)),
    clusterExistsInAnotherAccount: (accountId, id) =>
      op(() => one("SELECT 1 AS found FROM clusters WHERE id = ? AND account_id <> ?", id, accountId) !== undefined),
    listClusters: (accountId, includeDecommissioned) =>
      op(() =>
        all(
          `SELECT * FROM clusters WHERE account_id = ? ${includeDecommissioned ? "" : "AND status <> 'decommissioned'"} ORDER BY created_at, rowid`,
          accountId
        ).map(clusterFrom)
      ),
    findClusterBootstrappedBy: (accountId, instanceId) =>
      op(() =>
        mapOptional(
          one("SELECT * FROM clusters WHERE account_id = ? AND bootstrap_instance_id = ? AND status <> 'decommissioned'", accountId, instanceId),
          clusterFrom
        )
      ),
    latestActiveCluster: (accountId) =>
      op(() =>
        mapOptional(
          one("SELECT * FROM clusters WHERE account_id = ? AND status = 'active' ORDER BY activation_seq DESC LIMIT 1", accountId),
          clusterFrom
        )
      ),
    updateCluster: (accountId, id, changes) =>
      op(() => {
        const set = setClause(changes, ["warnings"])
        if (set.empty) return
        stmt(`UPDATE clusters SET ${set.sql} WHERE account_id = @account_id AND id = @id`).run({ ...set.values, account_id: accountId, id })
        if (changes.status === "active") {
          run(
            "UPDATE clusters SET activation_seq = (SELECT COALESCE(MAX(activation_seq), 0) + 1 FROM clusters WHERE account_id = ?) WHERE account_id = ? AND id = ?",
            accountId,
            accountId,
            id
          )
        }
      }),
    listServiceCidrs: (accountId) =>
      op(
        () =>
          all("SELECT id AS cluster_id, service_cidr FROM clusters WHERE account_id = ? AND status <> 'decommissioned'", accountId) as unknown as Array<{
            cluster_id: ClusterId
            service_cidr: string
          }>
      ),

    insertKubernetesNode: (node) =>
      op(() => {
        run(
          "INSERT INTO kubernetes_nodes (id, account_id, cluster_id, instance_id, role, status, joined_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
          node.id,
          node.account_id,
          node.cluster_id,
          node.instance_id,
          node.role,
          node.status,
          node.joined_at
        )
      }),
    findKubernetesNodeOfInstance: (accountId, instanceId) =>
      op(() => one("SELECT * FROM kubernetes_nodes WHERE account_id = ? AND instance_id = ?", accountId, instanceId) as KubernetesNodeRecord | undefined),
    listKubernetesNodes: (accountId, clusterId) =>
      op(
        () =>
          all("SELECT * FROM kubernetes_nodes WHERE account_id = ? AND cluster_id = ? ORDER BY joined_at, rowid", accountId, clusterId) as unknown as Array<KubernetesNodeRecord>
      ),
    setKubernetesNodeStatus: (accountId, instanceId, status) =>
      op(() => {
        run("UPDATE kubernetes_nodes SET status = ? WHERE account_id = ? AND instance_id = ?", status, accountId, instanceId)
      }),
    deleteKubernetesNodesOfCluster: (accountId, clusterId) =>
      op(() => run("DELETE FROM kubernetes_nodes WHERE account_id = ? AND cluster_id = ?", accountId, clusterId).changes),
    deleteKubernetesNodeOfInstance: (accountId, instanceId) =>
      op(() => {
        run("DELETE FROM kubernetes_nodes WHERE account_id = ? AND instance_id = ?", accountId, instanceId)
      }),

    insertVip: (vip) =>
      op(() => {
        run(
          `INSERT INTO vips (id, account_id, network_id, cluster_id, address, holder_peer_id, failover_holder_peer_ids, epoch, policy, silent_epoch)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          vip.id,
          vip.account_id,
          vip.network_id,
          vip.cluster_id,
          vip.address,
          vip.holder_peer_id,
          json(vip.failover_holder_peer_ids),
          vip.epoch,
          vip.policy,
          vip.silent_epoch
        )
      }),
    getVip: (accountId, id) => op(() => mapOptional(one("SELECT * FROM vips WHERE account_id = ? AND id = ?", accountId, id), vipFrom)),
    findVipOfCluster: (accountId, clusterId) =>
      op(() => mapOptional(one("SELECT * FROM vips WHERE account_id = ? AND cluster_id = ?", accountId, clusterId), vipFrom)),
    listVipsOfNetwork: (accountId, networkId) =>
      op(() => all("SELECT * FROM vips WHERE account_id = ? AND network_id = ?", accountId, networkId).map(vipFrom)),
    listHeldVips: () => op(() => all("SELECT * FROM vips WHERE holder_peer_id IS NOT NULL").map(vipFrom)),
    updateVipIfEpoch: (accountId, id, expectedEpoch, changes) =>
      op(() => {
        const set = setClause(changes, ["failover_holder_peer_ids"])
        if (set.empty) return true
        return (
          stmt(`UPDATE vips SET ${set.sql} WHERE account_id = @account_id AND id = @id AND epoch = @expected_epoch`).run({
            ...set.values,
            account_id: accountId,
            id,
            expected_epoch: expectedEpoch
          }).changes === 1
        )
      }),
    deleteVip: (accountId, id) =>
      op(() => {
        run("DELETE FROM vips WHERE account_id = ? AND id = ?", accountId, id)
      }),

    insertApproval: (approval) =>
      op(() => {
        run(
          `INSERT INTO approvals (id, account_id, kind, status, virtual_ip_id, cluster_id, epoch, summary, created_at, decided_at, reason, resolution)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          approval.id,
          approval.account_id,
          approval.kind,
          approval.status,
          approval.virtual_ip_id,
          approval.cluster_id,
          approval.epoch,
          approval.summary,
          approval.created_at,
          approval.decided_at,
          approval.reason,
          approval.resolution === null ? null : json(approval.resolution)
        )
      }),
    getApproval: (accountId, id) => op(() => mapOptional(one("SELECT * FROM approvals WHERE account_id = ? AND id = ?", accountId, id), approvalFrom)),
    listApprovals: (accountId, status) =>
      op(() =>
        (status === undefined
          ? all("SELECT * FROM approvals WHERE account_id = ? ORDER BY created_at, rowid", accountId)
          : all("SELECT * FROM approvals WHERE account_id = ? AND status = ? ORDER BY created_at, rowid", accountId, status)
        ).map(approvalFrom)
      ),
    findPendingApproval: (accountId, vipId) =>
      op(() =>
        mapOptional(one("SELECT * FROM approvals WHERE account_id = ? AND virtual_ip_id = ? AND status = 'pending'", accountId, vipId), approvalFrom)
      ),
    decideApproval: (accountId, id, decision) =>
      op(
        () =>
          run(
            "UPDATE approvals SET status = ?, decided_at = ?, reason = ?, resolution = ? WHERE account_id = ? AND id = ? AND status = 'pending'",
            decision.status,
            decision.decided_at,
            decision.reason,
            decision.resolution === null ? null : json(decision.resolution),
            accountId,
            id
          ).changes === 1
      ),

    appendEvent: (accountId, type, at, data) =>
      op(() => {
        const result = run("INSERT INTO events (account_id, type, at, data) VALUES (?, ?, ?, ?)", accountId, type, at, json(data))
        return { seq: Number(result.lastInsertRowid), type, at, data }
      }),
    listEvents: (accountId, since, limit) =>
      op(() => all("SELECT * FROM events WHERE account_id = ? AND seq > ? ORDER BY seq LIMIT ?", accountId, since, limit).map(eventFrom)),

    putDesiredConfig: (instanceId, kind, key, payload, at) =>
      op(() => {
        const text = json(payload)
        const existing = one("SELECT * FROM desired_configs WHERE instance_id = ? AND kind = ? AND config_key = ?", instanceId, kind, key)
        if (existing !== undefined && existing.payload === text) return { record: desiredFrom(existing), changed: false }
        const version = existing === undefined ? 1 : Number(existing.version) + 1
        run(
          `INSERT INTO desired_configs (instance_id, kind, config_key, version, payload, updated_at, acked_version, ack_error)
           VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)
           ON CONFLICT (instance_id, kind, config_key) DO UPDATE SET version = excluded.version, payload = excluded.payload,
             updated_at = excluded.updated_at, ack_error = NULL`,
          instanceId,
          kind,
          key,
          version,
          text,
          at
        )
        return {
          record: desiredFrom(one("SELECT * FROM desired_configs WHERE instance_id = ? AND kind = ? AND config_key = ?", instanceId, kind, key)!),
          changed: true
        }
      }),
    listDesiredConfigs: (instanceId, newerThan) =>
      op(() => {
        if (newerThan === undefined) return all("SELECT * FROM desired_configs WHERE instance_id = ? ORDER BY kind, config_key", instanceId).map(desiredFrom)
        // Versions first: a large payload (a WireGuard peer list) is read only when it is to be sent.
        const known = new Map<string, number>()
        for (const c of newerThan) known.set(`${c.kind}\u0000${c.key}`, Math.max(c.version, known.get(`${c.kind}\u0000${c.key}`) ?? 0))
        return all("SELECT kind, config_key, version FROM desired_configs WHERE instance_id = ? ORDER BY kind, config_key", instanceId)
          .filter((row) => Number(row.version) > (known.get(`${row.kind}\u0000${row.config_key}`) ?? 0))
          .map((row) => desiredFrom(one("SELECT * FROM desired_configs WHERE instance_id = ? AND kind = ? AND config_key = ?", instanceId, row.kind, row.config_key)!))
      }),
    recordConfigAck: (instanceId, kind: ConfigKind, key, version, error) =>
      op(
        () =>
          (error === null
            ? run(
                `UPDATE desired_configs SET acked_version = ?, ack_error = NULL
                 WHERE instance_id = ? AND kind = ? AND config_key = ? AND version >= ? AND (acked_version IS NULL OR acked_version < ?)`,
                version,
                instanceId,
                kind,
                key,
                version,
                version
              )
            : run(
                "UPDATE desired_configs SET ack_error = ? WHERE instance_id = ? AND kind = ? AND config_key = ? AND version = ?",
                error,
                instanceId,
                kind,
                key,
                version
              )
          ).changes === 1
      ),

    insertConfirmation: (confirmation) =>
      op(() => {
        run(
          "INSERT INTO confirmations (token_hash, account_id, action, input_hash, expires_at) VALUES (?, ?, ?, ?, ?)",
          confirmation.token_hash,
          confirmation.account_id,
          confirmation.action,
          confirmation.input_hash,
          confirmation.expires_at
        )
      }),
    takeConfirmation: (tokenHash) =>
      op(() => {
        const row = one("SELECT * FROM confirmations WHERE token_hash = ?", tokenHash)
        if (row !== undefined) run("DELETE FROM confirmations WHERE token_hash = ?", tokenHash)
        return row as never
      }),

    insertApiKey: (key) =>
      op(() => {
        run(
          "INSERT INTO api_keys (id, account_id, name, key_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
          key.id,
          key.account_id,
          key.name,
          key.key_hash,
          key.created_at,
          key.revoked_at
        )
      }),
    findApiKeyByHash: (keyHash) => op(() => one("SELECT * FROM api_keys WHERE key_hash = ?", keyHash) as never),
    revokeApiKey: (accountId, id, at) =>
      op(() => run("UPDATE api_keys SET revoked_at = ? WHERE account_id = ? AND id = ? AND revoked_at IS NULL", at, accountId, id).changes === 1),

    putSkillRun: (skillRun) =>
      op(() => {
        stmt(
          `INSERT INTO skill_runs (id, account_id, skill, status, inputs, state, created_at, updated_at)
           VALUES (@id, @account_id, @skill, @status, @inputs, @state, @created_at, @updated_at)
           ON CONFLICT (id) DO UPDATE SET status = excluded.status, state = excluded.state, updated_at = excluded.updated_at`
        ).run({ ...skillRun, inputs: json(skillRun.inputs), state: json(skillRun.state) })
      }),
    listSkillRunsByStatus: (status) =>
      op(() =>
        all("SELECT * FROM skill_runs WHERE status = ? ORDER BY created_at, rowid", status).map(
          (row) => ({ ...row, inputs: parse(row.inputs), state: parse(row.state) }) as SkillRunRecord
        )
      ),
    getSkillRun: (accountId, id) =>
      op(() => {
        const row = one("SELECT * FROM skill_runs WHERE account_id = ? AND id = ?", accountId, id)
        return row === undefined ? undefined : ({ ...row, inputs: parse(row.inputs), state: parse(row.state) } as SkillRunRecord)
      })
  }
}

const mapOptional = <A>(row: Row | undefined, f: (row: Row) => A): A | undefined => (row === undefined ? undefined : f(row))

/** Opens (creating if needed) and migrates a SQLite store. */
export const openSqliteStore = (options: SqliteStoreOptions) =>
  Effect.gen(function* () {
    const db = yield* Effect.try({
      try: () => {
        const opened = new Database(options.filename)
        opened.pragma("journal_mode = WAL")
        opened.pragma(`synchronous = ${options.synchronous ?? "NORMAL"}`)
        opened.pragma("foreign_keys = ON")
        opened.pragma("busy_timeout = 5000")
        migrate(opened)
        return opened
      },
      catch: (cause) =>
        storeError(
          "store_open_failed",
          `could not open the database ${options.filename}: ${cause instanceof Error ? cause.message : String(cause)}; check the path and its permissions`,
          { filename: options.filename }
        )
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => db.close()))
    const tx = makeTx(db)
    const lock = Semaphore.makeUnsafe(1)

    const transaction = <A, E, R>(body: (tx: StoreTx) => Effect.Effect<A, E, R>): Effect.Effect<A, E | StoreError, R> =>
      lock.withPermits(1)(
        Effect.uninterruptibleMask((restore) =>
          Effect.gen(function* () {
            yield* Effect.try({ try: () => db.exec("BEGIN IMMEDIATE"), catch: toStoreError })
            const exit = yield* Effect.exit(restore(body(tx)))
            if (Exit.isSuccess(exit)) {
              const committed = yield* Effect.exit(Effect.try({ try: () => db.exec("COMMIT"), catch: toStoreError }))
              if (Exit.isFailure(committed)) {
                if (db.inTransaction) db.exec("ROLLBACK")
                return yield* Effect.failCause(committed.cause)
              }
            } else if (db.inTransaction) {
              db.exec("ROLLBACK")
            }
            return yield* exit
          })
        )
      )

    const integrityCheck = Effect.try({
      try: () => String(db.pragma("integrity_check", { simple: true })),
      catch: toStoreError
    })

    return Store.of({ transaction, integrityCheck })
  })

/** The SQLite store as a layer; the database closes when the layer's scope ends. */
export const sqliteStoreLayer = (options: SqliteStoreOptions) => Layer.effect(Store, openSqliteStore(options))

