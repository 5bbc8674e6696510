/**
 * The store contract in SQL, once, for every backend: each operation is statements run
 * through a `SqlDriver` (SQLite or PostgreSQL) and rows mapped to records. The SQL is the
 * common subset of both dialects (`ON CONFLICT ... DO UPDATE`, `RETURNING`, partial indexes);
 * insertion order is the `rowid` column, which SQLite has built in and the PostgreSQL schema
 * declares.
 */
import { Effect } from "effect"
import type { FleetEvent } from "../../model/entities"
import type { ClusterId, InstanceId } from "../../model/ids"
import { interfaceNameFor } from "../../network/network-rules"
import type {
  ApprovalRecord,
  ClusterRecord,
  DesiredConfigRecord,
  NetworkRecord,
  PeerRecord,
  SkillRunRecord,
  TemplateRecord,
  VipRecord
} from "../records"
import type { PrefixRange, StoreTx } from "../store"
import type { Row, SqlDriver } from "./sql-driver"

export const json = (value: unknown) => JSON.stringify(value)
const parse = <A>(text: unknown): A => JSON.parse(String(text)) as A

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
    interface_name: interfaceNameFor(String(row.handle)),
    overlay_prefix: row.overlay_prefix,
    overlay_ipv4_prefix: row.overlay_ipv4_prefix ?? null,
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
    holder_since: row.holder_since ?? null,
    incident: row.incident ?? null,
    probe_reporters: row.probe_reporters === null || row.probe_reporters === undefined ? [] : parse(row.probe_reporters),
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

const skillRunFrom = (row: Row) => ({ ...row, inputs: parse(row.inputs), state: parse(row.state) }) as SkillRunRecord

const optional =
  <A>(f: (row: Row) => A) =>
  (row: Row | undefined): A | undefined =>
    row === undefined ? undefined : f(row)
/** Rows whose columns are the record's fields as they are. */
const asIs = (rows: unknown) => rows as never

/** `column = @column, ...` for the defined entries of `changes`; JSON columns serialised. */
const setClause = (changes: Record<string, unknown>, jsonColumns: ReadonlyArray<string> = []) => {
  const entries = Object.entries(changes).filter(([, value]) => value !== undefined)
  return {
    sql: entries.map(([column]) => `${column} = @${column}`).join(", "),
    values: Object.fromEntries(entries.map(([column, value]) => [column, jsonColumns.includes(column) ? json(value) : value])),
    empty: entries.length === 0
  }
}

export const makeSqlStoreTx = (db: SqlDriver): StoreTx => {
  const { one, all, run } = db
  const done = Effect.asVoid

  const loadTemplate = (row: Row | undefined) =>
    row === undefined
      ? Effect.succeed(undefined)
      : Effect.map(all("SELECT * FROM module_assignments WHERE template_id = ? ORDER BY module_name", [row.id]), (modules) => templateFrom(row, modules))

  return {
    insertAccount: (account) =>
      done(run("INSERT INTO accounts (id, name, ula_global_id, created_at) VALUES (?, ?, ?, ?)", [account.id, account.name, account.ula_global_id, account.created_at])),
    getAccount: (id) => Effect.map(one("SELECT * FROM accounts WHERE id = ?", [id]), asIs),
    listAccounts: () => Effect.map(all("SELECT id, name, created_at FROM accounts ORDER BY name, id"), asIs),
    setAccountUlaGlobalId: (id, ulaGlobalId) => done(run("UPDATE accounts SET ula_global_id = ? WHERE id = ?", [ulaGlobalId, id])),

    insertTemplate: (template) =>
      done(run("INSERT INTO templates (id, account_id, name, created_at) VALUES (?, ?, ?, ?)", [template.id, template.account_id, template.name, template.created_at])),
    getTemplate: (accountId, id) => Effect.flatMap(one("SELECT * FROM templates WHERE account_id = ? AND id = ?", [accountId, id]), loadTemplate),
    findTemplateByName: (accountId, name) => Effect.flatMap(one("SELECT * FROM templates WHERE account_id = ? AND name = ?", [accountId, name]), loadTemplate),
    listTemplates: (accountId) =>
      Effect.gen(function* () {
        const rows = yield* all("SELECT * FROM templates WHERE account_id = ? ORDER BY name", [accountId])
        const modules = yield* all(
          "SELECT m.* FROM module_assignments m JOIN templates t ON t.id = m.template_id WHERE t.account_id = ? ORDER BY m.module_name",
          [accountId]
        )
        return rows.map((row) => templateFrom(row, modules.filter((m) => m.template_id === row.id)))
      }),
    deleteTemplate: (accountId, id) =>
      Effect.gen(function* () {
        yield* run("DELETE FROM module_assignments WHERE template_id = (SELECT id FROM templates WHERE account_id = ? AND id = ?)", [accountId, id])
        yield* run("DELETE FROM templates WHERE account_id = ? AND id = ?", [accountId, id])
      }),
    putModuleAssignment: (templateId, assignment) =>
      done(
        run(
          `INSERT INTO module_assignments (template_id, module_name, module_version_id, config) VALUES (?, ?, ?, ?)
           ON CONFLICT (template_id, module_name) DO UPDATE SET module_version_id = excluded.module_version_id, config = excluded.config`,
          [templateId, assignment.module_name, assignment.module_version_id, json(assignment.config)]
        )
      ),

    insertNode: (node) =>
      done(
        run("INSERT INTO nodes (id, account_id, hostname, node_template_id, created_at) VALUES (?, ?, ?, ?, ?)", [
          node.id,
          node.account_id,
          node.hostname,
          node.node_template_id,
          node.created_at
        ])
      ),
    getNode: (accountId, id) => Effect.map(one("SELECT * FROM nodes WHERE account_id = ? AND id = ?", [accountId, id]), asIs),
    listNodes: (accountId) => Effect.map(all("SELECT * FROM nodes WHERE account_id = ? ORDER BY created_at, rowid", [accountId]), asIs),
    findNodeByHostname: (accountId, hostname) => Effect.map(one("SELECT * FROM nodes WHERE account_id = ? AND hostname = ?", [accountId, hostname]), asIs),
    deleteNode: (accountId, id) => done(run("DELETE FROM nodes WHERE account_id = ? AND id = ?", [accountId, id])),
    listInstances: (accountId) => Effect.map(all("SELECT * FROM instances WHERE account_id = ? ORDER BY created_at, rowid", [accountId]), asIs),
    listInstancesOfNode: (accountId, nodeId) =>
      Effect.map(all("SELECT * FROM instances WHERE account_id = ? AND node_id = ? ORDER BY created_at, rowid", [accountId, nodeId]), asIs),
    insertInstance: (instance) =>
      done(
        run("INSERT INTO instances (id, account_id, node_id, status, credential_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)", [
          instance.id,
          instance.account_id,
          instance.node_id,
          instance.status,
          instance.credential_hash,
          instance.created_at
        ])
      ),
    getInstance: (accountId, id) => Effect.map(one("SELECT * FROM instances WHERE account_id = ? AND id = ?", [accountId, id]), asIs),
    getInstanceForAuthentication: (id) => Effect.map(one("SELECT * FROM instances WHERE id = ?", [id]), asIs),
    setInstanceStatus: (accountId, id, status) => done(run("UPDATE instances SET status = ? WHERE account_id = ? AND id = ?", [status, accountId, id])),
    rotateInstanceCredential: (accountId, id, credentialHash, previousValidUntil, at) =>
      done(
        run(
          `UPDATE instances SET
             previous_credential_hash = CASE WHEN previous_credential_hash IS NOT NULL AND previous_credential_valid_until > ? THEN previous_credential_hash ELSE credential_hash END,
             previous_credential_valid_until = ?, credential_hash = ?
           WHERE account_id = ? AND id = ?`,
          [at, previousValidUntil, credentialHash, accountId, id]
        )
      ),
    retirePreviousCredential: (id) =>
      done(run("UPDATE instances SET previous_credential_hash = NULL, previous_credential_valid_until = NULL WHERE id = ? AND previous_credential_hash IS NOT NULL", [id])),
    listInstancesOfTemplate: (accountId, templateId) =>
      Effect.map(
        all(
          `SELECT i.* FROM instances i JOIN nodes n ON n.id = i.node_id
           WHERE i.account_id = ? AND n.node_template_id = ? AND i.status = 'running' ORDER BY i.created_at, i.rowid`,
          [accountId, templateId]
        ),
        asIs
      ),

    findRunningInstanceOfNode: (accountId, nodeId) =>
      Effect.map(one("SELECT * FROM instances WHERE account_id = ? AND node_id = ? AND status = 'running' ORDER BY created_at DESC LIMIT 1", [accountId, nodeId]), asIs),

    insertNetwork: (network, podRange) =>
      done(
        run(
          `INSERT INTO networks (id, account_id, name, handle, overlay_prefix, overlay_ipv4_prefix, ula_global_id, subnet_index, pod_subnet_prefix,
             pod_family, pod_start_key, pod_end_key, listen_port, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            network.id,
            network.account_id,
            network.name,
            network.handle,
            network.overlay_prefix,
            network.overlay_ipv4_prefix,
            network.ula_global_id,
            network.subnet_index,
            network.pod_subnet_prefix,
            podRange?.family ?? null,
            podRange?.startKey ?? null,
            podRange?.endKey ?? null,
            network.listen_port,
            network.created_at
          ]
        )
      ),
    getNetwork: (accountId, id) => Effect.map(one("SELECT * FROM networks WHERE account_id = ? AND id = ?", [accountId, id]), optional(networkFrom)),
    findNetworkByHandle: (accountId, handle) =>
      Effect.map(one("SELECT * FROM networks WHERE account_id = ? AND handle = ?", [accountId, handle]), optional(networkFrom)),
    findNetworkByName: (accountId, name) => Effect.map(one("SELECT * FROM networks WHERE account_id = ? AND name = ?", [accountId, name]), optional(networkFrom)),
    listNetworks: (accountId) => Effect.map(all("SELECT * FROM networks WHERE account_id = ? ORDER BY created_at, rowid", [accountId]), (rows) => rows.map(networkFrom)),
    deleteNetwork: (accountId, id) =>
      Effect.gen(function* () {
        if ((yield* one("SELECT id FROM networks WHERE account_id = ? AND id = ?", [accountId, id])) === undefined) return
        yield* run("DELETE FROM pending_network_syncs WHERE network_id = ?", [id])
        yield* run("DELETE FROM overlay_leases WHERE network_id = ?", [id])
        yield* run("DELETE FROM networks WHERE account_id = ? AND id = ?", [accountId, id])
      }),
    podPrefixNeighbours: (accountId, range) =>
      // One statement, two index probes: the nearest pod prefix starting at or before the
      // range, and the first one starting after it (R6).
      Effect.map(
        all(
          `SELECT * FROM (SELECT * FROM networks WHERE account_id = ? AND pod_family = ? AND pod_start_key IS NOT NULL AND pod_start_key <= ?
             ORDER BY pod_start_key DESC LIMIT 1) AS before_range
           UNION ALL
           SELECT * FROM (SELECT * FROM networks WHERE account_id = ? AND pod_family = ? AND pod_start_key IS NOT NULL AND pod_start_key > ?
             ORDER BY pod_start_key ASC LIMIT 1) AS after_range`,
          [accountId, range.family, range.startKey, accountId, range.family, range.startKey]
        ),
        (rows) =>
          rows.map((row) => ({
            ...networkFrom(row),
            family: Number(row.pod_family) as PrefixRange["family"],
            startKey: String(row.pod_start_key),
            endKey: String(row.pod_end_key)
          }))
      ),
    maxSubnetIndex: (accountId, ulaGlobalId) =>
      Effect.map(one("SELECT MAX(subnet_index) AS max FROM networks WHERE account_id = ? AND ula_global_id = ?", [accountId, ulaGlobalId]), (row) =>
        row?.max == null ? undefined : Number(row.max)
      ),
    overlayPrefixInUse: (accountId, overlayPrefix) =>
      Effect.map(one("SELECT 1 AS found FROM networks WHERE account_id = ? AND overlay_prefix = ?", [accountId, overlayPrefix]), (row) => row !== undefined),
    listOverlayIpv4Prefixes: (accountId) =>
      Effect.map(
        all("SELECT id AS network_id, overlay_ipv4_prefix FROM networks WHERE account_id = ? AND overlay_ipv4_prefix IS NOT NULL", [accountId]),
        asIs
      ),
    listNetworksWithoutIpv4: () =>
      Effect.map(all("SELECT * FROM networks WHERE overlay_ipv4_prefix IS NULL ORDER BY account_id, created_at, rowid"), (rows) => rows.map(networkFrom)),
    setNetworkOverlayIpv4Prefix: (accountId, id, prefix) =>
      done(run("UPDATE networks SET overlay_ipv4_prefix = ? WHERE account_id = ? AND id = ?", [prefix, accountId, id])),

    leaseNextHostIndex: (networkId, ownerId) =>
      Effect.gen(function* () {
        const row = yield* one("SELECT COALESCE(MAX(host_index), 0) + 1 AS next FROM overlay_leases WHERE network_id = ?", [networkId])
        const next = Number(row?.next ?? 1)
        yield* run("INSERT INTO overlay_leases (network_id, host_index, owner_id) VALUES (?, ?, ?)", [networkId, next, ownerId])
        return BigInt(next)
      }),
    releaseLease: (networkId, ownerId) => done(run("DELETE FROM overlay_leases WHERE network_id = ? AND owner_id = ?", [networkId, ownerId])),
    hostIndexOf: (networkId, ownerId) =>
      Effect.map(one("SELECT host_index FROM overlay_leases WHERE network_id = ? AND owner_id = ?", [networkId, ownerId]), (row) =>
        row === undefined ? undefined : BigInt(row.host_index as number)
      ),

    insertPeer: (peer) =>
      done(
        run(
          `INSERT INTO peers (id, account_id, network_id, instance_id, public_key, overlay_address, overlay_ipv4_address, endpoint, pod_subnet, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            peer.id,
            peer.account_id,
            peer.network_id,
            peer.instance_id,
            peer.public_key,
            peer.overlay_address,
            peer.overlay_ipv4_address,
            peer.endpoint,
            peer.pod_subnet,
            peer.created_at
          ]
        )
      ),
    getPeer: (accountId, id) => Effect.map(one("SELECT * FROM peers WHERE account_id = ? AND id = ?", [accountId, id]), asIs),
    findPeer: (accountId, networkId, instanceId) =>
      Effect.map(one("SELECT * FROM peers WHERE account_id = ? AND network_id = ? AND instance_id = ?", [accountId, networkId, instanceId]), asIs),
    listPeersOfNetwork: (accountId, networkId) =>
      Effect.map(
        all(
          `SELECT p.*, n.hostname FROM peers p JOIN instances i ON i.id = p.instance_id JOIN nodes n ON n.id = i.node_id
           WHERE p.account_id = ? AND p.network_id = ? ORDER BY p.created_at, p.rowid`,
          [accountId, networkId]
        ),
        (rows) => rows as unknown as Array<PeerRecord & { hostname: string }>
      ),
    listPeersOfInstance: (accountId, instanceId) =>
      Effect.map(
        all("SELECT * FROM peers WHERE account_id = ? AND instance_id = ? ORDER BY created_at, rowid", [accountId, instanceId]),
        (rows) => rows as unknown as Array<PeerRecord>
      ),
    hostnameOfPeer: (accountId, peerId) =>
      Effect.map(
        one("SELECT n.hostname FROM peers p JOIN instances i ON i.id = p.instance_id JOIN nodes n ON n.id = i.node_id WHERE p.account_id = ? AND p.id = ?", [accountId, peerId]),
        (row) => (row === undefined ? undefined : String(row.hostname))
      ),
    findPeerByPublicKey: (accountId, networkId, publicKey) =>
      Effect.map(one("SELECT * FROM peers WHERE account_id = ? AND network_id = ? AND public_key = ?", [accountId, networkId, publicKey]), asIs),
    updatePeer: (accountId, id, changes) => {
      const set = setClause(changes)
      return set.empty ? Effect.void : done(run(`UPDATE peers SET ${set.sql} WHERE account_id = @account_id AND id = @id`, { ...set.values, account_id: accountId, id }))
    },
    deletePeer: (accountId, id) => done(run("DELETE FROM peers WHERE account_id = ? AND id = ?", [accountId, id])),

    insertCluster: (cluster) =>
      done(
        run(
          `INSERT INTO clusters (id, account_id, name, status, api_endpoint, version, network_id, cni_plugin, ip_family, cluster_cidr, service_cidr,
             warnings, bootstrap_instance_id, ca_cert_pem, ca_key_pem, token_secret, token_version, admin_cert_pem, admin_key_pem, created_at, activated_at)
           VALUES (@id, @account_id, @name, @status, @api_endpoint, @version, @network_id, @cni_plugin, @ip_family, @cluster_cidr, @service_cidr,
             @warnings, @bootstrap_instance_id, @ca_cert_pem, @ca_key_pem, @token_secret, @token_version, @admin_cert_pem, @admin_key_pem, @created_at, @activated_at)`,
          {
            id: cluster.id,
            account_id: cluster.account_id,
            name: cluster.name,
            status: cluster.status,
            api_endpoint: cluster.api_endpoint,
            version: cluster.version,
            network_id: cluster.network_id,
            cni_plugin: cluster.cni_plugin,
            ip_family: cluster.ip_family,
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
          }
        )
      ),
    getCluster: (accountId, id) => Effect.map(one("SELECT * FROM clusters WHERE account_id = ? AND id = ?", [accountId, id]), optional(clusterFrom)),
    clusterExistsInAnotherAccount: (accountId, id) =>
      Effect.map(one("SELECT 1 AS found FROM clusters WHERE id = ? AND account_id <> ?", [id, accountId]), (row) => row !== undefined),
    listClusters: (accountId, includeDecommissioned) =>
      Effect.map(
        all(`SELECT * FROM clusters WHERE account_id = ? ${includeDecommissioned ? "" : "AND status <> 'decommissioned'"} ORDER BY created_at, rowid`, [accountId]),
        (rows) => rows.map(clusterFrom)
      ),
    findClusterByName: (accountId, name) =>
      Effect.map(one("SELECT * FROM clusters WHERE account_id = ? AND name = ? AND status <> 'decommissioned' ORDER BY created_at LIMIT 1", [accountId, name]), optional(clusterFrom)),
    findClusterBootstrappedBy: (accountId, instanceId) =>
      Effect.map(
        one("SELECT * FROM clusters WHERE account_id = ? AND bootstrap_instance_id = ? AND status <> 'decommissioned'", [accountId, instanceId]),
        optional(clusterFrom)
      ),
    latestActiveCluster: (accountId) =>
      Effect.map(one("SELECT * FROM clusters WHERE account_id = ? AND status = 'active' ORDER BY activation_seq DESC LIMIT 1", [accountId]), optional(clusterFrom)),
    updateCluster: (accountId, id, changes) =>
      Effect.gen(function* () {
        const set = setClause(changes, ["warnings"])
        if (set.empty) return
        yield* run(`UPDATE clusters SET ${set.sql} WHERE account_id = @account_id AND id = @id`, { ...set.values, account_id: accountId, id })
        if (changes.status === "active") {
          yield* run(
            "UPDATE clusters SET activation_seq = (SELECT COALESCE(MAX(activation_seq), 0) + 1 FROM clusters WHERE account_id = ?) WHERE account_id = ? AND id = ?",
            [accountId, accountId, id]
          )
        }
      }),
    listLiveClusters: () =>
      Effect.map(all("SELECT * FROM clusters WHERE status <> 'decommissioned' ORDER BY account_id, created_at, rowid"), (rows) => rows.map(clusterFrom)),
    listClustersWithoutIpFamily: () =>
      Effect.map(all("SELECT * FROM clusters WHERE ip_family IS NULL ORDER BY account_id, created_at, rowid"), (rows) => rows.map(clusterFrom)),
    listServiceCidrs: (accountId) =>
      Effect.map(
        all("SELECT id AS cluster_id, service_cidr FROM clusters WHERE account_id = ? AND status <> 'decommissioned'", [accountId]),
        (rows) => rows as unknown as Array<{ cluster_id: ClusterId; service_cidr: string }>
      ),

    insertKubernetesNode: (node) =>
      done(
        run("INSERT INTO kubernetes_nodes (id, account_id, cluster_id, instance_id, role, status, joined_at) VALUES (?, ?, ?, ?, ?, ?, ?)", [
          node.id,
          node.account_id,
          node.cluster_id,
          node.instance_id,
          node.role,
          node.status,
          node.joined_at
        ])
      ),
    findKubernetesNodeOfInstance: (accountId, instanceId) =>
      Effect.map(one("SELECT * FROM kubernetes_nodes WHERE account_id = ? AND instance_id = ?", [accountId, instanceId]), asIs),
    listKubernetesNodes: (accountId, clusterId) =>
      Effect.map(
        all("SELECT * FROM kubernetes_nodes WHERE account_id = ? AND cluster_id = ? ORDER BY joined_at, rowid", [accountId, clusterId]),
        (rows) => asIs(rows)
      ),
    setKubernetesNodeStatus: (accountId, instanceId, status) =>
      done(run("UPDATE kubernetes_nodes SET status = ? WHERE account_id = ? AND instance_id = ?", [status, accountId, instanceId])),
    deleteKubernetesNodesOfCluster: (accountId, clusterId) => run("DELETE FROM kubernetes_nodes WHERE account_id = ? AND cluster_id = ?", [accountId, clusterId]),
    deleteKubernetesNodeOfInstance: (accountId, instanceId) => done(run("DELETE FROM kubernetes_nodes WHERE account_id = ? AND instance_id = ?", [accountId, instanceId])),

    insertVip: (vip) =>
      done(
        run(
          `INSERT INTO vips (id, account_id, network_id, cluster_id, address, address_ipv4, holder_peer_id, holder_since, failover_holder_peer_ids, epoch, policy, silent_epoch, incident, probe_reporters)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            vip.id,
            vip.account_id,
            vip.network_id,
            vip.cluster_id,
            vip.address,
            vip.address_ipv4,
            vip.holder_peer_id,
            vip.holder_since,
            json(vip.failover_holder_peer_ids),
            vip.epoch,
            vip.policy,
            vip.silent_epoch,
            vip.incident,
            json(vip.probe_reporters)
          ]
        )
      ),
    getVip: (accountId, id) => Effect.map(one("SELECT * FROM vips WHERE account_id = ? AND id = ?", [accountId, id]), optional(vipFrom)),
    findVipOfCluster: (accountId, clusterId) => Effect.map(one("SELECT * FROM vips WHERE account_id = ? AND cluster_id = ?", [accountId, clusterId]), optional(vipFrom)),
    listVipsOfNetwork: (accountId, networkId) =>
      Effect.map(all("SELECT * FROM vips WHERE account_id = ? AND network_id = ? ORDER BY id", [accountId, networkId]), (rows) => rows.map(vipFrom)),
    listVips: (accountId) => Effect.map(all("SELECT * FROM vips WHERE account_id = ? ORDER BY id", [accountId]), (rows) => rows.map(vipFrom)),
    listHeldVips: () =>
      Effect.map(
        all("SELECT v.*, p.instance_id AS holder_instance_id FROM vips v JOIN peers p ON p.id = v.holder_peer_id ORDER BY v.id"),
        (rows) => rows.map((row) => ({ ...vipFrom(row), holder_instance_id: row.holder_instance_id }) as VipRecord & { holder_instance_id: InstanceId })
      ),
    updateVipIfEpoch: (accountId, id, expectedEpoch, changes) => {
      const set = setClause(changes, ["failover_holder_peer_ids", "probe_reporters"])
      if (set.empty) return Effect.succeed(true)
      return Effect.map(
        run(`UPDATE vips SET ${set.sql} WHERE account_id = @account_id AND id = @id AND epoch = @expected_epoch`, {
          ...set.values,
          account_id: accountId,
          id,
          expected_epoch: expectedEpoch
        }),
        (changed) => changed === 1
      )
    },
    deleteVip: (accountId, id) => done(run("DELETE FROM vips WHERE account_id = ? AND id = ?", [accountId, id])),
    setVipAddressIpv4: (accountId, id, address) => done(run("UPDATE vips SET address_ipv4 = ? WHERE account_id = ? AND id = ?", [address, accountId, id])),

    insertApproval: (approval) =>
      done(
        run(
          `INSERT INTO approvals (id, account_id, kind, status, virtual_ip_id, cluster_id, epoch, summary, created_at, decided_at, reason, resolution)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
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
          ]
        )
      ),
    getApproval: (accountId, id) => Effect.map(one("SELECT * FROM approvals WHERE account_id = ? AND id = ?", [accountId, id]), optional(approvalFrom)),
    listApprovals: (accountId, status) =>
      Effect.map(
        status === undefined
          ? all("SELECT * FROM approvals WHERE account_id = ? ORDER BY created_at, rowid", [accountId])
          : all("SELECT * FROM approvals WHERE account_id = ? AND status = ? ORDER BY created_at, rowid", [accountId, status]),
        (rows) => rows.map(approvalFrom)
      ),
    findPendingApproval: (accountId, vipId) =>
      Effect.map(one("SELECT * FROM approvals WHERE account_id = ? AND virtual_ip_id = ? AND status = 'pending'", [accountId, vipId]), optional(approvalFrom)),
    decideApproval: (accountId, id, decision) =>
      Effect.map(
        run("UPDATE approvals SET status = ?, decided_at = ?, reason = ?, resolution = ? WHERE account_id = ? AND id = ? AND status = 'pending'", [
          decision.status,
          decision.decided_at,
          decision.reason,
          decision.resolution === null ? null : json(decision.resolution),
          accountId,
          id
        ]),
        (changed) => changed === 1
      ),

    appendEvent: (accountId, type, at, data) =>
      Effect.map(one("INSERT INTO events (account_id, type, at, data) VALUES (?, ?, ?, ?) RETURNING seq", [accountId, type, at, json(data)]), (row) => ({
        seq: Number(row!.seq),
        type,
        at,
        data
      })),
    listEvents: (accountId, since, limit) =>
      Effect.map(all("SELECT * FROM events WHERE account_id = ? AND seq > ? ORDER BY seq LIMIT ?", [accountId, since, limit]), (rows) => rows.map(eventFrom)),
    listLatestEvents: (accountId, limit) =>
      Effect.map(all("SELECT * FROM (SELECT * FROM events WHERE account_id = ? ORDER BY seq DESC LIMIT ?) AS latest ORDER BY seq", [accountId, limit]), (rows) => rows.map(eventFrom)),

    putDesiredConfig: (instanceId, kind, key, payload, at) =>
      Effect.gen(function* () {
        const text = json(payload)
        const existing = yield* one("SELECT * FROM desired_configs WHERE instance_id = ? AND kind = ? AND config_key = ?", [instanceId, kind, key])
        if (existing !== undefined && existing.payload === text) return { record: desiredFrom(existing), changed: false }
        const version = existing === undefined ? 1 : Number(existing.version) + 1
        const stored = yield* one(
          `INSERT INTO desired_configs (instance_id, kind, config_key, version, payload, updated_at, acked_version, ack_error)
           VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)
           ON CONFLICT (instance_id, kind, config_key) DO UPDATE SET version = excluded.version, payload = excluded.payload,
             updated_at = excluded.updated_at, ack_error = NULL
           RETURNING *`,
          [instanceId, kind, key, version, text, at]
        )
        return { record: desiredFrom(stored!), changed: true }
      }),
    markNetworkSyncPending: (accountId, networkId, at) =>
      done(
        run("INSERT INTO pending_network_syncs (network_id, account_id, requested_at) VALUES (?, ?, ?) ON CONFLICT (network_id) DO NOTHING", [
          networkId,
          accountId,
          at
        ])
      ),
    listPendingNetworkSyncs: () => Effect.map(all("SELECT account_id, network_id FROM pending_network_syncs ORDER BY requested_at, network_id"), asIs),
    takePendingNetworkSync: (networkId) => Effect.map(run("DELETE FROM pending_network_syncs WHERE network_id = ?", [networkId]), (changed) => changed === 1),
    putDesiredConfigForNetworkPeers: (accountId, networkId, kind, key, payload, at) =>
      Effect.map(
        all(
          `INSERT INTO desired_configs (instance_id, kind, config_key, version, payload, updated_at, acked_version, ack_error)
           SELECT p.instance_id, ?, ?, 1, ?, ?, CAST(NULL AS INTEGER), CAST(NULL AS TEXT) FROM peers p WHERE p.account_id = ? AND p.network_id = ?
           ON CONFLICT (instance_id, kind, config_key) DO UPDATE SET version = desired_configs.version + 1, payload = excluded.payload,
             updated_at = excluded.updated_at, ack_error = NULL
           WHERE desired_configs.payload <> excluded.payload
           RETURNING *`,
          [kind, key, json(payload), at, accountId, networkId]
        ),
        (rows) => rows.map(desiredFrom)
      ),
    listDesiredConfigs: (instanceId, newerThan) =>
      Effect.gen(function* () {
        if (newerThan === undefined) return (yield* all("SELECT * FROM desired_configs WHERE instance_id = ? ORDER BY kind, config_key", [instanceId])).map(desiredFrom)
        // Versions first: a large payload (a WireGuard peer list) is read only when it is to be sent.
        const known = new Map<string, number>()
        for (const c of newerThan) known.set(`${c.kind}\u0000${c.key}`, Math.max(c.version, known.get(`${c.kind}\u0000${c.key}`) ?? 0))
        const versions = yield* all("SELECT kind, config_key, version FROM desired_configs WHERE instance_id = ? ORDER BY kind, config_key", [instanceId])
        const records: Array<DesiredConfigRecord> = []
        for (const row of versions) {
          if (Number(row.version) <= (known.get(`${row.kind}\u0000${row.config_key}`) ?? 0)) continue
          const full = yield* one("SELECT * FROM desired_configs WHERE instance_id = ? AND kind = ? AND config_key = ?", [instanceId, row.kind, row.config_key])
          if (full !== undefined) records.push(desiredFrom(full))
        }
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
      done(
        run("INSERT INTO confirmations (token_hash, account_id, action, input_hash, expires_at) VALUES (?, ?, ?, ?, ?)", [
          confirmation.token_hash,
          confirmation.account_id,
          confirmation.action,
          confirmation.input_hash,
          confirmation.expires_at
        ])
      ),
    takeConfirmation: (tokenHash) =>
      Effect.map(one("DELETE FROM confirmations WHERE token_hash = ? RETURNING *", [tokenHash]), (row) =>
        row === undefined ? undefined : ({ ...row, expires_at: Number(row.expires_at) } as never)
      ),

    insertApiKey: (key) =>
      done(
        run("INSERT INTO api_keys (id, account_id, name, role, key_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)", [
          key.id,
          key.account_id,
          key.name,
          key.role,
          key.key_hash,
          key.created_at,
          key.revoked_at
        ])
      ),
    findApiKeyByHash: (keyHash) => Effect.map(one("SELECT * FROM api_keys WHERE key_hash = ?", [keyHash]), asIs),
    revokeApiKey: (accountId, id, at) =>
      Effect.map(run("UPDATE api_keys SET revoked_at = ? WHERE account_id = ? AND id = ? AND revoked_at IS NULL", [at, accountId, id]), (changed) => changed === 1),

    listApiKeys: (accountId) => Effect.map(all("SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at, id", [accountId]), asIs),

    putSkillRun: (skillRun) =>
      done(
        run(
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
        )
      ),
    listSkillRuns: (accountId, status) =>
      Effect.map(
        status === undefined
          ? all("SELECT * FROM skill_runs WHERE account_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 500", [accountId])
          : all("SELECT * FROM skill_runs WHERE account_id = ? AND status = ? ORDER BY created_at DESC, rowid DESC LIMIT 500", [accountId, status]),
        (rows) => rows.map(skillRunFrom)
      ),
    listSkillRunsByStatus: (status) =>
      Effect.map(all("SELECT * FROM skill_runs WHERE status = ? ORDER BY created_at, rowid", [status]), (rows) => rows.map(skillRunFrom)),
    getSkillRun: (accountId, id) => Effect.map(one("SELECT * FROM skill_runs WHERE account_id = ? AND id = ?", [accountId, id]), optional(skillRunFrom))
  }
}
