/** The SQL store's clusters, their Kubernetes nodes, VIPs and approvals. */
import { Effect } from "effect"
import type { ClusterId } from "../../model/ids"
import type { StoreTx } from "../store"
import type { SqlDriver } from "./sql-driver"
import { approvals, clusterSummaries, clusters, clustersWithoutIpFamily, heldVips, json, kubernetesNodes, setClause, vips } from "./sql-rows"

/** Every column of a cluster but its key material and certificates (`ClusterSummary`). */
const CLUSTER_SUMMARY_COLUMNS =
  "id, account_id, name, status, api_endpoint, version, network_id, cni_plugin, ip_family, cluster_cidr, service_cidr, warnings, created_at, activated_at, bootstrap_instance_id, token_version"

export const clusterTx = (db: SqlDriver) => {
  const { one, all, run, write } = db
  return {
    insertCluster: (cluster) =>
      write(
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
        ),
    getCluster: (accountId, id) => Effect.flatMap(one("SELECT * FROM clusters WHERE account_id = ? AND id = ?", [accountId, id]), clusters.one),
    clusterExistsInAnotherAccount: (accountId, id) =>
      Effect.map(one("SELECT 1 AS found FROM clusters WHERE id = ? AND account_id <> ?", [id, accountId]), (row) => row !== undefined),
    listClusters: (accountId, includeDecommissioned) =>
      Effect.flatMap(
        all(
          `SELECT ${CLUSTER_SUMMARY_COLUMNS} FROM clusters WHERE account_id = ? ${includeDecommissioned ? "" : "AND status <> 'decommissioned'"} ORDER BY created_at, rowid`,
          [accountId]
        ),
        clusterSummaries.all
      ),
    findClusterByName: (accountId, name) =>
      Effect.flatMap(one("SELECT * FROM clusters WHERE account_id = ? AND name = ? AND status <> 'decommissioned' ORDER BY created_at LIMIT 1", [accountId, name]), clusters.one),
    findClusterBootstrappedBy: (accountId, instanceId) =>
      Effect.flatMap(
        one("SELECT * FROM clusters WHERE account_id = ? AND bootstrap_instance_id = ? AND status <> 'decommissioned'", [accountId, instanceId]),
        clusters.one
      ),
    latestActiveCluster: (accountId) =>
      Effect.flatMap(one("SELECT * FROM clusters WHERE account_id = ? AND status = 'active' ORDER BY activation_seq DESC LIMIT 1", [accountId]), clusters.one),
    updateCluster: (accountId, id, changes) =>
      Effect.gen(function* () {
        const set = setClause(changes, ["warnings"])
        if (set.empty) return
        yield* write(`UPDATE clusters SET ${set.sql} WHERE account_id = @account_id AND id = @id`, { ...set.values, account_id: accountId, id })
        if (changes.status === "active") {
          yield* write(
            "UPDATE clusters SET activation_seq = (SELECT COALESCE(MAX(activation_seq), 0) + 1 FROM clusters WHERE account_id = ?) WHERE account_id = ? AND id = ?",
            [accountId, accountId, id]
          )
        }
      }),
    listLiveClusters: () =>
      Effect.flatMap(all("SELECT * FROM clusters WHERE status <> 'decommissioned' ORDER BY account_id, created_at, rowid"), clusters.all),
    listClustersWithoutIpFamily: () =>
      Effect.flatMap(all("SELECT * FROM clusters WHERE ip_family IS NULL ORDER BY account_id, created_at, rowid"), clustersWithoutIpFamily.all),
    listServiceCidrs: (accountId) =>
      Effect.map(all("SELECT id AS cluster_id, service_cidr FROM clusters WHERE account_id = ? AND status <> 'decommissioned'", [accountId]), (rows) =>
        rows.map((row) => ({ cluster_id: String(row.cluster_id) as ClusterId, service_cidr: String(row.service_cidr) }))
      ),

    insertKubernetesNode: (node) =>
      write("INSERT INTO kubernetes_nodes (id, account_id, cluster_id, instance_id, role, status, joined_at) VALUES (?, ?, ?, ?, ?, ?, ?)", [
          node.id,
          node.account_id,
          node.cluster_id,
          node.instance_id,
          node.role,
          node.status,
          node.joined_at
        ]),
    findKubernetesNodeOfInstance: (accountId, instanceId) =>
      Effect.flatMap(one("SELECT * FROM kubernetes_nodes WHERE account_id = ? AND instance_id = ?", [accountId, instanceId]), kubernetesNodes.one),
    listKubernetesNodes: (accountId, clusterId) =>
      Effect.flatMap(all("SELECT * FROM kubernetes_nodes WHERE account_id = ? AND cluster_id = ? ORDER BY joined_at, rowid", [accountId, clusterId]), kubernetesNodes.all),
    setKubernetesNodeStatus: (accountId, instanceId, status) =>
      write("UPDATE kubernetes_nodes SET status = ? WHERE account_id = ? AND instance_id = ?", [status, accountId, instanceId]),
    deleteKubernetesNodesOfCluster: (accountId, clusterId) => run("DELETE FROM kubernetes_nodes WHERE account_id = ? AND cluster_id = ?", [accountId, clusterId]),
    deleteKubernetesNodeOfInstance: (accountId, instanceId) => write("DELETE FROM kubernetes_nodes WHERE account_id = ? AND instance_id = ?", [accountId, instanceId]),

    insertVip: (vip) =>
      write(
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
        ),
    getVip: (accountId, id) => Effect.flatMap(one("SELECT * FROM vips WHERE account_id = ? AND id = ?", [accountId, id]), vips.one),
    findVipOfCluster: (accountId, clusterId) => Effect.flatMap(one("SELECT * FROM vips WHERE account_id = ? AND cluster_id = ?", [accountId, clusterId]), vips.one),
    listVipsOfNetwork: (accountId, networkId) =>
      Effect.flatMap(all("SELECT * FROM vips WHERE account_id = ? AND network_id = ? ORDER BY id", [accountId, networkId]), vips.all),
    listVips: (accountId) => Effect.flatMap(all("SELECT * FROM vips WHERE account_id = ? ORDER BY id", [accountId]), vips.all),
    listHeldVips: () =>
      Effect.flatMap(
        all("SELECT v.*, p.instance_id AS holder_instance_id FROM vips v JOIN peers p ON p.id = v.holder_peer_id ORDER BY v.id"),
        heldVips.all
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
    deleteVip: (accountId, id) => write("DELETE FROM vips WHERE account_id = ? AND id = ?", [accountId, id]),
    setVipAddressIpv4: (accountId, id, address) => write("UPDATE vips SET address_ipv4 = ? WHERE account_id = ? AND id = ?", [address, accountId, id]),

    insertApproval: (approval) =>
      write(
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
        ),
    getApproval: (accountId, id) => Effect.flatMap(one("SELECT * FROM approvals WHERE account_id = ? AND id = ?", [accountId, id]), approvals.one),
    listApprovals: (accountId, status) =>
      Effect.flatMap(
        status === undefined
          ? all("SELECT * FROM approvals WHERE account_id = ? ORDER BY created_at, rowid", [accountId])
          : all("SELECT * FROM approvals WHERE account_id = ? AND status = ? ORDER BY created_at, rowid", [accountId, status]),
        approvals.all
      ),
    findPendingApproval: (accountId, vipId) =>
      Effect.flatMap(one("SELECT * FROM approvals WHERE account_id = ? AND virtual_ip_id = ? AND status = 'pending'", [accountId, vipId]), approvals.one),
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

  } satisfies Partial<StoreTx>
}
