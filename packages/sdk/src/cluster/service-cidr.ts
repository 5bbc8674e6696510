/**
 * R4: a cluster's service CIDR may not overlap its pod prefix or any pod prefix of the
 * account. k3s's default 10.43.0.0/16 is used when free; otherwise the first free
 * candidate, and the cluster's warnings say which one and why.
 */
import { Effect } from "effect"
import { stateError } from "../model/errors"
import type { AccountId } from "../model/ids"
import { parseCidr } from "../network/cidr"
import { K3S_DEFAULT_SERVICE_CIDR, serviceCidrCandidates } from "../network/network-rules"
import { overlapsAnyPodPrefix } from "../network/pod-prefix-overlap"
import type { StoreTx } from "../store/store"

export const allocateServiceCidr = (tx: StoreTx, accountId: AccountId) =>
  Effect.gen(function* () {
    for (const candidate of serviceCidrCandidates()) {
      const parsed = parseCidr(candidate)
      if (!parsed.ok) continue
      if (!(yield* overlapsAnyPodPrefix(tx, accountId, parsed.cidr))) {
        const warnings =
          candidate === K3S_DEFAULT_SERVICE_CIDR
            ? []
            : [`service CIDR ${candidate} instead of k3s's default ${K3S_DEFAULT_SERVICE_CIDR}, which overlaps a pod prefix of this account (R4)`]
        return { serviceCidr: candidate, warnings }
      }
    }
    return yield* stateError(
      "no_free_service_cidr",
      "every candidate service CIDR overlaps a pod prefix of this account; free a /16 in 10.0.0.0/8 or 172.16.0.0/12",
      {}
    )
  })
