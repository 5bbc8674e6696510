/**
 * What an agent session needs from the domain, without sockets: authenticate, record hello,
 * heartbeats and status reports, decide joins, record acks, and say which pushes and VIP
 * directives an instance should receive. The gateway (or any other host) only moves
 * messages between a socket and this port.
 */
import { Clock, Context, Effect, Layer } from "effect"
import type {
  AppliedConfig,
  ConfigAckBody,
  ConfigPushBody,
  HeartbeatBody,
  HelloBody,
  JoinRequestBody,
  ModuleAssignment as WireModuleAssignment,
  StatusReportBody,
  WireguardKeyEntry,
  WireguardKeysBody
} from "@fleetplane/agent-protocol"
import { AgentLiveness } from "../domain/liveness"
import { Transactor, type TxContext } from "../domain/transactor"
import { unauthorized, type StateError, type StoreError, type UnauthorizedError } from "../model/errors"
import type { AgentIdentity } from "../model/entities"
import type { InstanceId, NetworkId } from "../model/ids"
import { createClusterCa, issueClientCertificate } from "../config/certificates"
import { peerSetGate, requestNetworkWireguardSync } from "../config/network-syncer"
import { recordStatusReport, type AgentRefusal } from "../cluster/lifecycle"
import { wireAssignments } from "../cluster/assignments"
import { parseWireguardEndpoint } from "../network/endpoint"
import { validateJoinRequest, type BootstrapMaterial, type JoinOutcome } from "../cluster/join-request"
import { vipDirectivesFor, type VipDirective } from "../vip/fencing"
import type { DesiredConfigRecord } from "../store/records"
import { createPushCompleter, type PeerVersions, type PreparedPushes, type PushRequest } from "./push-completion"
import { AGENT_CREDENTIAL_KIND, confirmAgentCredential, matchAgentCredential } from "./credential-rotation"
import { createPresenceDamper, type PresenceDecision } from "./presence-events"

/** A network the instance is a peer of, as `welcome` describes it. */
export interface PeerNetwork {
  readonly network_id: string
  readonly interface_name: string
  readonly listen_port: number
}

export interface HelloResult {
  readonly identity: AgentIdentity
  /** The SD-WAN networks the instance is a peer of (it needs a WireGuard key for each). */
  readonly networkIds: ReadonlyArray<string>
  readonly networks: ReadonlyArray<PeerNetwork>
  readonly pushes: ReadonlyArray<ConfigPushBody>
  readonly vipDirectives: ReadonlyArray<VipDirective>
  /** Keys or endpoints of the hello that were refused (R23, `invalid_endpoint`); the rest was recorded. */
  readonly refusals: ReadonlyArray<AgentRefusal>
  /** R24: the module assignments of the instance's template: what its agent joins. */
  readonly assignments: ReadonlyArray<WireModuleAssignment>
}

export interface AgentPortService {
  /** Checks the credential in constant time. Unknown instance and wrong credential look the same. */
  readonly authenticate: (instanceId: string, credential: string) => Effect.Effect<AgentIdentity, UnauthorizedError | StoreError>
  /** Before `welcome`: records keys and advertised endpoints, and returns what the agent is missing. */
  readonly hello: (identity: AgentIdentity, hello: Pick<HelloBody, "wireguard_keys" | "applied" | "held_vips" | "peer_versions">) => Effect.Effect<HelloResult, StoreError>
  /** WireGuard public keys (and endpoints) an agent sent after its hello; peers of those networks get new configs. Returns what was refused. */
  readonly registerWireguardKeys: (identity: AgentIdentity, keys: WireguardKeysBody["keys"]) => Effect.Effect<ReadonlyArray<AgentRefusal>, StoreError>
  /** The hot path: memory only. */
  readonly heartbeat: (identity: AgentIdentity, heartbeat: HeartbeatBody) => Effect.Effect<void>
  /** The agent's last session here ended: liveness and a (damped) `agent.disconnected` event. */
  readonly disconnected: (identity: AgentIdentity) => Effect.Effect<void, StoreError>
  /** Records k3s state (and the pod subnet, as R22 allows); returns what was refused. */
  readonly statusReport: (identity: AgentIdentity, report: StatusReportBody) => Effect.Effect<ReadonlyArray<AgentRefusal>, StoreError>
  readonly joinRequest: (identity: AgentIdentity, request: JoinRequestBody) => Effect.Effect<JoinOutcome, StateError | StoreError>
  readonly configAck: (identity: AgentIdentity, ack: ConfigAckBody) => Effect.Effect<void, StoreError>
  /** Many agents' acks in one transaction (a host's group commit: a fan-out to 1,000 peers is a few commits, not 1,000). */
  readonly configAcks: (acks: ReadonlyArray<{ readonly identity: AgentIdentity; readonly ack: ConfigAckBody }>) => Effect.Effect<void, StoreError>
  /**
   * Desired configs newer than `applied` (pass [] to get everything); only those payloads are
   * read. A `wireguard` push carries the peer-set change from the version in `peerVersions`
   * (the full set when the network is not listed).
   */
  readonly pendingPushes: (identity: AgentIdentity, applied: ReadonlyArray<AppliedConfig>, peerVersions?: PeerVersions) => Effect.Effect<ReadonlyArray<ConfigPushBody>, StoreError>
  /** Desired configs a commit carried (`DesiredConfigsChanged.changes`), as pushes: `wireguard` ones get their peer-set change. */
  readonly completePushes: (identity: AgentIdentity, records: ReadonlyArray<DesiredConfigRecord>, peerVersions: PeerVersions) => Effect.Effect<ReadonlyArray<ConfigPushBody>, StoreError>
  /**
   * The same for many sessions (a publish that reaches every peer of a network): what they are
   * made of is read in one transaction (one read of the network's peers); each session's pushes
   * are then made on demand, when it is their turn to be sent (see `PreparedPushes`).
   */
  readonly completePushesMany: (requests: ReadonlyArray<PushRequest>) => Effect.Effect<PreparedPushes, StoreError>
  /**
   * `pendingPushes` for many sessions in one read transaction: another gateway's commit (whose
   * signal carries no records) reaching every session of a network here costs one read, not
   * one per session. Answers in the order asked, as `completePushesMany` does.
   */
  readonly pendingPushesMany: (requests: ReadonlyArray<PendingPushRequest>) => Effect.Effect<PreparedPushes, StoreError>
  readonly vipDirectives: (identity: AgentIdentity, held: HelloBody["held_vips"]) => Effect.Effect<ReadonlyArray<VipDirective>, StoreError>
}



/**
 * Records an agent's WireGuard public keys and the endpoints it advertises, refusing a key
 * another peer of the network holds (R23) and a malformed endpoint; asks for the configs of
 * every network where something changed to be rendered again. The endpoint is only ever what
 * the agent advertised: the address its WebSocket comes from is wrong behind NAT or a proxy.
 */
const updatePeerKeys = (ctx: TxContext, identity: AgentIdentity, entries: ReadonlyArray<WireguardKeyEntry>) =>
  Effect.gen(function* () {
    const peers = yield* ctx.tx.listPeersOfInstance(identity.accountId, identity.instanceId)
    const changedNetworks = new Set<NetworkId>()
    const refusals: Array<AgentRefusal> = []
    for (const peer of peers) {
      const entry = entries.find((k) => k.network_id === peer.network_id)
      if (entry === undefined) continue
      let endpoint = peer.endpoint
      if (entry.endpoint !== undefined) {
        const parsed = parseWireguardEndpoint(entry.endpoint)
        if (!parsed.ok) {
          yield* ctx.emit(identity.accountId, "sdwan.endpoint_refused", { instance_id: identity.instanceId, peer_id: peer.id, network_id: peer.network_id, reason: parsed.reason })
          refusals.push({ code: "invalid_endpoint", message: `endpoint for network ${peer.network_id} refused: ${parsed.reason}; nothing was changed` })
          continue
        }
        endpoint = parsed.endpoint
      }
      if (entry.public_key !== peer.public_key) {
        // R23: a public key belongs to one peer of a network, or traffic for one would reach another.
        const holder = yield* ctx.tx.findPeerByPublicKey(identity.accountId, peer.network_id, entry.public_key)
        if (holder !== undefined && holder.id !== peer.id) {
          yield* ctx.emit(identity.accountId, "sdwan.wireguard_key_refused", {
            instance_id: identity.instanceId,
            peer_id: peer.id,
            network_id: peer.network_id,
            held_by_peer_id: holder.id
          })
          refusals.push({
            code: "wireguard_key_in_use",
            message: `WireGuard key for network ${peer.network_id} refused: another peer of the network (${holder.id}) holds it; generate a new key pair on this node (each node needs its own)`
          })
          continue
        }
      }
      if (entry.public_key !== peer.public_key || endpoint !== peer.endpoint) {
        yield* ctx.tx.updatePeer(identity.accountId, peer.id, { public_key: entry.public_key, endpoint })
        changedNetworks.add(peer.network_id)
      }
    }
    // Coalesced: many agents registering keys at once cost one re-render per network.
    for (const networkId of changedNetworks) yield* requestNetworkWireguardSync(ctx, identity.accountId, networkId)
    return { peers, refusals }
  })

export class AgentPort extends Context.Service<AgentPort, AgentPortService>()("@fleetplane/sdk/agents/AgentPort") {
  static readonly layer = Layer.effect(
    AgentPort,
    Effect.gen(function* () {
      const { transact, transactTogether, read } = yield* Transactor
      const liveness = yield* AgentLiveness

      const authenticate = (instanceId: string, credential: string) =>
        transact((ctx) =>
          Effect.gen(function* () {
            const instance = yield* ctx.tx.getInstanceForAuthentication(instanceId as InstanceId)
            const matched = matchAgentCredential(instance, credential, ctx.nowIso)
            if (matched === undefined || instance === undefined) {
              return yield* unauthorized("authentication_failed", "unknown instance or wrong agent credential; use the credential printed when the instance was provisioned", {})
            }
            if (instance.status !== "running") {
              return yield* unauthorized("instance_terminated", "this instance was terminated; provision a new instance for this machine", { instance_id: instance.id })
            }
            const node = yield* ctx.tx.getNode(instance.account_id, instance.node_id)
            const identity: AgentIdentity = { accountId: instance.account_id, instanceId: instance.id, nodeId: instance.node_id, hostname: node?.hostname ?? instance.id }
            // Authenticating with a rotated credential confirms the agent has it.
            if (matched === "current" && instance.previous_credential_hash != null) yield* confirmAgentCredential(ctx, identity, undefined)
            return identity
          })
        )

      const { completePushes, prepareMany } = createPushCompleter()
      /** The span of making pushes: for which agent (or how many sessions), and how many pushes came of it. */
      const pushSpan =
        <A>(name: string, attributes: Record<string, unknown>, pushesIn: (made: A) => number) =>
        <E, R>(effect: Effect.Effect<A, E, R>) =>
          effect.pipe(
            Effect.tap((made) => Effect.annotateCurrentSpan("fleetplane.pushes", pushesIn(made))),
            Effect.withSpan(name, { attributes }, { captureStackTrace: false })
          )
      const count = (pushes: ReadonlyArray<ConfigPushBody>) => pushes.length
      const pushCountOf = (prepared: PreparedPushes) => prepared.pushCount
      const pendingPushes = (identity: AgentIdentity, applied: ReadonlyArray<AppliedConfig>, peerVersions: PeerVersions = new Map()) =>
        read((ctx) => Effect.flatMap(ctx.tx.listDesiredConfigs(identity.instanceId, applied), (records) => completePushes(ctx, identity, records, peerVersions))).pipe(
          pushSpan("AgentPort.pendingPushes", { "fleetplane.instance_id": identity.instanceId }, count)
        )

      const presence = createPresenceDamper()
      const presenceEvent = (ctx: TxContext, identity: AgentIdentity, type: "agent.connected" | "agent.disconnected", decision: PresenceDecision) =>
        decision.record
          ? Effect.asVoid(
              ctx.emit(identity.accountId, type, {
                instance_id: identity.instanceId,
                hostname: identity.hostname,
                ...(decision.suppressed > 0 ? { suppressed_events: decision.suppressed } : {})
              })
            )
          : Effect.void

      const hello = (identity: AgentIdentity, body: Pick<HelloBody, "wireguard_keys" | "applied" | "held_vips" | "peer_versions">) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          liveness.recordConnected(identity.instanceId, now)
          // Decided outside the transaction: its body may run again (PostgreSQL retries).
          const announce = presence.admit(identity.instanceId, now)
          // A fleet coming up says hello at once: hellos are decided in group commits, so on
          // PostgreSQL they do not abort each other (each writes index pages the others read).
          return yield* transactTogether(
            (ctx) =>
              Effect.gen(function* () {
                yield* presenceEvent(ctx, identity, "agent.connected", announce)
                const { peers, refusals } = yield* updatePeerKeys(ctx, identity, body.wireguard_keys)
                const peerVersions = new Map((body.peer_versions ?? []).map((p) => [p.network_id, p.version]))
                // Independent reads together: on PostgreSQL each group is one round trip, not one per read
                // (a fleet coming up on PostgreSQL is bounded by its hellos: ~100/s at 1,000 agents).
                const [found, records, vipDirectives, node] = yield* Effect.all(
                  [
                    Effect.forEach(peers, (peer) => ctx.tx.getNetwork(identity.accountId, peer.network_id), { concurrency: "unbounded" }),
                    ctx.tx.listDesiredConfigs(identity.instanceId, body.applied),
                    vipDirectivesFor(ctx.tx, identity, body.held_vips),
                    ctx.tx.getNode(identity.accountId, identity.nodeId)
                  ],
                  { concurrency: "unbounded" }
                )
                const [pushes, template] = yield* Effect.all(
                  [
                    completePushes(ctx, identity, records, peerVersions),
                    node === undefined ? Effect.succeed(undefined) : ctx.tx.getTemplate(identity.accountId, node.node_template_id)
                  ],
                  { concurrency: "unbounded" }
                )
                const networks: Array<PeerNetwork> = found.flatMap((network) =>
                  network === undefined ? [] : [{ network_id: network.id, interface_name: network.interface_name, listen_port: network.listen_port }]
                )
                const assignments = wireAssignments(template)
                return { identity, pushes, vipDirectives, networkIds: networks.map((n) => n.network_id), networks, refusals, assignments } satisfies HelloResult
              }),
            { gates: [peerSetGate(identity.accountId, "shared")] }
          )
        })

      const registerWireguardKeys = (identity: AgentIdentity, keys: WireguardKeysBody["keys"]) =>
        transact((ctx) => Effect.map(updatePeerKeys(ctx, identity, keys), ({ refusals }) => refusals), { gates: [peerSetGate(identity.accountId, "shared")] })

      const heartbeat = (identity: AgentIdentity, beat: HeartbeatBody) =>
        Effect.map(Clock.currentTimeMillis, (now) => liveness.recordHeartbeat(identity.instanceId, now, beat.k3s, beat.wireguard, beat.load, beat.vip_probes))

      const statusReport = (identity: AgentIdentity, report: StatusReportBody) =>
        Effect.gen(function* () {
          // A status report is a sign of life and the latest k3s state; load and handshakes keep
          // whatever the last heartbeat said (no invented load figures for the failover score).
          liveness.recordStatus(identity.instanceId, yield* Clock.currentTimeMillis, report.k3s)
          return yield* transact((ctx) => recordStatusReport(ctx, identity, report.k3s))
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
          // Agents of a fleet coming up join at once: their joins are decided in group commits.
          return yield* transactTogether((ctx) =>
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
          ).pipe(
            Effect.tap((outcome) =>
              Effect.annotateCurrentSpan(
                outcome.accepted
                  ? { "fleetplane.join.accepted": true, "fleetplane.cluster_id": outcome.cluster_id, "fleetplane.join.role": outcome.role }
                  : { "fleetplane.join.accepted": false, "fleetplane.join.code": outcome.code }
              )
            )
          )
        }).pipe(
          Effect.withSpan(
            "AgentPort.joinRequest",
            { attributes: { "fleetplane.instance_id": identity.instanceId, "fleetplane.account_id": identity.accountId, "fleetplane.join.module": request.module_name } },
            { captureStackTrace: false }
          )
        )

      /** One ack, inside a transaction: the applied version recorded, or the failure as an event. */
      const recordAck = (ctx: TxContext, identity: AgentIdentity, ack: ConfigAckBody) =>
        Effect.gen(function* () {
          const error = ack.status === "failed" ? `${ack.error?.code ?? "apply_failed"}: ${ack.error?.message ?? "no details"}` : null
          const recorded = yield* ctx.tx.recordConfigAck(identity.instanceId, ack.kind, ack.key, ack.version, error)
          if (recorded && error === null && ack.kind === AGENT_CREDENTIAL_KIND) yield* confirmAgentCredential(ctx, identity, ack.version)
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
      // Acks write the rows a publish rewrites (their acked version): on PostgreSQL a publish that
      // met acks committed since it began was aborted (a bring-up acks all the time), so they take turns.
      const configAck = (identity: AgentIdentity, ack: ConfigAckBody) =>
        transact((ctx) => recordAck(ctx, identity, ack), { gates: [peerSetGate(identity.accountId, "shared")] })
      const configAcks = (acks: ReadonlyArray<{ readonly identity: AgentIdentity; readonly ack: ConfigAckBody }>) =>
        acks.length === 0
          ? Effect.void
          : // Started in order, so PostgreSQL runs them in order, but without waiting one by one: one round trip for the batch.
            transact((ctx) => Effect.forEach(acks, ({ identity, ack }) => recordAck(ctx, identity, ack), { concurrency: "unbounded", discard: true }), {
              gates: acks.map(({ identity }) => peerSetGate(identity.accountId, "shared"))
            })

      const vipDirectives = (identity: AgentIdentity, held: HelloBody["held_vips"]) => read((ctx) => vipDirectivesFor(ctx.tx, identity, held))

      return AgentPort.of({
        authenticate,
        hello,
        registerWireguardKeys,
        heartbeat,
        disconnected: (identity) =>
          Effect.gen(function* () {
            liveness.recordDisconnected(identity.instanceId)
            const announce = presence.admit(identity.instanceId, yield* Clock.currentTimeMillis)
            if (announce.record) yield* transact((ctx) => presenceEvent(ctx, identity, "agent.disconnected", announce))
          }),
        statusReport,
        joinRequest,
        configAck,
        configAcks,
        pendingPushes,
        completePushes: (identity, records, peerVersions) =>
          read((ctx) => completePushes(ctx, identity, records, peerVersions)).pipe(
            pushSpan("AgentPort.completePushes", { "fleetplane.instance_id": identity.instanceId }, count)
          ),
        completePushesMany: (requests) =>
          requests.length === 0
            ? Effect.succeed(NO_PUSHES)
            : read((ctx) => prepareMany(ctx, requests)).pipe(
                pushSpan("AgentPort.completePushesMany", { "fleetplane.sessions": requests.length }, pushCountOf)
              ),
        pendingPushesMany: (requests) =>
          requests.length === 0
            ? Effect.succeed(NO_PUSHES)
            : read((ctx) =>
                Effect.flatMap(
                  // Together: on PostgreSQL the sessions' reads share round trips.
                  Effect.forEach(requests, ({ identity, applied }) => ctx.tx.listDesiredConfigs(identity.instanceId, applied), { concurrency: "unbounded" }),
                  (records) => prepareMany(ctx, requests.map(({ identity, peerVersions }, i) => ({ identity, records: records[i]!, peerVersions })))
                )
              ).pipe(
                pushSpan("AgentPort.pendingPushesMany", { "fleetplane.sessions": requests.length }, pushCountOf)
              ),
        vipDirectives
      })
    })
  )
}

const NO_PUSHES: PreparedPushes = { size: 0, pushCount: 0, pushesFor: () => undefined }

/** One session's resume in `pendingPushesMany`: what its agent has, and its peer-set versions. */
export interface PendingPushRequest {
  readonly identity: AgentIdentity
  readonly applied: ReadonlyArray<AppliedConfig>
  readonly peerVersions: PeerVersions
}
