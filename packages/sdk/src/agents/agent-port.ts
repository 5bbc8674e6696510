/**
 * What an agent session needs from the domain, without sockets: authenticate, record hello,
 * heartbeats and status reports, decide joins, record acks, and say which pushes and VIP
 * directives an instance should receive. The gateway (or any other host) only moves
 * messages between a socket and this port.
 */
import { Clock, Context, Effect, Layer } from "effect"
import type { AppliedConfig, ConfigAckBody, ConfigPushBody, HeartbeatBody, HelloBody, JoinRequestBody, StatusReportBody, WireguardKeysBody } from "@fleetplane/agent-protocol"
import { AgentLiveness } from "../domain/liveness"
import { Transactor, type TxContext } from "../domain/transactor"
import { unauthorized, type StateError, type StoreError, type UnauthorizedError } from "../model/errors"
import type { AgentIdentity } from "../model/entities"
import type { InstanceId, NetworkId } from "../model/ids"
import { createClusterCa, issueClientCertificate } from "../config/certificates"
import { requestNetworkWireguardSync } from "../config/network-syncer"
import { recordStatusReport } from "../cluster/lifecycle"
import { validateJoinRequest, type BootstrapMaterial, type JoinOutcome } from "../cluster/join-request"
import { vipDirectivesFor, type VipDirective } from "../vip/fencing"
import type { DesiredConfigRecord } from "../store/records"
import { credentialMatches } from "./credentials"

export interface HelloResult {
  readonly identity: AgentIdentity
  /** The SD-WAN networks the instance is a peer of (it needs a WireGuard key for each). */
  readonly networkIds: ReadonlyArray<string>
  readonly pushes: ReadonlyArray<ConfigPushBody>
  readonly vipDirectives: ReadonlyArray<VipDirective>
}

export interface AgentPortService {
  /** Checks the credential in constant time. Unknown instance and wrong credential look the same. */
  readonly authenticate: (instanceId: string, credential: string) => Effect.Effect<AgentIdentity, UnauthorizedError | StoreError>
  /** After `welcome`: records keys and endpoint, and returns what the agent is missing. */
  readonly hello: (
    identity: AgentIdentity,
    hello: Pick<HelloBody, "wireguard_keys" | "applied" | "held_vips">,
    remoteAddress: string | undefined
  ) => Effect.Effect<HelloResult, StoreError>
  /** WireGuard public keys an agent made after its hello; peers of those networks get new configs. */
  readonly registerWireguardKeys: (identity: AgentIdentity, keys: WireguardKeysBody["keys"]) => Effect.Effect<void, StoreError>
  /** The hot path: memory only. */
  readonly heartbeat: (identity: AgentIdentity, heartbeat: HeartbeatBody) => Effect.Effect<void>
  readonly disconnected: (identity: AgentIdentity) => Effect.Effect<void>
  readonly statusReport: (identity: AgentIdentity, report: StatusReportBody) => Effect.Effect<void, StoreError>
  readonly joinRequest: (identity: AgentIdentity, request: JoinRequestBody) => Effect.Effect<JoinOutcome, StateError | StoreError>
  readonly configAck: (identity: AgentIdentity, ack: ConfigAckBody) => Effect.Effect<void, StoreError>
  /** Desired configs newer than `applied` (pass [] to get everything); only those payloads are read. */
  readonly pendingPushes: (instanceId: InstanceId, applied: ReadonlyArray<AppliedConfig>) => Effect.Effect<ReadonlyArray<ConfigPushBody>, StoreError>
  readonly vipDirectives: (identity: AgentIdentity, held: HelloBody["held_vips"]) => Effect.Effect<ReadonlyArray<VipDirective>, StoreError>
}

const toPush = (record: DesiredConfigRecord): ConfigPushBody =>
  ({ kind: record.kind, key: record.key, version: record.version, payload: record.payload }) as ConfigPushBody


/**
 * Records an agent's WireGuard public keys (and, when known, the address it connects from as
 * its endpoint); asks for the configs of every network where something changed to be rendered again.
 * Returns the networks the instance is a peer of.
 */
const updatePeerKeys = (
  ctx: TxContext,
  identity: AgentIdentity,
  keys: ReadonlyArray<{ readonly network_id: string; readonly public_key: string }>,
  remoteAddress: string | undefined
) =>
  Effect.gen(function* () {
    const peers = yield* ctx.tx.listPeersOfInstance(identity.accountId, identity.instanceId)
    const changedNetworks = new Set<NetworkId>()
    for (const peer of peers) {
      const key = keys.find((k) => k.network_id === peer.network_id)?.public_key ?? peer.public_key
      const network = yield* ctx.tx.getNetwork(identity.accountId, peer.network_id)
      // The WireGuard endpoint is the address the agent connects from, on the network's port.
      const endpoint =
        remoteAddress === undefined || network === undefined
          ? peer.endpoint
          : `${remoteAddress.includes(":") ? `[${remoteAddress}]` : remoteAddress}:${network.listen_port}`
      if (key !== peer.public_key || endpoint !== peer.endpoint) {
        yield* ctx.tx.updatePeer(identity.accountId, peer.id, { public_key: key, endpoint })
        changedNetworks.add(peer.network_id)
      }
    }
    // Coalesced: many agents registering keys at once cost one re-render per network.
    for (const networkId of changedNetworks) yield* requestNetworkWireguardSync(ctx, identity.accountId, networkId)
    return peers.map((p) => p.network_id as string)
  })

export class AgentPort extends Context.Service<AgentPort, AgentPortService>()("@fleetplane/sdk/agents/AgentPort") {
  static readonly layer = Layer.effect(
    AgentPort,
    Effect.gen(function* () {
      const { transact } = yield* Transactor
      const liveness = yield* AgentLiveness

      const authenticate = (instanceId: string, credential: string) =>
        transact((ctx) =>
          Effect.gen(function* () {
            const instance = yield* ctx.tx.getInstanceForAuthentication(instanceId as InstanceId)
            const ok = credentialMatches(credential, instance?.credential_hash)
            if (!ok || instance === undefined) {
              return yield* unauthorized("authentication_failed", "unknown instance or wrong agent credential; use the credential printed when the instance was provisioned", {})
            }
            if (instance.status !== "running") {
              return yield* unauthorized("instance_terminated", "this instance was terminated; provision a new instance for this machine", { instance_id: instance.id })
            }
            const node = yield* ctx.tx.getNode(instance.account_id, instance.node_id)
            return { accountId: instance.account_id, instanceId: instance.id, nodeId: instance.node_id, hostname: node?.hostname ?? instance.id } satisfies AgentIdentity
          })
        )

      const pendingPushes = (instanceId: InstanceId, applied: ReadonlyArray<AppliedConfig>) =>
        transact((ctx) => Effect.map(ctx.tx.listDesiredConfigs(instanceId, applied), (records) => records.map(toPush)))

      const hello = (identity: AgentIdentity, body: Pick<HelloBody, "wireguard_keys" | "applied" | "held_vips">, remoteAddress: string | undefined) =>
        Effect.gen(function* () {
          liveness.recordConnected(identity.instanceId, yield* Clock.currentTimeMillis)
          return yield* transact((ctx) =>
            Effect.gen(function* () {
              const networkIds = yield* updatePeerKeys(ctx, identity, body.wireguard_keys, remoteAddress)
              const pushes = (yield* ctx.tx.listDesiredConfigs(identity.instanceId, body.applied)).map(toPush)
              const vipDirectives = yield* vipDirectivesFor(ctx.tx, identity, body.held_vips)
              return { identity, pushes, vipDirectives, networkIds }
            })
          )
        })

      const registerWireguardKeys = (identity: AgentIdentity, keys: WireguardKeysBody["keys"]) =>
        transact((ctx) => Effect.asVoid(updatePeerKeys(ctx, identity, keys, undefined)))

      const heartbeat = (identity: AgentIdentity, beat: HeartbeatBody) =>
        Effect.map(Clock.currentTimeMillis, (now) => liveness.recordHeartbeat(identity.instanceId, now, beat.k3s, beat.wireguard, beat.load))

      const statusReport = (identity: AgentIdentity, report: StatusReportBody) =>
        Effect.gen(function* () {
          // A status report is a sign of life and the latest k3s state; load and handshakes keep
          // whatever the last heartbeat said (no invented load figures for the failover score).
          liveness.recordStatus(identity.instanceId, yield* Clock.currentTimeMillis, report.k3s)
          yield* transact((ctx) => recordStatusReport(ctx, identity, report.k3s))
        })

      const joinRequest = (identity: AgentIdentity, request: JoinRequestBody) =>
        Effect.gen(function* () {
          // Key generation is async, so CA material for a possible bootstrap is made before the transaction.
          const material: BootstrapMaterial | undefined =
            request.module_name === "k3s-server" && request.target_cluster_id === null
              ? yield* Effect.promise(async () => {
                  const now = new Date()
                  const ca = await createClusterCa(identity.hostname, now)
                  return { ca, admin: await issueClientCertificate(ca, `fleetplane-admin-${identity.hostname}`, "system:masters", now) }
                })
              : undefined
          return yield* transact((ctx) =>
            validateJoinRequest(
              ctx,
              identity,
              {
                module_name: request.module_name,
                target_cluster_id: request.target_cluster_id,
                ...(request.token_fingerprint === undefined ? {} : { token_fingerprint: request.token_fingerprint })
              },
              material
            )
          )
        })

      const configAck = (identity: AgentIdentity, ack: ConfigAckBody) =>
        transact((ctx) =>
          Effect.gen(function* () {
            const error = ack.status === "failed" ? `${ack.error?.code ?? "apply_failed"}: ${ack.error?.message ?? "no details"}` : null
            const recorded = yield* ctx.tx.recordConfigAck(identity.instanceId, ack.kind, ack.key, ack.version, error)
            if (recorded && error !== null) {
              yield* ctx.emit(identity.accountId, "config.apply_failed", {
                instance_id: identity.instanceId,
                kind: ack.kind,
                key: ack.key,
                version: ack.version,
                error: ack.error ?? null
              })
            }
          })
        )

      const vipDirectives = (identity: AgentIdentity, held: HelloBody["held_vips"]) => transact((ctx) => vipDirectivesFor(ctx.tx, identity, held))

      return AgentPort.of({
        authenticate,
        hello,
        registerWireguardKeys,
        heartbeat,
        disconnected: (identity) => Effect.sync(() => liveness.recordDisconnected(identity.instanceId)),
        statusReport,
        joinRequest,
        configAck,
        pendingPushes,
        vipDirectives
      })
    })
  )
}
