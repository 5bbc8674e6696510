/** The SQL store's SD-WAN networks, overlay address leases and peers. */
import { Effect } from "effect"
import type { PrefixRange } from "../store"
import type { PeerRecord } from "../records"
import type { StoreTx } from "../store"
import type { SqlDriver } from "./sql-driver"
import { asIs, networkFrom, optional, peerEntryFrom, setClause } from "./sql-rows"

export const networkTx = (db: SqlDriver) => {
  const { one, all, run } = db
  const done = Effect.asVoid
  return {
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
        yield* run("DELETE FROM network_peer_entries WHERE network_id = ?", [id])
        yield* run("DELETE FROM network_peer_set_horizons WHERE network_id = ?", [id])
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

    listPeerEntries: (networkId) =>
      Effect.map(all("SELECT peer_id, version, entry FROM network_peer_entries WHERE network_id = ?", [networkId]), (rows) => rows.map(peerEntryFrom)),
    writePeerEntries: (networkId, version, entries) =>
      // Many rows per statement: a network's first publish writes every peer.
      Effect.forEach(
        Array.from({ length: Math.ceil(entries.length / 200) }, (_, i) => entries.slice(i * 200, i * 200 + 200)),
        (batch) =>
          run(
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
        const rows = (yield* all("SELECT peer_id, version, entry FROM network_peer_entries WHERE network_id = ? AND version > ? ORDER BY version, peer_id", [networkId, version])).map(peerEntryFrom)
        return { current: Number(bounds?.current ?? 0), purgedThrough: Number(bounds?.purged_through ?? 0), rows }
      }),
    purgeRemovedPeerEntries: (networkId, through) =>
      Effect.gen(function* () {
        yield* run("DELETE FROM network_peer_entries WHERE network_id = ? AND entry IS NULL AND version <= ?", [networkId, through])
        yield* run(
          `INSERT INTO network_peer_set_horizons (network_id, purged_through) VALUES (?, ?)
           ON CONFLICT (network_id) DO UPDATE SET purged_through = excluded.purged_through
           WHERE network_peer_set_horizons.purged_through < excluded.purged_through`,
          [networkId, through]
        )
      }),

  } satisfies Partial<StoreTx>
}
