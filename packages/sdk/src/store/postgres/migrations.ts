/**
 * The PostgreSQL schema, one migration per version, written for PostgreSQL. Versions 1-9 are
 * SQLite's (src/store/sqlite/migrations.ts) one for one, with the same names: where the two
 * differ, PostgreSQL has a `rowid BIGSERIAL` column where SQLite's built-in rowid orders rows,
 * `BIGSERIAL` for the event sequence, `BIGINT` where values pass 2^31 (host indexes, expiry
 * times in ms), and byte-order collation ("C") for the pod-range keys. Versions from 1,000 on
 * are what only several gateways sharing one database need (agent liveness).
 *
 * A new version is added to both files (test/migrations.test.ts checks that they pair up); never
 * edit one that has shipped. src/store/migrator.ts applies them.
 */
import type { Migration } from "../migrator"

export const postgresMigrations: ReadonlyArray<Migration> = [
  {
    version: 1,
    name: "initial",
    sql: `
CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  ula_global_id TEXT NOT NULL,
  created_at TEXT NOT NULL
);

CREATE TABLE templates (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  name TEXT NOT NULL,
  created_at TEXT NOT NULL,
  UNIQUE (account_id, name)
);

CREATE TABLE module_assignments (
  template_id TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
  module_name TEXT NOT NULL,
  module_version_id TEXT,
  config TEXT NOT NULL,
  PRIMARY KEY (template_id, module_name)
);

CREATE TABLE nodes (
  rowid BIGSERIAL NOT NULL,
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  hostname TEXT NOT NULL,
  node_template_id TEXT NOT NULL REFERENCES templates(id),
  created_at TEXT NOT NULL,
  UNIQUE (account_id, hostname)
);

CREATE TABLE instances (
  rowid BIGSERIAL NOT NULL,
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  node_id TEXT NOT NULL REFERENCES nodes(id),
  status TEXT NOT NULL CHECK (status IN ('running', 'terminated')),
  credential_hash TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX instances_node ON instances (account_id, node_id);

CREATE TABLE networks (
  rowid BIGSERIAL NOT NULL,
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  name TEXT NOT NULL,
  handle TEXT NOT NULL,
  overlay_prefix TEXT NOT NULL,
  ula_global_id TEXT,
  subnet_index INTEGER,
  pod_subnet_prefix TEXT,
  pod_family INTEGER,
  pod_start_key TEXT COLLATE "C",
  pod_end_key TEXT COLLATE "C",
  listen_port INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  UNIQUE (account_id, handle),
  UNIQUE (account_id, name),
  UNIQUE (account_id, overlay_prefix)
);
-- R6: nearest pod prefix before/after an address in O(log n).
CREATE INDEX networks_pod_range ON networks (account_id, pod_family, pod_start_key) WHERE pod_start_key IS NOT NULL;
CREATE INDEX networks_ula ON networks (account_id, ula_global_id, subnet_index);

-- Host numbers inside a network's /64, shared by peers and VIPs: never handed out twice while leased.
CREATE TABLE overlay_leases (
  network_id TEXT NOT NULL REFERENCES networks(id),
  host_index BIGINT NOT NULL,
  owner_id TEXT NOT NULL,
  PRIMARY KEY (network_id, host_index)
);
CREATE INDEX overlay_leases_owner ON overlay_leases (network_id, owner_id);

CREATE TABLE peers (
  rowid BIGSERIAL NOT NULL,
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  network_id TEXT NOT NULL REFERENCES networks(id),
  instance_id TEXT NOT NULL REFERENCES instances(id),
  public_key TEXT,
  overlay_address TEXT NOT NULL,
  endpoint TEXT,
  pod_subnet TEXT,
  created_at TEXT NOT NULL,
  UNIQUE (network_id, instance_id),
  UNIQUE (network_id, overlay_address)
);
CREATE INDEX peers_instance ON peers (instance_id);

CREATE TABLE clusters (
  rowid BIGSERIAL NOT NULL,
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  name TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('provisioning', 'active', 'error', 'decommissioning', 'decommissioned')),
  api_endpoint TEXT NOT NULL,
  version TEXT,
  network_id TEXT NOT NULL REFERENCES networks(id),
  cni_plugin TEXT NOT NULL,
  cluster_cidr TEXT,
  service_cidr TEXT NOT NULL,
  warnings TEXT NOT NULL,
  bootstrap_instance_id TEXT NOT NULL REFERENCES instances(id),
  ca_cert_pem TEXT NOT NULL,
  ca_key_pem TEXT NOT NULL,
  token_secret TEXT NOT NULL,
  token_version INTEGER NOT NULL,
  admin_cert_pem TEXT NOT NULL,
  admin_key_pem TEXT NOT NULL,
  created_at TEXT NOT NULL,
  activated_at TEXT,
  -- Orders activations even within one millisecond (R10 picks the most recent).
  activation_seq INTEGER
);
-- R7: one live cluster per bootstrap instance, whatever the reconnects.
CREATE UNIQUE INDEX clusters_bootstrap ON clusters (bootstrap_instance_id) WHERE status <> 'decommissioned';
CREATE INDEX clusters_account ON clusters (account_id, status, activation_seq);

CREATE TABLE kubernetes_nodes (
  rowid BIGSERIAL NOT NULL,
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  cluster_id TEXT NOT NULL REFERENCES clusters(id),
  instance_id TEXT NOT NULL UNIQUE REFERENCES instances(id),
  role TEXT NOT NULL CHECK (role IN ('control-plane', 'worker')),
  status TEXT NOT NULL,
  joined_at TEXT NOT NULL
);
CREATE INDEX kubernetes_nodes_cluster ON kubernetes_nodes (cluster_id);

CREATE TABLE vips (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  network_id TEXT NOT NULL REFERENCES networks(id),
  cluster_id TEXT NOT NULL UNIQUE REFERENCES clusters(id),
  address TEXT NOT NULL,
  holder_peer_id TEXT REFERENCES peers(id),
  failover_holder_peer_ids TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  policy TEXT NOT NULL CHECK (policy IN ('require_approval', 'automatic')),
  silent_epoch INTEGER
);

CREATE TABLE approvals (
  rowid BIGSERIAL NOT NULL,
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  kind TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'moot')),
  virtual_ip_id TEXT NOT NULL,
  cluster_id TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  summary TEXT NOT NULL,
  created_at TEXT NOT NULL,
  decided_at TEXT,
  reason TEXT,
  resolution TEXT
);
CREATE INDEX approvals_account ON approvals (account_id, status);
-- At most one pending failover approval per VIP.
CREATE UNIQUE INDEX approvals_pending_vip ON approvals (virtual_ip_id) WHERE status = 'pending';

CREATE TABLE events (
  seq BIGSERIAL PRIMARY KEY,
  account_id TEXT NOT NULL,
  type TEXT NOT NULL,
  at TEXT NOT NULL,
  data TEXT NOT NULL
);
CREATE INDEX events_account ON events (account_id, seq);

CREATE TABLE desired_configs (
  instance_id TEXT NOT NULL REFERENCES instances(id),
  kind TEXT NOT NULL,
  config_key TEXT NOT NULL,
  version INTEGER NOT NULL,
  payload TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  acked_version INTEGER,
  ack_error TEXT,
  PRIMARY KEY (instance_id, kind, config_key)
);

CREATE TABLE confirmations (
  token_hash TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  action TEXT NOT NULL,
  input_hash TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);

-- Admin API keys: stored as SHA-256 hashes; the key itself is shown once.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  name TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  revoked_at TEXT
);

CREATE TABLE skill_runs (
  rowid BIGSERIAL NOT NULL,
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  skill TEXT NOT NULL,
  status TEXT NOT NULL,
  inputs TEXT NOT NULL,
  state TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
`
  },
  {
    version: 2,
    name: "pending network syncs",
    sql: `
-- Networks whose WireGuard peer lists must be rendered again (a peer's key or endpoint changed).
-- Many agents registering keys at once cost one render per network, not one each; a row
-- survives a crash, so the render still happens after a restart.
CREATE TABLE pending_network_syncs (
  network_id TEXT PRIMARY KEY REFERENCES networks(id),
  account_id TEXT NOT NULL,
  requested_at TEXT NOT NULL
);
`
  },
  {
    version: 3,
    name: "address families",
    sql: `
-- R21: every network also has an IPv4 overlay range, every peer and VIP an IPv4 address, and
-- every cluster one IP family. Rows created before this migration get theirs when the fleet
-- opens (see network/address-family-backfill.ts): allocating free ranges is domain logic.
ALTER TABLE networks ADD COLUMN overlay_ipv4_prefix TEXT;
ALTER TABLE peers ADD COLUMN overlay_ipv4_address TEXT;
ALTER TABLE vips ADD COLUMN address_ipv4 TEXT;
ALTER TABLE clusters ADD COLUMN ip_family TEXT;
CREATE UNIQUE INDEX networks_overlay_ipv4 ON networks (account_id, overlay_ipv4_prefix) WHERE overlay_ipv4_prefix IS NOT NULL;
CREATE UNIQUE INDEX peers_overlay_ipv4 ON peers (network_id, overlay_ipv4_address) WHERE overlay_ipv4_address IS NOT NULL;
-- R23: who holds a public key in a network, found without a scan.
CREATE INDEX peers_public_key ON peers (network_id, public_key) WHERE public_key IS NOT NULL;
`
  },
  {
    version: 4,
    name: "api key roles",
    sql: `
-- What a key may do: read, operate or admin. Keys made before roles keep the full rights they had.
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin' CHECK (role IN ('read', 'operate', 'admin'));
`
  },
  {
    version: 5,
    name: "agent credential rotation",
    sql: `
-- A rotated credential: the agent's previous one keeps working until the agent confirms the new
-- one (its ack, or its first hello with it) or this time passes (ISO 8601).
ALTER TABLE instances ADD COLUMN previous_credential_hash TEXT;
ALTER TABLE instances ADD COLUMN previous_credential_valid_until TEXT;
`
  },
  {
    version: 6,
    name: "vip holder since",
    sql: `
-- When the current holder got the VIP: the silence sensor counts a holder no gateway has seen
-- yet from here, not from when the sensor's process started.
ALTER TABLE vips ADD COLUMN holder_since TEXT;
`
  },
  {
    version: 7,
    name: "vip incident kind",
    sql: `
-- R26: what the open incident at silent_epoch is (holder_silent, gateway_unreachable,
-- vip_unreachable); earlier rows were all holder_silent and read as such. And which instances
-- probe the VIP (a JSON array), so a join can tell cheaply whether it changes the sample.
ALTER TABLE vips ADD COLUMN incident TEXT;
ALTER TABLE vips ADD COLUMN probe_reporters TEXT;
`
  },
  {
    version: 8,
    name: "published peer sets",
    sql: `
-- #20: each network's peer set as it was last published to its peers, one row per peer: the
-- version at which its entry last changed and the entry (JSON; NULL once the peer is gone, so a
-- delta can say it was removed). A push carries the rows newer than the version the agent has.
CREATE TABLE network_peer_entries (
  network_id TEXT NOT NULL,
  peer_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  entry TEXT,
  PRIMARY KEY (network_id, peer_id)
);
CREATE INDEX network_peer_entries_version ON network_peer_entries (network_id, version);
-- The stored WireGuard pushes were rendered text; every network is published again as a peer set.
INSERT INTO pending_network_syncs (network_id, account_id, requested_at)
  SELECT id, account_id, '1970-01-01T00:00:00.000Z' FROM networks WHERE true
  ON CONFLICT (network_id) DO NOTHING;
`
  },
  {
    version: 9,
    name: "peer-set history horizon",
    sql: `
-- #20: removed peers' rows (entry NULL) are purged once they are old; an agent whose version is
-- older than the purged ones cannot be sent a delta (it would miss those removals) and gets the
-- full set. The version through which a network's removals were purged:
CREATE TABLE network_peer_set_horizons (
  network_id TEXT PRIMARY KEY,
  purged_through INTEGER NOT NULL
);
`
  },
  {
    version: 1_000,
    name: "shared agent liveness",
    sql: `
-- What each gateway last saw of the agents connected to it, shared so that whichever gateway
-- runs the silence sensor or scores failover candidates sees every agent (see shared-state.ts).
CREATE TABLE agent_liveness (
  instance_id TEXT PRIMARY KEY,
  gateway TEXT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  connected BOOLEAN NOT NULL,
  k3s TEXT,
  wireguard TEXT NOT NULL,
  load TEXT
);
CREATE INDEX agent_liveness_seen ON agent_liveness (last_seen_at);
`
  },
  {
    version: 1_001,
    name: "shared VIP probe reports",
    sql: `
-- R26: a reporter's VIP probe observations travel with its liveness, so the leader's sensor
-- judges with every reporter's view whichever gateway holds its session.
ALTER TABLE agent_liveness ADD COLUMN vip_probes TEXT;
`
  }
]
