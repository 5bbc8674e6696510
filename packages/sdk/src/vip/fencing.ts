/**
 * R13 fencing at the session edge: given the VIPs an agent says it holds (in `hello`), the
 * messages that bring it in line with the store — release what it no longer holds (or holds
 * at a stale epoch), take what it should hold.
 */
import { Effect } from "effect"
import type { VipAssign, VipRelease } from "@fleetplane/agent-protocol"
import type { AgentIdentity } from "../model/entities"
import type { VipId } from "../model/ids"
import type { StoreTx } from "../store/store"

export type VipDirective = VipAssign | VipRelease

export const vipDirectivesFor = (tx: StoreTx, identity: AgentIdentity, held: ReadonlyArray<{ readonly vip_id: string; readonly epoch: number }>) =>
  Effect.gen(function* () {
    const directives: Array<VipDirective> = []
    const peers = yield* tx.listPeersOfInstance(identity.accountId, identity.instanceId)
    const myPeers = new Set<string>(peers.map((p) => p.id))
    const heldById = new Map(held.map((h) => [h.vip_id, h.epoch]))

    for (const { vip_id, epoch } of held) {
      const vip = yield* tx.getVip(identity.accountId, vip_id as VipId)
      if (vip === undefined) {
        directives.push({ type: "vip_release", body: { vip_id, address: "", epoch: epoch + 1, reason: "decommissioned" } })
      } else if (vip.holder_peer_id === null || !myPeers.has(vip.holder_peer_id)) {
        directives.push({ type: "vip_release", body: { vip_id, address: vip.address, addresses: [vip.address, vip.address_ipv4], epoch: vip.epoch, reason: "fenced" } })
      }
    }
    for (const peer of peers) {
      for (const vip of yield* tx.listVipsOfNetwork(identity.accountId, peer.network_id)) {
        if (vip.holder_peer_id === peer.id && heldById.get(vip.id) !== vip.epoch) {
          directives.push({
            type: "vip_assign",
            body: {
              vip_id: vip.id,
              cluster_id: vip.cluster_id,
              network_id: vip.network_id,
              address: vip.address,
              addresses: [vip.address, vip.address_ipv4],
              epoch: vip.epoch
            }
          })
        }
      }
    }
    return directives
  })
