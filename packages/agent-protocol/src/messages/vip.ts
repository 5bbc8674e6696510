/**
 * VIP holder changes with epochs (R13). The gateway tells the new holder to take the
 * address and a stale holder to release it; the agent acks what it holds.
 */
import { Schema } from "effect"
import { boundedArray, Count, defineMessage as message, Id, ShortText } from "./fields"

export const VipAssignBody = Schema.Struct({
  vip_id: Id,
  cluster_id: Id,
  network_id: Id,
  /** The VIP /128, e.g. `fd12:3456:789a:1::100`. */
  address: ShortText,
  /** Every address of the VIP, one per family (`fd12:…::5`, `100.64.0.5`): the holder adds each to its loopback. */
  addresses: Schema.optionalKey(boundedArray(ShortText, 4)),
  epoch: Count
})
export const VipAssign = message("vip_assign", VipAssignBody)
export type VipAssign = typeof VipAssign.Type

export const VipReleaseBody = Schema.Struct({
  vip_id: Id,
  address: ShortText,
  /** Every address of the VIP, one per family: the receiver removes each from its loopback. */
  addresses: Schema.optionalKey(boundedArray(ShortText, 4)),
  /** The VIP's current epoch; the receiver holds an older one. */
  epoch: Count,
  reason: Schema.Literals(["fenced", "failover", "decommissioned"])
})
export const VipRelease = message("vip_release", VipReleaseBody)
export type VipRelease = typeof VipRelease.Type

export const VipAckBody = Schema.Struct({
  vip_id: Id,
  epoch: Count,
  held: Schema.Boolean
})
export const VipAck = message("vip_ack", VipAckBody)
export type VipAck = typeof VipAck.Type
export type VipAssignBody = typeof VipAssignBody.Type
export type VipReleaseBody = typeof VipReleaseBody.Type
export type VipAckBody = typeof VipAckBody.Type
