/** The SQL store's SD-WAN networks, overlay address leases and peers. */
import { Effect } from "effect"
import type { NetworkId, PeerId, VipId } from "../../model/ids"
import type { StoreTx } from "../store"
import type { SqlDriver } from "./sql-driver"
import { networks, networksWithoutIpv4, peerEntries, peers, peersWithHostname, podPrefixNeighbours, setClause } from "./sql-rows"

export const networkTx = (db: SqlDriver) => {
  const { one, all, write } = db
  return {
    insertNetwork: (network, podRange) =>
      write(
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
        ),
    getNetwork: (accountId, id) => Effect.flatMap(one("SELECT * FROM networks WHERE account_id = ? AND id = ?", [accountId, id]), networks.one),
    getNetworkOfCluster: (accountId, clusterId) =>
      Effect.flatMap(one("SELECT n.* FROM networks n JOIN clusters c ON c.network_id = n.id WHERE c.account_id = ? AND c.id = ?", [accountId, clusterId]), networks.one),
    findNetworkByHandle: (accountId, handle) =>
      Effect.flatMap(one("SELECT * FROM networks WHERE account_id = ? AND handle = ?", [accountId, handle]), networks.one),
    findNetworkByName: (accountId, name) => Effect.flatMap(one("SELECT * FROM networks WHERE account_id = ? AND name = ?", [accountId, name]), networks.one),
    listNetworks: (accountId) => Effect.flatMap(all("SELECT * FROM networks WHERE account_id = ? ORDER BY created_at, rowid", [accountId]), networks.all),
    deleteNetwork: (accountId, id) =>
      Effect.gen(function* () {
        if ((yield* one("SELECT id FROM networks WHERE account_id = ? AND id = ?", [accountId, id])) === undefined) return
        yield* write("DELETE FROM pending_network_syncs WHERE network_id = ?", [id])
        yield* write("DELETE FROM overlay_leases WHERE network_id = ?", [id])
        yield* write("DELETE FROM network_peer_entries WHERE network_id = ?", [id])
        yield* write("DELETE FROM network_peer_set_horizons WHERE network_id = ?", [id])
        yield* write("DELETE FROM networks WHERE account_id = ? AND id = ?", [accountId, id])
      }),
    podPrefixNeighbours: (accountId, range) =>
      // One statement, two index probes: the nearest pod prefix starting at or before the
      // range, and the first one starting after it (R6).
      Effect.flatMap(
        all(
          `SELECT * FROM (SELECT id, name, pod_subnet_prefix, pod_family, pod_start_key, pod_end_key FROM networks
             WHERE account_id = ? AND pod_family = ? AND pod_start_key IS NOT NULL AND pod_start_key <= ? ORDER BY pod_start_key DESC LIMIT 1) AS before_range
           UNION ALL
           SELECT * FROM (SELECT id, name, pod_subnet_prefix, pod_family, pod_start_key, pod_end_key FROM networks
             WHERE account_id = ? AND pod_family = ? AND pod_start_key IS NOT NULL AND pod_start_key > ? ORDER BY pod_start_key ASC LIMIT 1) AS after_range`,
          [accountId, range.family, range.startKey, accountId, range.family, range.startKey]
        ),
        podPrefixNeighbours.all
      ),
    maxSubnetIndex: (accountId, ulaGlobalId) =>
      Effect.map(one("SELECT MAX(subnet_index) AS max FROM networks WHERE account_id = ? AND ula_global_id = ?", [accountId, ulaGlobalId]), (row) =>
        row?.max == null ? undefined : Number(row.max)
      ),
    overlayPrefixInUse: (accountId, overlayPrefix) =>
      Effect.map(one("SELECT 1 AS found FROM networks WHERE account_id = ? AND overlay_prefix = ?", [accountId, overlayPrefix]), (row) => row !== undefined),
    listOverlayIpv4Prefixes: (accountId) =>
      Effect.map(all("SELECT id AS network_id, overlay_ipv4_prefix FROM networks WHERE account_id = ? AND overlay_ipv4_prefix IS NOT NULL", [accountId]), (rows) =>
        rows.map((row) => ({ network_id: String(row.network_id) as NetworkId, overlay_ipv4_prefix: String(row.overlay_ipv4_prefix) }))
      ),
    listNetworksWithoutIpv4: () =>
      Effect.flatMap(all("SELECT * FROM networks WHERE overlay_ipv4_prefix IS NULL ORDER BY account_id, created_at, rowid"), networksWithoutIpv4.all),
    listPeersWithoutIpv4: (networkId) =>
      Effect.map(all("SELECT id FROM peers WHERE network_id = ? AND overlay_ipv4_address IS NULL ORDER BY created_at, rowid", [networkId]), (rows) => rows.map((row) => String(row.id) as PeerId)),
    listVipsWithoutIpv4: (networkId) =>
      Effect.map(all("SELECT id FROM vips WHERE network_id = ? AND address_ipv4 IS NULL ORDER BY id", [networkId]), (rows) => rows.map((row) => String(row.id) as VipId)),
    setNetworkOverlayIpv4Prefix: (accountId, id, prefix) =>
      write("UPDATE networks SET overlay_ipv4_prefix = ? WHERE account_id = ? AND id = ?", [prefix, accountId, id]),

    leaseNextHostIndex: (networkId, ownerId) =>
      Effect.gen(function* () {
        const row = yield* one("SELECT COALESCE(MAX(host_index), 0) + 1 AS next FROM overlay_leases WHERE network_id = ?", [networkId])
        const next = Number(row?.next ?? 1)
        yield* write("INSERT INTO overlay_leases (network_id, host_index, owner_id) VALUES (?, ?, ?)", [networkId, next, ownerId])
        return BigInt(next)
      }),
    releaseLease: (networkId, ownerId) => write("DELETE FROM overlay_leases WHERE network_id = ? AND owner_id = ?", [networkId, ownerId]),
    hostIndexOf: (networkId, ownerId) =>
      Effect.map(one("SELECT host_index FROM overlay_leases WHERE network_id = ? AND owner_id = ?", [networkId, ownerId]), (row) =>
        row === undefined ? undefined : BigInt(row.host_index as number)
      ),

    insertPeer: (peer) =>
      write(
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
        ),
    getPeer: (accountId, id) => Effect.flatMap(one("SELECT * FROM peers WHERE account_id = ? AND id = ?", [accountId, id]), peers.one),
    findPeer: (accountId, networkId, instanceId) =>
      Effect.flatMap(one("SELECT * FROM peers WHERE account_id = ? AND network_id = ? AND instance_id = ?", [accountId, networkId, instanceId]), peers.one),
    listPeersOfNetwork: (accountId, networkId) =>
      Effect.flatMap(
        all(
          `SELECT p.*, n.hostname FROM peers p JOIN instances i ON i.id = p.instance_id JOIN nodes n ON n.id = i.node_id
           WHERE p.account_id = ? AND p.network_id = ? ORDER BY p.created_at, p.rowid`,
          [accountId, networkId]
        ),
        peersWithHostname.all
      ),
    listPeersOfInstance: (accountId, instanceId) =>
      Effect.flatMap(all("SELECT * FROM peers WHERE account_id = ? AND instance_id = ? ORDER BY created_at, rowid", [accountId, instanceId]), peers.all),
    hostnameOfPeer: (accountId, peerId) =>
      Effect.map(
        one("SELECT n.hostname FROM peers p JOIN instances i ON i.id = p.instance_id JOIN nodes n ON n.id = i.node_id WHERE p.account_id = ? AND p.id = ?", [accountId, peerId]),
        (row) => (row === undefined ? undefined : String(row.hostname))
      ),
    findPeerByPublicKey: (accountId, networkId, publicKey) =>
      Effect.flatMap(one("SELECT * FROM peers WHERE account_id = ? AND network_id = ? AND public_key = ?", [accountId, networkId, publicKey]), peers.one),
    updatePeer: (accountId, id, changes) => {
      const set = setClause(changes)
      return set.empty ? Effect.void : write(`UPDATE peers SET ${set.sql} WHERE account_id = @account_id AND id = @id`, { ...set.values, account_id: accountId, id })
    },
    deletePeer: (accountId, id) => write("DELETE FROM peers WHERE account_id = ? AND id = ?", [accountId, id]),

    listPeerEntries: (networkId) =>
      Effect.flatMap(all("SELECT peer_id, version, entry FROM network_peer_entries WHERE network_id = ?", [networkId]), peerEntries.all),
    writePeerEntries: (networkId, version, entries) =>
      // Many rows per statement: a network's first publish writes every peer.
      Effect.forEach(
        Array.from({ length: Math.ceil(entries.length / 200) }, (_, i) => entries.slice(i * 200, i * 200 + 200)),
        (batch) =>
          write(
            `INSERT INTO network_peer_entries (network_id, peer_id, version, entry) VALUES ${batch.map(() => "(?, ?, ?, ?)").join(", ")}
             ON CONFLICT (network_id, peer_id) DO UPDATE SET version = excluded.version, entry = excluded.entry`,
            batch.flatMap(({ peer_id, entry }) => [networkId, peer_id, version, entry])
          ),
        { discard: true }
      ),
    peerEntriesSince: (networkId, version) =>
      Effect.gen(function* () {
        const bounds = yield* one(
          `SELECT (SELECT MAX(version) FROM network_peer_entries WHERE network_id = @network) AS current,
                  (SELECT purged_through FROM network_peer_set_horizons WHERE network_id = @network) AS purged_through`,
          { network: networkId }
        )
        const rows = yield* peerEntries.all(
          yield* all("SELECT peer_id, version, entry FROM network_peer_entries WHERE network_id = ? AND version > ? ORDER BY version, peer_id", [networkId, version])
        )
        return { current: Number(bounds?.current ?? 0), purgedThrough: Number(bounds?.purged_through ?? 0), rows }
      }),
    purgeRemovedPeerEntries: (networkId, through) =>
      Effect.gen(function* () {
        yield* write("DELETE FROM network_peer_entries WHERE network_id = ? AND entry IS NULL AND version <= ?", [networkId, through])
        yield* write(
          `INSERT INTO network_peer_set_horizons (network_id, purged_through) VALUES (?, ?)
           ON CONFLICT (network_id) DO UPDATE SET purged_through = excluded.purged_through
           WHERE network_peer_set_horizons.purged_through < excluded.purged_through`,
          [networkId, through]
        )
      }),

  } satisfies Partial<StoreTx>
}
