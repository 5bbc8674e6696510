/**
 * The store contract. Domain code talks only to `StoreTx` inside `Store.transaction`,
 * so every multi-row change is atomic and a PostgreSQL implementation can follow
 * without touching the domain. Every query that reads an account's entities takes the
 * account id: isolation (R20) is in the signature, not in the callers' discipline.
 */
import { Context, type Effect, type Scope } from "effect"
import type { ConfigKind } from "@fleetplane/agent-protocol"
import type { Account, ApprovalStatus, FleetEvent, KubernetesNodeStatus, ModuleAssignment } from "../model/entities"
import { StoreError } from "../model/errors"
import type { AccountId, ApprovalId, ClusterId, InstanceId, NetworkId, NodeId, PeerId, TemplateId, VipId } from "../model/ids"
import type {
  ApiKeyRecord,
  ApprovalRecord,
  ClusterRecord,
  ClusterSummary,
  ClusterWithoutIpFamilyRecord,
  ConfirmationRecord,
  DesiredConfigRecord,
  InstanceRecord,
  KubernetesNodeRecord,
  NetworkRecord,
  NetworkWithoutIpv4Record,
  NodeRecord,
  PeerRecord,
  SkillRunRecord,
  TemplateRecord,
  VipRecord
} from "./records"

type Op<A> = Effect.Effect<A, StoreError>

/** A pod prefix as a sortable range (see network/cidr.ts `rangeKey`). */
export interface PrefixRange {
  readonly family: 4 | 6
  readonly startKey: string
  readonly endKey: string
}

/** A network whose pod prefix is nearest a range (R6): what an overlap error names. */
export interface PodPrefixNeighbour extends PrefixRange {
  readonly id: NetworkId
  readonly name: string
  readonly pod_subnet_prefix: string
}

/** One peer of a network's published peer set. */
export interface PeerEntryRow {
  readonly peer_id: string
  readonly version: number
  /** The peer's entry as JSON text; `null` once the peer was removed. */
  readonly entry: string | null
}

export interface StoreTx {
  // accounts
  readonly insertAccount: (account: Account & { readonly ula_global_id: string }) => Op<void>
  readonly getAccount: (id: AccountId) => Op<(Account & { readonly ula_global_id: string }) | undefined>
  /** Every account by name (for the gateway box's operator, on the database directly). */
  readonly listAccounts: () => Op<ReadonlyArray<Account>>
  readonly setAccountUlaGlobalId: (id: AccountId, ulaGlobalId: string) => Op<void>

  // templates and module assignments
  readonly insertTemplate: (template: TemplateRecord) => Op<void>
  readonly getTemplate: (accountId: AccountId, id: TemplateId) => Op<TemplateRecord | undefined>
  /** The template of the node an instance runs on, by the instance's id: read beside the instance, not after its node. */
  readonly getTemplateOfInstance: (accountId: AccountId, instanceId: InstanceId) => Op<TemplateRecord | undefined>
  readonly findTemplateByName: (accountId: AccountId, name: string) => Op<TemplateRecord | undefined>
  /** By name. */
  readonly listTemplates: (accountId: AccountId) => Op<ReadonlyArray<TemplateRecord>>
  readonly putModuleAssignment: (templateId: TemplateId, assignment: ModuleAssignment) => Op<void>
  /** Only a template no node uses (callers check); its assignments go with it. */
  readonly deleteTemplate: (accountId: AccountId, id: TemplateId) => Op<void>

  // nodes and instances
  readonly insertNode: (node: NodeRecord) => Op<void>
  readonly getNode: (accountId: AccountId, id: NodeId) => Op<NodeRecord | undefined>
  /** The node an instance runs on, by the instance's id: read beside the instance, not after it. */
  readonly getNodeOfInstance: (accountId: AccountId, instanceId: InstanceId) => Op<NodeRecord | undefined>
  readonly listNodes: (accountId: AccountId) => Op<ReadonlyArray<NodeRecord>>
  readonly findNodeByHostname: (accountId: AccountId, hostname: string) => Op<NodeRecord | undefined>
  /** Only a node that never had an instance (callers check). */
  readonly deleteNode: (accountId: AccountId, id: NodeId) => Op<void>
  /** Every instance of the account (running and terminated), oldest first. */
  readonly listInstances: (accountId: AccountId) => Op<ReadonlyArray<InstanceRecord>>
  readonly listInstancesOfNode: (accountId: AccountId, nodeId: NodeId) => Op<ReadonlyArray<InstanceRecord>>
  readonly insertInstance: (instance: InstanceRecord) => Op<void>
  readonly getInstance: (accountId: AccountId, id: InstanceId) => Op<InstanceRecord | undefined>
  /** Only for authenticating an agent, which does not know its account yet. */
  readonly getInstanceForAuthentication: (id: InstanceId) => Op<InstanceRecord | undefined>
  readonly setInstanceStatus: (accountId: AccountId, id: InstanceId, status: InstanceRecord["status"]) => Op<void>
  /**
   * A new credential; the current one becomes the previous, accepted until `previousValidUntil`.
   * A previous one still valid at `at` stays (the agent never confirmed the credential in between).
   */
  readonly rotateInstanceCredential: (accountId: AccountId, id: InstanceId, credentialHash: string, previousValidUntil: string, at: string) => Op<void>
  /** The agent has the new credential: the previous one stops working. */
  readonly retirePreviousCredential: (id: InstanceId) => Op<void>
  readonly listInstancesOfTemplate: (accountId: AccountId, templateId: TemplateId) => Op<ReadonlyArray<InstanceRecord>>
  /** The node's running instance, if it has one (operators name machines by hostname). */
  readonly findRunningInstanceOfNode: (accountId: AccountId, nodeId: NodeId) => Op<InstanceRecord | undefined>

  // networks (R2/R6: the nearest pod prefixes around a range, via an index)
  readonly insertNetwork: (network: NetworkRecord, podRange: PrefixRange | null) => Op<void>
  readonly getNetwork: (accountId: AccountId, id: NetworkId) => Op<NetworkRecord | undefined>
  /** A cluster's network, by the cluster's id: read beside the cluster, not after it. */
  readonly getNetworkOfCluster: (accountId: AccountId, clusterId: ClusterId) => Op<NetworkRecord | undefined>
  readonly findNetworkByHandle: (accountId: AccountId, handle: string) => Op<NetworkRecord | undefined>
  readonly findNetworkByName: (accountId: AccountId, name: string) => Op<NetworkRecord | undefined>
  readonly listNetworks: (accountId: AccountId) => Op<ReadonlyArray<NetworkRecord>>
  /** Only a network without peers, VIPs or clusters (callers check). */
  readonly deleteNetwork: (accountId: AccountId, id: NetworkId) => Op<void>
  /** The network whose pod prefix starts at or before `range.startKey` (highest such), and the first starting after it. */
  readonly podPrefixNeighbours: (accountId: AccountId, range: PrefixRange) => Op<ReadonlyArray<PodPrefixNeighbour>>
  readonly maxSubnetIndex: (accountId: AccountId, ulaGlobalId: string) => Op<number | undefined>
  readonly overlayPrefixInUse: (accountId: AccountId, overlayPrefix: string) => Op<boolean>
  /** The IPv4 overlay ranges of the account's networks (to allocate a free one). */
  readonly listOverlayIpv4Prefixes: (accountId: AccountId) => Op<ReadonlyArray<{ readonly network_id: NetworkId; readonly overlay_ipv4_prefix: string }>>
  /** Networks created before address families (R21), across accounts: the backfill gives each an IPv4 range. */
  /** Networks from before R21 (migration 3) without an IPv4 overlay range: for the backfill. */
  readonly listNetworksWithoutIpv4: () => Op<ReadonlyArray<NetworkWithoutIpv4Record>>
  /** The peers of a network from before R21 without an IPv4 overlay address: for the backfill. */
  readonly listPeersWithoutIpv4: (networkId: NetworkId) => Op<ReadonlyArray<PeerId>>
  /** The VIPs of a network from before R21 without an IPv4 address: for the backfill. */
  readonly listVipsWithoutIpv4: (networkId: NetworkId) => Op<ReadonlyArray<VipId>>
  readonly setNetworkOverlayIpv4Prefix: (accountId: AccountId, id: NetworkId, prefix: string) => Op<void>

  // overlay address leases (peers and VIPs share a network's host numbers)
  readonly leaseNextHostIndex: (networkId: NetworkId, ownerId: string) => Op<bigint>
  readonly releaseLease: (networkId: NetworkId, ownerId: string) => Op<void>
  /** The host number leased to a peer or VIP (its address in either family). */
  readonly hostIndexOf: (networkId: NetworkId, ownerId: string) => Op<bigint | undefined>

  // peers
  readonly insertPeer: (peer: PeerRecord) => Op<void>
  readonly getPeer: (accountId: AccountId, id: PeerId) => Op<PeerRecord | undefined>
  readonly findPeer: (accountId: AccountId, networkId: NetworkId, instanceId: InstanceId) => Op<PeerRecord | undefined>
  /** Every peer of a network with its node's hostname (for labels in generated configs). */
  readonly listPeersOfNetwork: (accountId: AccountId, networkId: NetworkId) => Op<ReadonlyArray<PeerRecord & { readonly hostname: string }>>
  readonly listPeersOfInstance: (accountId: AccountId, instanceId: InstanceId) => Op<ReadonlyArray<PeerRecord>>
  /** The hostname of a peer's node (for answers and events that name hosts, not only ids). */
  readonly hostnameOfPeer: (accountId: AccountId, peerId: PeerId) => Op<string | undefined>
  /** R23: the peer of a network holding a public key, if any. */
  readonly findPeerByPublicKey: (accountId: AccountId, networkId: NetworkId, publicKey: string) => Op<PeerRecord | undefined>
  readonly updatePeer: (
    accountId: AccountId,
    id: PeerId,
    changes: Partial<Pick<PeerRecord, "public_key" | "endpoint" | "pod_subnet" | "overlay_ipv4_address">>
  ) => Op<void>
  /** Removes a peer (its instance was terminated, R25); its desired configs for the network stay as history. */
  readonly deletePeer: (accountId: AccountId, id: PeerId) => Op<void>

  // published peer sets (#20: WireGuard pushes as versioned deltas)
  /** Every published entry of a network (JSON text; `null` for a removed peer) with the version it last changed at. */
  readonly listPeerEntries: (networkId: NetworkId) => Op<ReadonlyArray<PeerEntryRow>>
  /** Writes entries (or removals, `entry: null`) at one new version of the network's peer set. */
  readonly writePeerEntries: (networkId: NetworkId, version: number, entries: ReadonlyArray<Pick<PeerEntryRow, "peer_id" | "entry">>) => Op<void>
  /**
   * The entries that changed after `version`, the set's current version, and the version through
   * which removals were purged (an agent older than that needs the full set).
   */
  readonly peerEntriesSince: (
    networkId: NetworkId,
    version: number
  ) => Op<{ readonly current: number; readonly purgedThrough: number; readonly rows: ReadonlyArray<PeerEntryRow> }>
  /** Drops the rows of peers removed at or before `through`, and records that horizon. */
  readonly purgeRemovedPeerEntries: (networkId: NetworkId, through: number) => Op<void>

  // clusters
  readonly insertCluster: (cluster: ClusterRecord) => Op<void>
  readonly getCluster: (accountId: AccountId, id: ClusterId) => Op<ClusterRecord | undefined>
  /** Any account: only for telling `cluster_not_found` from `cluster_wrong_account` in the audit log (R9). */
  readonly clusterExistsInAnotherAccount: (accountId: AccountId, id: string) => Op<boolean>
  /** The account's clusters without their key material (a list never needs it, and it is most of a row's size). */
  readonly listClusters: (accountId: AccountId, includeDecommissioned: boolean) => Op<ReadonlyArray<ClusterSummary>>
  /** The live (not decommissioned) cluster with this name, if any. */
  readonly findClusterByName: (accountId: AccountId, name: string) => Op<ClusterRecord | undefined>
  readonly findClusterBootstrappedBy: (accountId: AccountId, instanceId: InstanceId) => Op<ClusterRecord | undefined>
  readonly latestActiveCluster: (accountId: AccountId) => Op<ClusterRecord | undefined>
  readonly updateCluster: (
    accountId: AccountId,
    id: ClusterId,
    changes: Partial<
      Pick<
        ClusterRecord,
        | "status"
        | "version"
        | "warnings"
        | "activated_at"
        | "token_secret"
        | "token_version"
        | "ip_family"
        | "api_endpoint"
        | "cluster_cidr"
        | "service_cidr"
        | "admin_cert_pem"
        | "admin_key_pem"
      >
    >
  ) => Op<void>
  /** Every cluster that is not decommissioned, across accounts (their node kubeconfigs are renewed). */
  readonly listLiveClusters: () => Op<ReadonlyArray<ClusterRecord>>
  /** Clusters created before address families (R21), across accounts: the backfill gives each its family. */
  readonly listClustersWithoutIpFamily: () => Op<ReadonlyArray<ClusterWithoutIpFamilyRecord>>
  readonly listServiceCidrs: (accountId: AccountId) => Op<ReadonlyArray<{ readonly cluster_id: ClusterId; readonly service_cidr: string }>>

  // kubernetes nodes
  readonly insertKubernetesNode: (node: KubernetesNodeRecord) => Op<void>
  readonly findKubernetesNodeOfInstance: (accountId: AccountId, instanceId: InstanceId) => Op<KubernetesNodeRecord | undefined>
  readonly listKubernetesNodes: (accountId: AccountId, clusterId: ClusterId) => Op<ReadonlyArray<KubernetesNodeRecord>>
  readonly setKubernetesNodeStatus: (accountId: AccountId, instanceId: InstanceId, status: KubernetesNodeStatus) => Op<void>
  readonly deleteKubernetesNodesOfCluster: (accountId: AccountId, clusterId: ClusterId) => Op<number>
  readonly deleteKubernetesNodeOfInstance: (accountId: AccountId, instanceId: InstanceId) => Op<void>

  // VIPs
  readonly insertVip: (vip: VipRecord) => Op<void>
  readonly getVip: (accountId: AccountId, id: VipId) => Op<VipRecord | undefined>
  readonly findVipOfCluster: (accountId: AccountId, clusterId: ClusterId) => Op<VipRecord | undefined>
  readonly listVipsOfNetwork: (accountId: AccountId, networkId: NetworkId) => Op<ReadonlyArray<VipRecord>>
  readonly listVips: (accountId: AccountId) => Op<ReadonlyArray<VipRecord>>
  /** Every VIP with a holder, across accounts, with the holder's instance: what the silence sensor watches (one query). */
  readonly listHeldVips: () => Op<ReadonlyArray<VipRecord & { readonly holder_instance_id: InstanceId }>>
  /**
   * Compare-and-set on the epoch (R13): succeeds only if the VIP is still at `expectedEpoch`.
   * Returns whether it changed.
   */
  readonly updateVipIfEpoch: (
    accountId: AccountId,
    id: VipId,
    expectedEpoch: number,
    changes: Partial<Pick<VipRecord, "holder_peer_id" | "holder_since" | "failover_holder_peer_ids" | "epoch" | "silent_epoch" | "incident" | "probe_reporters">>
  ) => Op<boolean>
  readonly deleteVip: (accountId: AccountId, id: VipId) => Op<void>
  readonly setVipAddressIpv4: (accountId: AccountId, id: VipId, address: string) => Op<void>

  // approvals
  readonly insertApproval: (approval: ApprovalRecord) => Op<void>
  readonly getApproval: (accountId: AccountId, id: ApprovalId) => Op<ApprovalRecord | undefined>
  readonly listApprovals: (accountId: AccountId, status: ApprovalStatus | undefined) => Op<ReadonlyArray<ApprovalRecord>>
  readonly findPendingApproval: (accountId: AccountId, vipId: VipId) => Op<ApprovalRecord | undefined>
  readonly decideApproval: (
    accountId: AccountId,
    id: ApprovalId,
    decision: Pick<ApprovalRecord, "status" | "decided_at" | "reason" | "resolution">
  ) => Op<boolean>

  // events
  readonly appendEvent: (accountId: AccountId, type: string, at: string, data: Record<string, unknown>) => Op<FleetEvent>
  readonly listEvents: (accountId: AccountId, since: number, limit: number) => Op<ReadonlyArray<FleetEvent>>
  /** The newest `limit` events, oldest first. */
  readonly listLatestEvents: (accountId: AccountId, limit: number) => Op<ReadonlyArray<FleetEvent>>

  // desired configs (level-triggered pushes)
  /** Stores a new desired payload; bumps the version only if the payload changed. Returns the record. */
  readonly putDesiredConfig: (
    instanceId: InstanceId,
    kind: ConfigKind,
    key: string,
    payload: unknown,
    at: string
  ) => Op<{ readonly record: DesiredConfigRecord; readonly changed: boolean }>
  /** Asks for the network's WireGuard peer lists to be rendered again (once, however often asked). */
  readonly markNetworkSyncPending: (accountId: AccountId, networkId: NetworkId, at: string) => Op<void>
  readonly listPendingNetworkSyncs: () => Op<ReadonlyArray<{ readonly account_id: AccountId; readonly network_id: NetworkId }>>
  /** Removes the request; false if another process took it first. */
  readonly takePendingNetworkSync: (networkId: NetworkId) => Op<boolean>
  /**
   * The same desired payload for every peer of a network, in one statement (a failover's VIP
   * routes for 1,000 peers); bumps only the versions whose payload changed and returns those.
   */
  readonly putDesiredConfigForNetworkPeers: (
    accountId: AccountId,
    networkId: NetworkId,
    kind: ConfigKind,
    key: string,
    payload: unknown,
    at: string
  ) => Op<ReadonlyArray<DesiredConfigRecord>>
  /**
   * An instance's desired configs; with `newerThan`, only those whose version is above the
   * one listed for their (kind, key) — without reading the payloads of the others.
   */
  readonly listDesiredConfigs: (
    instanceId: InstanceId,
    newerThan?: ReadonlyArray<{ readonly kind: string; readonly key: string; readonly version: number }>
  ) => Op<ReadonlyArray<DesiredConfigRecord>>
  readonly recordConfigAck: (instanceId: InstanceId, kind: ConfigKind, key: string, version: number, error: string | null) => Op<boolean>
  /**
   * Replaces a delivered payload without a new version (a secret the agent has stored is not
   * kept): the one at `version`, or the current one. False when `version` is no longer current.
   */
  readonly redactDesiredConfig: (instanceId: InstanceId, kind: ConfigKind, key: string, version: number | undefined, payload: unknown) => Op<boolean>

  // confirmations of destructive actions
  readonly insertConfirmation: (confirmation: ConfirmationRecord) => Op<void>
  /** Deletes and returns the confirmation: a token works once. */
  readonly takeConfirmation: (tokenHash: string) => Op<ConfirmationRecord | undefined>

  // admin API keys
  readonly insertApiKey: (key: ApiKeyRecord) => Op<void>
  readonly findApiKeyByHash: (keyHash: string) => Op<ApiKeyRecord | undefined>
  readonly revokeApiKey: (accountId: AccountId, id: string, at: string) => Op<boolean>
  readonly listApiKeys: (accountId: AccountId) => Op<ReadonlyArray<ApiKeyRecord>>

  // skill runs
  readonly putSkillRun: (run: SkillRunRecord) => Op<void>
  readonly getSkillRun: (accountId: AccountId, id: string) => Op<SkillRunRecord | undefined>
  /** The account's runs, newest first (optionally of one status). */
  readonly listSkillRuns: (accountId: AccountId, status: string | undefined) => Op<ReadonlyArray<SkillRunRecord>>
  /** Runs in one status, across accounts: what the skill runner advances. */
  readonly listSkillRunsByStatus: (status: string) => Op<ReadonlyArray<SkillRunRecord>>

  /**
   * Runs `body` so that, if it fails, what it wrote (its events too) is undone and the
   * transaction carries on without it (an SQL savepoint); its failure is returned as it was.
   * Not nested: one body at a time (a group commit's bodies, domain/group-commit.ts).
   */
  readonly inSavepoint: <A, E, R>(body: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StoreError, R>

  /**
   * On a shared store: messages to the other processes, delivered only if this transaction
   * commits. `payloads` runs at commit, once the transaction's events have their `seq`.
   */
  readonly notifyOnCommit?: (payloads: () => ReadonlyArray<string>) => void
}

/** What another gateway last saw of an agent, as shared through the store. */
export interface SharedLivenessRow {
  readonly instance_id: InstanceId
  readonly gateway: string
  readonly last_seen_at: number
  readonly connected: boolean
  readonly k3s: unknown
  readonly wireguard: unknown
  readonly load: unknown
  /** R26: the reporter's VIP probe observations (absolute times, as `VipProbeObservation`). */
  readonly vip_probes?: unknown
}

/**
 * What a store shared by several gateways (PostgreSQL) adds: messages between them that are
 * sent on commit, a lease only one process holds at a time, and each gateway's view of its
 * agents' liveness. Absent on SQLite, where one process owns the file.
 */
export interface SharedStore {
  /** This process's name among the gateways sharing the store. */
  readonly origin: string
  /** Calls `onMessage` with each payload other processes `notify` (and commit), until the scope closes. `onReconnect` after a gap. */
  readonly listen: (onMessage: (payload: string) => void, onReconnect: () => void) => Effect.Effect<void, never, Scope.Scope>
  /** Keeps trying to hold the lease `name`; `onChange` reports gaining or losing it. Released when the scope closes or the process dies. */
  readonly holdLease: (name: string, retryMs: number, onChange: (held: boolean) => void) => Effect.Effect<void, never, Scope.Scope>
  readonly publishLiveness: (rows: ReadonlyArray<SharedLivenessRow>) => Op<void>
  /** Rows other gateways wrote with `last_seen_at` after `sinceMs`. */
  readonly readLiveness: (sinceMs: number) => Op<ReadonlyArray<SharedLivenessRow>>
}

/**
 * A gate a transaction passes before it begins, shared or alone: transactions that would
 * otherwise keep aborting each other wait in turn instead. Only a way to waste less work; what
 * a transaction sees and writes is decided by the transaction alone, gated or not.
 *
 * PostgreSQL: a session-level advisory lock taken before `BEGIN` (so the snapshot is taken
 * after the wait: a transaction that waited sees everything committed while it waited) and
 * released after `COMMIT` or `ROLLBACK`; gateways on one database share the gates. SQLite runs
 * one transaction at a time anyway and ignores gates.
 */
export interface TransactionGate {
  readonly name: string
  /** `exclusive` waits until no other holds the gate; `shared` waits only while an `exclusive` holds it or waits for it. */
  readonly mode: "shared" | "exclusive"
}

export interface TransactionOptions {
  /** Passed in name order (two transactions never wait for each other's gates in a cycle). */
  readonly gates?: ReadonlyArray<TransactionGate>
}

export class Store extends Context.Service<
  Store,
  {
    /**
     * Runs `body` atomically: all of its writes commit together or none do, and a rule
     * checked inside holds when the transaction commits — SQLite serialises transactions;
     * PostgreSQL runs them SERIALIZABLE and runs `body` again after a serialization
     * conflict, so `body` must not have effects outside the transaction.
     */
    readonly transaction: <A, E, R>(body: (tx: StoreTx) => Effect.Effect<A, E, R>, options?: TransactionOptions) => Effect.Effect<A, E | StoreError, R>
    /**
     * Runs `body`, which only reads, on one consistent snapshot — cheaper than `transaction`:
     * SQLite begins it deferred (no write lock taken) and refuses a statement that writes,
     * PostgreSQL as `READ ONLY` (the server refuses a write in it). Reads that decide a write belong in `transaction`.
     */
    readonly read: <A, E, R>(body: (tx: StoreTx) => Effect.Effect<A, E, R>) => Effect.Effect<A, E | StoreError, R>
    /**
     * A number that changes when another process commits to the store, read without a
     * transaction (SQLite's `data_version`): caches of what others may change (API keys) check
     * it. Absent where other writers announce their changes as signals (PostgreSQL).
     */
    readonly externalWrites?: () => number
    /** `ok` or what `PRAGMA integrity_check` (or the backend's equivalent) found. */
    readonly integrityCheck: Op<string>
    /** Present when several processes share the store. */
    readonly shared?: SharedStore
  }
>()("@fleetplane/sdk/store/Store") {}

/**
 * A connection's prepared statements no longer fit the tables (PostgreSQL: another gateway's
 * migration altered one). Nothing was committed; the transaction can run again on a fresh
 * connection.
 */
export const hasStaleStatements = (error: unknown): boolean => error instanceof StoreError && (error.details as { stalePlans?: boolean }).stalePlans === true

/**
 * Errors that belong to a store transaction as a whole, not to the body that met them: a
 * conflict (the store runs it again), the store gone, or stale prepared statements (run again
 * on a fresh connection). A savepoint cannot set them aside: a group commit hands them to the
 * store (domain/group-commit.ts).
 */
export const failsTheTransaction = (error: unknown): boolean =>
  (error instanceof StoreError && (error.code === "store_conflict" || error.code === "store_unavailable")) || hasStaleStatements(error)
