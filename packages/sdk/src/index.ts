/**
 * @fleetplane/sdk — the Fleetplane domain: accounts, SD-WAN networks, K3s clusters,
 * VIP failover, tokens and config generators, on embedded SQLite.
 *
 * Two front doors: `createFleet()` (Promises) and `fleetLayer()` (Effect).
 */

// Front doors
export { createFleet, fleetFacade, FleetplaneError, type AccountOperations, type ActionMethods, type CreateFleetOptions, type Fleet } from "./facade/create-fleet"
export { fleetLayer, fleetServicesLayer, type FleetLayerOptions, type FleetServices } from "./fleet-layer"
export { jsonLogLine, loggingLayer, type LoggingOptions, type LogLevel as FleetLogLevel } from "./domain/logging"
export { otlpTracesUrl, tracingLayer, type TracingOptions } from "./domain/tracing"

// Services (Effect API)
export { Accounts } from "./accounts/accounts"
export { ApiKeys, type ApiKeyIdentity, type ApiKeySummary, type CreatedApiKey } from "./accounts/api-keys"
export { ApiKeyRole, HOST_CALLER, roleAllows, type ActionCaller } from "./accounts/roles"
export { Actions, type ActionsService } from "./actions/executor"
export { AgentPort, type AgentPortService, type HelloResult, type PeerNetwork, type PendingPushRequest } from "./agents/agent-port"
export { toPush, type PeerVersions, type PreparedPushes, type PushRequest } from "./agents/push-completion"
export type { AgentRefusal } from "./cluster/lifecycle"
export { VipSensor } from "./vip/sensor"
export { SkillRunner } from "./upgrade/skill-runner"
export { NetworkSyncer, requestNetworkWireguardSync } from "./config/network-syncer"
export { KubeconfigRenewer, RENEW_BEFORE_MS } from "./config/kubeconfig-renewer"
export { Signals, type Signal } from "./domain/signals"
export { Leadership, sharedStateLayer } from "./domain/shared-state"
export { Transactor, type TxContext } from "./domain/transactor"
export { AgentLiveness, type AgentLivenessEntry, type AgentLivenessService } from "./domain/liveness"
export { Interned, internedOwnStrings, internedStringLists, internedStrings, ownString } from "./domain/interned"
export { DEFAULT_FLEET_CONFIG, FleetConfig, type FleetConfigShape } from "./domain/fleet-config"
export { Store, type PrefixRange, type SharedLivenessRow, type SharedStore, type StoreTx, type TransactionGate, type TransactionOptions } from "./store/store"
export { openSqliteStore, sqliteStoreLayer, type SqliteStoreOptions } from "./store/sqlite/sqlite-store"
export { openPostgresStore, postgresStoreLayer, type PostgresStoreOptions } from "./store/postgres/postgres-store"
export type * from "./store/records"

// The action catalog
export { actionCatalog, describeActions, isActionName, type ActionDescription, type ActionInput, type ActionName, type ActionOutput } from "./actions/catalog"
export type { ActionDefinition, ActionScope } from "./actions/action"

// Model
export * from "./model/ids"
export * from "./model/entities"
export * from "./model/errors"

// Domain steps inside a transaction (Transactor.transact), for bulk imports: attach many
// peers, then render the network's WireGuard configs once instead of once per peer.
export { attachPeer } from "./network/networks"
export { syncNetworkVipRoutes, syncNetworkWireguard } from "./config/desired-configs"

// Rules and generators, usable on their own
export { parseCidr, overlaps, contains, formatAddress, type Cidr, type IpFamily } from "./network/cidr"
export {
  interfaceNameFor,
  K3S_DEFAULT_CLUSTER_CIDR,
  K3S_DEFAULT_SERVICE_CIDR,
  validateHandle,
  validateListenPort,
  validateOverlayPrefix,
  validatePodPrefix
} from "./network/network-rules"
export { haWarnings } from "./cluster/ha-warnings"
export { JOIN_REJECTION_CODES, RETRY_AFTER_MS, type JoinOutcome } from "./cluster/join-request"
export { scoreFailoverCandidate, WEIGHTS as FAILOVER_SCORE_WEIGHTS, type CandidateScore } from "./vip/scoring"
/** How recent a handshake counts as a live tunnel; agents count them (`summarizeHandshakes`) and the score reads the share. */
export { FRESH_HANDSHAKE_MS } from "@fleetplane/agent-protocol"
export { planRollingUpgrade, type RollingUpgradePlan, type UpgradeTarget } from "./upgrade/rolling-upgrade-plan"
export { ROLLING_UPGRADE_SKILL, type RollingUpgradeState } from "./upgrade/rolling-upgrade-run"
export { formatJoinToken, JOIN_TOKEN_PATTERN, tokenFingerprint } from "./token/join-token"
export { renderKubeconfig, apiEndpointFor, type KubeconfigInput } from "./config/kubeconfig"
export { overlayPrefixesOf, peerEntryOf, peerSetChange, publishPeerSet } from "./config/wireguard"
export { addressFamilyMismatches, renderK3sConfig, type K3sConfigInput } from "./config/k3s-config"
export { parseWireguardEndpoint } from "./network/endpoint"
export { decidePodSubnet, PER_NODE_PREFIX_LENGTH } from "./network/pod-subnet"
export { DEFAULT_OVERLAY_IPV4_PREFIX_LENGTH, OVERLAY_IPV4_POOL } from "./network/overlay-ipv4"
export { clusterAddressingFor } from "./cluster/address-family"
export { createClusterCa, issueClientCertificate, type KeyPairPem } from "./config/certificates"
export { credentialMatches, hashSecret } from "./agents/credentials"
export type { VipDirective } from "./vip/fencing"
