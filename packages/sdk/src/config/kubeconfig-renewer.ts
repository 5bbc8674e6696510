/**
 * The kubeconfigs pushed to a cluster's servers carry the cluster's admin client certificate
 * (a year's validity, made at bootstrap). Before it expires — 30 days ahead — a new one is
 * issued and every server gets its kubeconfig again, so a node's kubeconfig never lapses.
 * Runs on the leader, hourly; certificate generation is asynchronous, so it happens between
 * the transaction that finds what is due and the one that stores it.
 */
import { Clock, Context, Effect, Layer } from "effect"
import { makeAlarm, whileLeading } from "../domain/leader-loop"
import { Leadership } from "../domain/shared-state"
import { Transactor } from "../domain/transactor"
import { Store } from "../store/store"
import { certificateExpiry, issueClientCertificate } from "./certificates"
import { syncClusterMembers } from "./desired-configs"

export const RENEW_BEFORE_MS = 30 * 86_400_000
const RENEW_CHECK_INTERVAL_MS = 3_600_000

export class KubeconfigRenewer extends Context.Service<
  KubeconfigRenewer,
  {
    /** Renews every live cluster's admin certificate that expires within 30 days; returns the clusters renewed. */
    readonly renewDue: Effect.Effect<ReadonlyArray<string>>
    /** `renewDue` hourly while this process leads, forever (fork it). */
    readonly run: Effect.Effect<never>
  }
>()("@fleetplane/sdk/config/KubeconfigRenewer") {
  static readonly layer = Layer.effect(
    KubeconfigRenewer,
    Effect.gen(function* () {
      const store = yield* Store
      const { transact } = yield* Transactor
      const leadership = yield* Leadership
      const renewDue = Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const due = yield* store.transaction((tx) =>
          Effect.map(tx.listLiveClusters(), (clusters) => clusters.filter((c) => certificateExpiry(c.admin_cert_pem) - now < RENEW_BEFORE_MS))
        )
        const renewed: Array<string> = []
        for (const cluster of due) {
          const admin = yield* Effect.promise(() =>
            issueClientCertificate({ certPem: cluster.ca_cert_pem, keyPem: cluster.ca_key_pem }, `fleetplane-admin-${cluster.name}`, "system:masters", new Date(now))
          )
          yield* transact((ctx) =>
            Effect.gen(function* () {
              yield* ctx.tx.updateCluster(cluster.account_id, cluster.id, { admin_cert_pem: admin.certPem, admin_key_pem: admin.keyPem })
              yield* syncClusterMembers(ctx, { ...cluster, admin_cert_pem: admin.certPem, admin_key_pem: admin.keyPem })
              yield* ctx.emit(cluster.account_id, "kubernetes.node_kubeconfigs_renewed", {
                cluster_id: cluster.id,
                previous_expiry: new Date(certificateExpiry(cluster.admin_cert_pem)).toISOString(),
                expires_at: new Date(certificateExpiry(admin.certPem)).toISOString()
              })
            })
          )
          renewed.push(cluster.id)
        }
        return renewed
      }).pipe(
        Effect.catch((error) => Effect.as(Effect.logWarning("kubeconfig.renewal_failed", { error: error.message, retry: "next check" }), [] as ReadonlyArray<string>))
      )
      return KubeconfigRenewer.of({ renewDue, run: whileLeading(leadership, RENEW_CHECK_INTERVAL_MS, makeAlarm(), Effect.as(renewDue, 0)) })
    })
  )
}
