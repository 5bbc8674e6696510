/**
 * R2 and R6: no two networks of an account have overlapping pod prefixes, and the check
 * is O(log n). The account's pod prefixes are disjoint (this rule keeps them so), so a new
 * range overlaps some prefix iff it overlaps its nearest neighbour on either side — two
 * indexed lookups, not a scan.
 */
import { Effect } from "effect"
import { conflict, type ConflictError, type StoreError } from "../model/errors"
import type { AccountId } from "../model/ids"
import type { PrefixRange, StoreTx } from "../store/store"
import { rangeKey, type Cidr } from "./cidr"

export const prefixRangeOf = (cidr: Cidr): PrefixRange => ({ family: cidr.family, startKey: rangeKey(cidr.start), endKey: rangeKey(cidr.end) })

/** Fails with `pod_prefix_overlap`, naming the network it collides with. */
export const ensureNoPodPrefixOverlap = (
  tx: StoreTx,
  accountId: AccountId,
  cidr: Cidr
): Effect.Effect<PrefixRange, ConflictError | StoreError> =>
  Effect.gen(function* () {
    const range = prefixRangeOf(cidr)
    const neighbours = yield* tx.podPrefixNeighbours(accountId, range)
    const collision = neighbours.find((n) => n.startKey <= range.endKey && range.startKey <= n.endKey)
    if (collision !== undefined) {
      return yield* conflict(
        "pod_prefix_overlap",
        `pod_subnet_prefix ${cidr.canonical} overlaps ${collision.pod_subnet_prefix} of network "${collision.name}" (${collision.id}); pick a prefix outside it — pod prefixes must be distinct within an account`,
        { pod_subnet_prefix: cidr.canonical, conflicting_network_id: collision.id, conflicting_network_name: collision.name, conflicting_prefix: collision.pod_subnet_prefix }
      )
    }
    return range
  })

/** R4: does a range overlap any pod prefix of the account (for choosing a service CIDR)? */
export const overlapsAnyPodPrefix = (tx: StoreTx, accountId: AccountId, cidr: Cidr) =>
  Effect.map(tx.podPrefixNeighbours(accountId, prefixRangeOf(cidr)), (neighbours) => {
    const range = prefixRangeOf(cidr)
    return neighbours.some((n) => n.startKey <= range.endKey && range.startKey <= n.endKey)
  })
