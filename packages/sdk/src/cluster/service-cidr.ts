/**
 * R4 + R21: a cluster's service CIDR is of the cluster's IP family and may not overlap its pod
 * prefix, any pod prefix of the account, or an IPv4 overlay range. k3s's default (10.43.0.0/16,
 * or fd00:43::/112 for IPv6) is used when free; otherwise the first free candidate, and the
 * cluster's warnings say which one and why.
 */
import { Effect } from "effect"
import { stateError } from "../model/errors"
import type { AccountId } from "../model/ids"
import { overlaps, parseCidr } from "../network/cidr"
import { K3S_DEFAULT_IPV6_SERVICE_CIDR, K3S_DEFAULT_SERVICE_CIDR, serviceCidrCandidates } from "../network/network-rules"
import { overlapsAnyPodPrefix } from "../network/pod-prefix-overlap"
import type { StoreTx } from "../store/store"

export const allocateServiceCidr = (tx: StoreTx, accountId: AccountId, family: 4 | 6 = 4) =>
  Effect.gen(function* () {
    const defaultCidr = family === 4 ? K3S_DEFAULT_SERVICE_CIDR : K3S_DEFAULT_IPV6_SERVICE_CIDR
    const overlayRanges = (yield* tx.listOverlayIpv4Prefixes(accountId)).flatMap(({ overlay_ipv4_prefix }) => {
      const parsed = parseCidr(overlay_ipv4_prefix)
      return parsed.ok ? [parsed.cidr] : []
    })
    for (const candidate of serviceCidrCandidates(family)) {
      const parsed = parseCidr(candidate)
      if (!parsed.ok) continue
      if (overlayRanges.some((range) => overlaps(range, parsed.cidr))) continue
      if (!(yield* overlapsAnyPodPrefix(tx, accountId, parsed.cidr))) {
        const warnings =
          candidate === defaultCidr
            ? []
            : [`service CIDR ${candidate} instead of k3s's default ${defaultCidr}, which overlaps a pod prefix or overlay range of this account (R4)`]
        return { serviceCidr: candidate, warnings }
      }
    }
    return yield* stateError(
      "no_free_service_cidr",
      family === 4
        ? "every candidate service CIDR overlaps a pod prefix of this account; free a /16 in 10.0.0.0/8 or 172.16.0.0/12"
        : "every candidate IPv6 service CIDR (fd00:43::/112 to fd00:ff::/112) overlaps a pod prefix of this account; free one of them",
      {}
    )
  })
