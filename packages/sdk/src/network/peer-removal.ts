/**
 * A peer leaving its network (R25): used when an instance is terminated and when an operator
 * detaches a peer. A peer holding a VIP never leaves (the VIP would go with it); as a failover
 * holder it is dropped from the list; its addresses are free again and every other peer's
 * config loses it.
 */
import { Effect } from "effect"
import type { TxContext } from "../domain/transactor"
import { stateError } from "../model/errors"
import type { AccountId } from "../model/ids"
import type { PeerRecord } from "../store/records"
import { requestNetworkWireguardSync } from "../config/network-syncer"

/** Fails with `instance_holds_vip` when the peer holds a VIP of its network. */
export const ensurePeerHoldsNoVip = (ctx: TxContext, accountId: AccountId, peer: PeerRecord) =>
  Effect.gen(function* () {
    for (const vip of yield* ctx.tx.listVipsOfNetwork(accountId, peer.network_id)) {
      if (vip.holder_peer_id === peer.id) {
        return yield* stateError(
          "instance_holds_vip",
          `instance ${peer.instance_id} holds the VIP ${vip.address} of cluster ${vip.cluster_id}; fail the VIP over first (system_sdwan_failover_virtual_ip)`,
          { virtual_ip_id: vip.id, cluster_id: vip.cluster_id }
        )
      }
    }
  })

/** Removes a peer that holds no VIP (check with `ensurePeerHoldsNoVip` first). */
export const removePeer = (ctx: TxContext, accountId: AccountId, peer: PeerRecord) =>
  Effect.gen(function* () {
    for (const vip of yield* ctx.tx.listVipsOfNetwork(accountId, peer.network_id)) {
      if (vip.failover_holder_peer_ids.includes(peer.id)) {
        yield* ctx.tx.updateVipIfEpoch(accountId, vip.id, vip.epoch, { failover_holder_peer_ids: vip.failover_holder_peer_ids.filter((p) => p !== peer.id) })
      }
    }
    yield* ctx.tx.deletePeer(accountId, peer.id)
    yield* ctx.tx.releaseLease(peer.network_id, peer.id)
    yield* requestNetworkWireguardSync(ctx, accountId, peer.network_id)
  })
