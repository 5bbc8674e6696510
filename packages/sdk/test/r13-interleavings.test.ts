/**
 * R13 as a property: whatever the interleaving of silences, returns, approvals (on time,
 * late, duplicated), manual failovers and a decommission, a VIP never has two holders for
 * one epoch, every holder change bumps the epoch, and a stale holder is always told to release.
 */
import { describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"
import { expect } from "vitest"
import { AgentPort, VipSensor } from "../src/index"
import { accountWithNetwork, activeCluster, events, exec, heartbeat, testFleet, type SimAgent } from "./support/fleet-harness"

type Command =
  | { readonly kind: "silence"; readonly server: number }
  | { readonly kind: "return"; readonly server: number }
  | { readonly kind: "tick"; readonly ms: number }
  | { readonly kind: "approve_first" }
  | { readonly kind: "approve_all" }
  | { readonly kind: "reject_first" }
  | { readonly kind: "manual_failover" }
  | { readonly kind: "decommission" }

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("silence" as const), server: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("return" as const), server: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 1_000, max: 20_000 }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: "approve_first" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "approve_all" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "reject_first" as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: "manual_failover" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "decommission" as const }) }
)

let totalPromotions = 0

const runScenario = (commands: ReadonlyArray<Command>, policy: "automatic" | "require_approval") =>
  Effect.gen(function* () {
    const setup = yield* accountWithNetwork({ vipPolicy: policy })
    const { servers, vipId, clusterId } = yield* activeCluster(setup, { servers: 3 })
    const silent = new Set<SimAgent>()
    const sensor = yield* VipSensor
    const port = yield* AgentPort
    const attempt = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.exit(effect)
    /** A destructive call through its confirmation; refusals (no candidate, already decommissioned) are fine. */
    const confirmed = (name: string, input: Record<string, unknown>) =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(exec(setup.accountId, name, input)).pipe(Effect.orElseSucceed(() => undefined))
        if (error?.code === "confirmation_required") yield* attempt(exec(setup.accountId, name, { ...input, confirmation_token: error.details.confirmation_token }))
      })

    for (const step of commands) {
      switch (step.kind) {
        case "silence":
          silent.add(servers[step.server]!)
          break
        case "return":
          silent.delete(servers[step.server]!)
          break
        case "tick":
          for (let t = 0; t < step.ms; t += 5_000) {
            yield* TestClock.adjust(Math.min(5_000, step.ms - t))
            for (const server of servers) if (!silent.has(server)) yield* heartbeat(server)
            yield* sensor.check
          }
          break
        case "approve_first":
        case "approve_all":
        case "reject_first": {
          const { approvals } = yield* exec(setup.accountId, "system_list_approvals", { status: "pending" })
          const targets = step.kind === "approve_all" ? approvals : approvals.slice(0, 1)
          for (const approval of targets) {
            // Decide twice: duplicated decisions must be harmless.
            const name = step.kind === "reject_first" ? "system_reject" : "system_approve"
            yield* attempt(exec(setup.accountId, name, { approval_id: approval.id }))
            yield* attempt(exec(setup.accountId, name, { approval_id: approval.id }))
          }
          break
        }
        case "manual_failover":
          yield* confirmed("system_sdwan_failover_virtual_ip", { virtual_ip_id: vipId })
          break
        case "decommission":
          yield* confirmed("kubernetes_decommission_cluster", { cluster_id: clusterId })
          break
      }
    }

    // Invariants, from the event log (every holder change) and the final state.
    const log = yield* events(setup.accountId)
    const promotions = log.filter((e) => e.type === "sdwan.vip_failover_promoted")
    totalPromotions += promotions.length
    const holderByEpoch = new Map<number, string>()
    let lastEpoch = 1
    for (const promotion of promotions) {
      expect(promotion.data.epoch).toBe(lastEpoch + 1)
      expect(holderByEpoch.has(promotion.data.epoch)).toBe(false)
      holderByEpoch.set(promotion.data.epoch, promotion.data.to_peer_id)
      expect(promotion.data.to_peer_id).not.toBe(promotion.data.from_peer_id)
      lastEpoch = promotion.data.epoch
    }
    const cluster = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
    if (cluster.virtual_ip !== null) {
      expect(cluster.virtual_ip.epoch).toBe(lastEpoch)
      // Exactly one server is told it holds the VIP; every other one is told to release.
      let holders = 0
      for (const server of servers) {
        const hello = yield* port.hello(server.identity, { wireguard_keys: [], applied: [], held_vips: [{ vip_id: vipId, epoch: 1 }] })
        const released = hello.vipDirectives.some((d) => d.type === "vip_release")
        const assigned = hello.vipDirectives.some((d) => d.type === "vip_assign")
        if (!released) holders++
        expect(released && assigned).toBe(false)
      }
      expect(holders).toBe(1)
    } else {
      expect(cluster.status).toBe("decommissioned")
    }
  })

describe("R13 under random interleavings", () => {
  for (const policy of ["require_approval", "automatic"] as const) {
    it(`never two holders for one epoch, and stale holders always release (${policy})`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 25 }), (commands) =>
          Effect.runPromise(Effect.provide(runScenario(commands, policy), testFleet()).pipe(Effect.provide(TestClock.layer())) as Effect.Effect<void>)
        ),
        { numRuns: 40 }
      )
      // The property is only meaningful if the interleavings really moved VIPs around. Over 40
      // random runs there are usually 13-28 promotions; a CI run once drew exactly 10, so the
      // bar is low enough not to fail on an unlucky draw and still catches "nothing moved".
      expect(totalPromotions).toBeGreaterThan(4)
      totalPromotions = 0
    }, 120_000)
  }
})
