/**
 * Kubeconfigs an operator can live with: the certificate names who asked and expires soon by
 * default, the issue is audited with both, and the copies pushed to the servers are renewed
 * before they lapse.
 */
import { X509Certificate } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { expect } from "vitest"
import { Actions, KubeconfigRenewer } from "../src/index"
import { accountWithNetwork, activeCluster, desiredConfig, events, withFleet } from "./support/fleet-harness"

const clientCertificateOf = (kubeconfig: string) => new X509Certificate(Buffer.from(/client-certificate-data: (\S+)/.exec(kubeconfig)![1]!, "base64"))

describe("kubeconfigs", () => {
  it.effect("the certificate names the API key that asked, lasts 24 hours unless asked otherwise, and the event says who and until when", () =>
    withFleet()(
      Effect.gen(function* () {
        yield* TestClock.setTime(Date.parse("2026-12-01T00:00:00Z"))
        const setup = yield* accountWithNetwork()
        const { clusterId } = yield* activeCluster(setup)
        const actions = yield* Actions
        const caller = { role: "admin" as const, api_key_id: "key_0abc", name: "ops, O=evil" }
        const issued = (yield* actions.execute(setup.accountId, "kubernetes_get_kubeconfig", { cluster_id: clusterId }, caller)) as { kubeconfig: string; expires_at: string }
        const cert = clientCertificateOf(issued.kubeconfig)
        // A comma in the key's name cannot add a subject field.
        expect(cert.subject).toBe("CN=fleetplane:ops--O-evil:key_0abc\nO=system:masters")
        assert.strictEqual(Date.parse(cert.validTo) - Date.parse("2026-12-01T00:00:00Z"), 24 * 3_600_000)
        assert.strictEqual(issued.expires_at, "2026-12-02T00:00:00.000Z")
        const event = (yield* events(setup.accountId)).filter((e) => e.type === "kubernetes.kubeconfig_issued").at(-1)
        expect(event?.data).toMatchObject({ issued_to: { api_key_id: "key_0abc", role: "admin" }, expires_at: "2026-12-02T00:00:00.000Z" })
        const week = (yield* actions.execute(setup.accountId, "kubernetes_get_kubeconfig", { cluster_id: clusterId, expires_in_hours: 168 }, caller)) as { kubeconfig: string }
        assert.strictEqual(Date.parse(clientCertificateOf(week.kubeconfig).validTo) - Date.parse("2026-12-01T00:00:00Z"), 168 * 3_600_000)
      })
    )
  )

  it.effect("the kubeconfig pushed to servers is renewed 30 days before its certificate expires", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { servers } = yield* activeCluster(setup)
        const before = yield* desiredConfig(servers[0]!, "kubeconfig")
        const expiry = Date.parse(clientCertificateOf(before!.payload.content).validTo)
        const renewer = yield* KubeconfigRenewer
        yield* TestClock.setTime(expiry - 31 * 86_400_000)
        assert.deepStrictEqual(yield* renewer.renewDue, [])
        yield* TestClock.setTime(expiry - 29 * 86_400_000)
        assert.strictEqual((yield* renewer.renewDue).length, 1)
        const after = yield* desiredConfig(servers[0]!, "kubeconfig")
        assert.isAbove(after!.version, before!.version)
        assert.isAbove(Date.parse(clientCertificateOf(after!.payload.content).validTo), expiry)
        assert.isTrue((yield* events(setup.accountId)).some((e) => e.type === "kubernetes.node_kubeconfigs_renewed"))
      })
    )
  )
})
