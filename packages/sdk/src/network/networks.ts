/**
 * Creating SD-WAN networks and attaching peers. The rules themselves live in
 * network-rules.ts (R1, R3, R5), pod-prefix-overlap.ts (R2, R6) and here only R4's warning.
 */
import { Effect } from "effect"
import type { ReadContext, TxContext } from "../domain/transactor"
import { conflict, invalidInput, notFound } from "../model/errors"
import { newId, type AccountId, type NetworkId } from "../model/ids"
import { requireRunningInstance } from "../inventory/inventory-lookups"
import type { NetworkRecord, PeerRecord } from "../store/records"
import { overlaps, parseCidr, type Cidr } from "./cidr"
import {
  interfaceNameFor,
  K3S_DEFAULT_SERVICE_CIDR,
  validateHandle,
  validateListenPort,
  validateOverlayPrefix,
  validatePodPrefix
} from "./network-rules"
import { allocateOverlayPrefix, leaseOverlayAddresses } from "./overlay"
import { allocateOverlayIpv4Prefix, ensureOverlayIpv4PrefixFree, validateOverlayIpv4Prefix } from "./overlay-ipv4"
import { ensureNoPodPrefixOverlap, overlapsAnyPodPrefix } from "./pod-prefix-overlap"

export interface CreateNetworkInput {
  readonly name: string
  readonly handle: string
  readonly pod_subnet_prefix?: string | null | undefined
  readonly overlay_prefix?: string | null | undefined
  readonly overlay_ipv4_prefix?: string | null | undefined
  readonly listen_port?: number | undefined
}

export const createNetwork = (ctx: TxContext, accountId: AccountId, input: CreateNetworkInput) =>
  Effect.gen(function* () {
    const { tx } = ctx
    const name = input.name.trim()
    if (name.length === 0 || name.length > 128) {
      return yield* invalidInput("invalid_name", "name must be 1-128 characters", { name: input.name })
    }
    const handle = yield* validateHandle(input.handle)
    const listenPort = yield* validateListenPort(input.listen_port ?? 51820)
    if ((yield* tx.findNetworkByHandle(accountId, handle)) !== undefined) {
      return yield* conflict("network_handle_taken", `another network of this account already uses handle "${handle}"; pick another`, { handle })
    }
    if ((yield* tx.findNetworkByName(accountId, name)) !== undefined) {
      return yield* conflict("network_name_taken", `another network of this account is already named "${name}"; pick another name`, { name })
    }

    const warnings: Array<string> = []
    let podRange = null
    let podPrefix: string | null = null
    let podCidr: Cidr | null = null
    if (input.pod_subnet_prefix != null) {
      const cidr = yield* validatePodPrefix(input.pod_subnet_prefix)
      podRange = yield* ensureNoPodPrefixOverlap(tx, accountId, cidr)
      yield* ensurePodPrefixClearOfOverlayRanges(tx, accountId, cidr)
      podPrefix = cidr.canonical
      podCidr = cidr
      // R4: k3s's default service CIDR is 10.43.0.0/16; clusters on this network get another.
      const defaultServices = parseCidr(K3S_DEFAULT_SERVICE_CIDR)
      if (defaultServices.ok && overlaps(defaultServices.cidr, cidr)) {
        warnings.push(
          `pod_subnet_prefix ${cidr.canonical} overlaps k3s's default service CIDR ${K3S_DEFAULT_SERVICE_CIDR}; clusters bootstrapped on this network are given another service CIDR`
        )
      }
      for (const { cluster_id, service_cidr } of yield* tx.listServiceCidrs(accountId)) {
        const services = parseCidr(service_cidr)
        if (services.ok && service_cidr !== K3S_DEFAULT_SERVICE_CIDR && overlaps(services.cidr, cidr)) {
          warnings.push(`pod_subnet_prefix ${cidr.canonical} overlaps service CIDR ${service_cidr} of cluster ${cluster_id}`)
        }
      }
    }

    const account = yield* tx.getAccount(accountId)
    if (account === undefined) return yield* notFound("account_not_found", `account ${accountId} does not exist`, { account_id: accountId })
    let overlay: { prefix: string; ulaGlobalId: string | null; subnetIndex: number | null }
    if (input.overlay_prefix != null) {
      const cidr = yield* validateOverlayPrefix(input.overlay_prefix)
      // Node addresses inside the pod prefix would let one node's pod subnet draw them (R22).
      if ((podCidr !== null && overlaps(podCidr, cidr)) || (yield* overlapsAnyPodPrefix(tx, accountId, cidr))) {
        return yield* conflict("overlay_prefix_overlaps_pod_prefix", `overlay_prefix ${cidr.canonical} overlaps a pod prefix of this account; pick a /64 outside every pod prefix`, {
          overlay_prefix: cidr.canonical
        })
      }
      if (yield* tx.overlayPrefixInUse(accountId, cidr.canonical)) {
        return yield* conflict("overlay_prefix_taken", `overlay_prefix ${cidr.canonical} is already used by another network of this account`, {
          overlay_prefix: cidr.canonical
        })
      }
      overlay = { prefix: cidr.canonical, ulaGlobalId: null, subnetIndex: null }
    } else {
      overlay = yield* allocateOverlayPrefix(tx, accountId, account.ula_global_id)
    }
    let overlayIpv4Prefix: string
    if (input.overlay_ipv4_prefix != null) {
      const cidr = yield* validateOverlayIpv4Prefix(input.overlay_ipv4_prefix)
      yield* ensureOverlayIpv4PrefixFree(tx, accountId, cidr, podCidr)
      overlayIpv4Prefix = cidr.canonical
    } else {
      overlayIpv4Prefix = yield* allocateOverlayIpv4Prefix(tx, accountId, podCidr)
    }

    const network: NetworkRecord = {
      id: newId("network"),
      account_id: accountId,
      name,
      handle,
      interface_name: interfaceNameFor(handle),
      overlay_prefix: overlay.prefix,
      overlay_ipv4_prefix: overlayIpv4Prefix,
      pod_subnet_prefix: podPrefix,
      listen_port: listenPort,
      created_at: ctx.nowIso,
      ula_global_id: overlay.ulaGlobalId,
      subnet_index: overlay.subnetIndex
    }
    yield* tx.insertNetwork(network, podRange)
    yield* ctx.emit(accountId, "sdwan.network_created", {
      network_id: network.id,
      handle,
      overlay_prefix: network.overlay_prefix,
      overlay_ipv4_prefix: network.overlay_ipv4_prefix,
      pod_subnet_prefix: podPrefix,
      warnings
    })
    return { network, warnings }
  })

/** A network by id, handle or name. */
export const requireNetwork = (ctx: ReadContext, accountId: AccountId, networkRef: string) =>
  Effect.gen(function* () {
    const network =
      (yield* ctx.tx.getNetwork(accountId, networkRef as NetworkId)) ??
      (yield* ctx.tx.findNetworkByHandle(accountId, networkRef)) ??
      (yield* ctx.tx.findNetworkByName(accountId, networkRef))
    if (network === undefined) {
      return yield* notFound("network_not_found", `there is no network "${networkRef.slice(0, 128)}" (by id, handle or name) in this account; list the networks to see them`, {
        network_id: networkRef
      })
    }
    return network
  })

/** Attaches an instance to a network as a WireGuard peer with its own overlay /128. Idempotent. */
export const attachPeer = (ctx: TxContext, accountId: AccountId, networkId: string, instanceId: string) =>
  Effect.gen(function* () {
    const network = yield* requireNetwork(ctx, accountId, networkId)
    const instance = yield* requireRunningInstance(ctx, accountId, instanceId)
    const existing = yield* ctx.tx.findPeer(accountId, network.id, instance.id)
    if (existing !== undefined) return { peer: existing, network, created: false }
    const id = newId("peer")
    const addresses = yield* leaseOverlayAddresses(ctx.tx, network, id)
    const peer: PeerRecord = {
      id,
      account_id: accountId,
      network_id: network.id,
      instance_id: instance.id,
      public_key: null,
      overlay_address: addresses.ipv6,
      overlay_ipv4_address: addresses.ipv4,
      endpoint: null,
      pod_subnet: null,
      created_at: ctx.nowIso
    }
    yield* ctx.tx.insertPeer(peer)
    yield* ctx.emit(accountId, "sdwan.peer_attached", {
      peer_id: id,
      network_id: network.id,
      instance_id: instance.id,
      overlay_address: peer.overlay_address,
      overlay_ipv4_address: peer.overlay_ipv4_address
    })
    return { peer, network, created: true }
  })

/** A pod prefix may not overlap another network's IPv4 overlay range: pod routes would shadow node addresses. */
const ensurePodPrefixClearOfOverlayRanges = (tx: TxContext["tx"], accountId: AccountId, cidr: Cidr) =>
  Effect.gen(function* () {
    if (cidr.family !== 4) return
    for (const { network_id, overlay_ipv4_prefix } of yield* tx.listOverlayIpv4Prefixes(accountId)) {
      const overlay = parseCidr(overlay_ipv4_prefix)
      if (overlay.ok && overlaps(overlay.cidr, cidr)) {
        return yield* conflict(
          "pod_prefix_overlaps_overlay",
          `pod_subnet_prefix ${cidr.canonical} overlaps the IPv4 overlay range ${overlay_ipv4_prefix} of network ${network_id}; pick a pod prefix outside it`,
          { pod_subnet_prefix: cidr.canonical, conflicting_network_id: network_id, conflicting_prefix: overlay_ipv4_prefix }
        )
      }
    }
  })
