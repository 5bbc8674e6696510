/**
 * The syncer spaces a large network's publishes by what a publish costs (#20): the next waits
 * three times as long as the last took. On PostgreSQL a publish's transaction can be run again
 * after conflicts with the very agents registering their keys; those lost attempts are not its
 * cost. Counted, a 1,000-peer fleet coming up on PostgreSQL waited ~19 s for its second publish
 * after 6 s of retries (configured in 21-30 s; 12 s once only the committed attempt counts).
 *
 * The store here is SQLite wrapped to behave as PostgreSQL does under conflicts: the publish's
 * first attempt is rolled back and run again after a backoff.
 */
import { Effect, Exit, Layer, ManagedRuntime } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { Accounts, Actions, AgentPort, fleetServicesLayer, sqliteStoreLayer, Store, type AccountId, type AgentIdentity, type StoreTx } from "../src/index"
import { storeError, type StoreError } from "../src/model/errors"
import { wireguardKeyPair } from "./support/wireguard-keys"

const BACKOFF_MS = 1_500

/** In-memory SQLite whose `transaction` is `wrap`ped (given the real one). */
const sqliteWith = (wrap: (real: Store["Service"]) => Store["Service"]["transaction"]) =>
  Layer.effect(
    Store,
    Effect.map(Effect.service(Store), (real) => Store.of({ ...real, transaction: wrap(real) }))
  ).pipe(Layer.provide(sqliteStoreLayer({ filename: ":memory:" })))

/** The body sees `takePendingNetworkSync` report to `taken` whether it took a request: whether the transaction publishes. */
const watchingPublish = (tx: StoreTx, taken: (took: boolean) => void): StoreTx => ({
  ...tx,
  takePendingNetworkSync: (networkId) => Effect.tap(tx.takePendingNetworkSync(networkId), (took) => Effect.sync(() => taken(took)))
})

/** SQLite, but the next publish (the transaction that takes a pending network sync) conflicts once and is run again after `BACKOFF_MS`. */
const storeWithOneRetriedPublish = (armed: { next: boolean; retried: number }) =>
  sqliteWith((real) => (body, options) =>
    Effect.gen(function* () {
      if (!armed.next) return yield* real.transaction(body, options)
      let publishing = false
      const lost = yield* Effect.exit(
        real.transaction((tx) =>
          Effect.tap(
            body(watchingPublish(tx, () => void (publishing = true))),
            () => (publishing ? Effect.fail(storeError("store_conflict", "a simulated serialization failure", {})) : Effect.void)
          )
        )
      )
      if (!publishing) return Exit.isSuccess(lost) ? lost.value : yield* Effect.failCause(lost.cause)
      armed.next = false
      armed.retried++
      yield* Effect.sleep(BACKOFF_MS)
      return yield* real.transaction(body, options)
    })
  )

/** SQLite, counting the publishes that committed (transactions that took a pending network sync). */
const storeCountingPublishes = (counted: { publishes: number }) =>
  sqliteWith((real) => (body, options) =>
    Effect.gen(function* () {
      let publishing = false
      const result = yield* real.transaction((tx) => body(watchingPublish(tx, (took) => void (publishing ||= took))), options)
      if (publishing) counted.publishes++
      return result
    })
  )

let dispose: (() => Promise<void>) | undefined
afterEach(async () => {
  await dispose?.()
  dispose = undefined
})

/** A fleet on `store` with one network of `peers` attached instances (no keys yet), and their agents authenticated. */
const networkOfPeers = async (store: Layer.Layer<Store, StoreError>, peers: number) => {
  const runtime = ManagedRuntime.make(fleetServicesLayer({ runSensor: true }).pipe(Layer.provideMerge(store)))
  dispose = () => runtime.dispose()
  const run = <A, E>(effect: Effect.Effect<A, E, any>) => runtime.runPromise(effect as Effect.Effect<A, E, never>)
  const account = await run(Effect.flatMap(Effect.service(Accounts), (accounts) => accounts.create("acme")))
  const exec = (name: string, input: Record<string, unknown>) =>
    run(Effect.flatMap(Effect.service(Actions), (actions) => actions.execute(account.id as AccountId, name, input))) as Promise<any>
  const network = await exec("system_sdwan_create_network", { name: "prod", handle: "prod" })
  const template = await exec("system_create_template", { name: "workers" })
  const port = await run(Effect.service(AgentPort))
  const agents: Array<AgentIdentity> = []
  for (let i = 0; i < peers; i++) {
    const node = await exec("system_create_node", { hostname: `node-${i}`, node_template_id: template.id })
    const instance = await exec("system_provision_instance", { node_id: node.id })
    await exec("system_sdwan_attach_peer", { network_id: network.id, node_instance_id: instance.id })
    agents.push(await run(port.authenticate(instance.id, instance.agent_credential)))
  }
  return { run, network, port, agents }
}

describe("the network syncer's spacing", () => {
  it("counts the attempt that committed, not attempts lost to conflicts: the next publish is not held back by them", async () => {
    const armed = { next: false, retried: 0 }
    const { run, network, port, agents } = await networkOfPeers(storeWithOneRetriedPublish(armed), 3)
    const keys = agents.map(() => wireguardKeyPair())
    const hello = (i: number) =>
      run(port.hello(agents[i]!, { wireguard_keys: [{ network_id: network.id, public_key: keys[i]!.publicKey, endpoint: `198.51.100.${i + 1}:51820` }], applied: [], held_vips: [] }))
    /** Resolves once agent c's WireGuard config lists `i`'s key; how long that took. */
    const published = async (i: number) => {
      const started = performance.now()
      for (;;) {
        const pushes = await run(port.pendingPushes(agents[2]!, []))
        const wireguard = pushes.find((push) => push.kind === "wireguard")
        if (wireguard?.kind === "wireguard" && wireguard.payload.peers.upserts.some((entry) => entry.public_key === keys[i]!.publicKey)) return performance.now() - started
        if (performance.now() - started > 20_000) throw new Error(`agent ${i}'s key was not published within 20 s`)
        await new Promise((resolve) => setTimeout(resolve, 25))
      }
    }
    // Agent c (who watches) is configured first.
    await hello(2)
    await published(2)
    // Agent a's key: its publish conflicts once and commits after the backoff.
    armed.next = true
    await hello(0)
    expect(await published(0)).toBeGreaterThanOrEqual(BACKOFF_MS - 50)
    expect(armed.retried).toBe(1)
    // Agent b's key, right after: published within the syncer's interval and a few milliseconds of spacing,
    // not 3 x the 1.5 s the retried publish spent (it would wait ~4.5 s).
    await hello(1)
    expect(await published(1)).toBeLessThan(BACKOFF_MS)
  }, 60_000)

  it("spaces a network's publishes by the pushes each causes: agents of a 300-peer network registering keys for 1.5 s get a few publishes, not one per interval", async () => {
    const counted = { publishes: 0 }
    const { run, network, port, agents } = await networkOfPeers(storeCountingPublishes(counted), 300)
    const keys = agents.map(() => wireguardKeyPair())
    // Settle what the setup requested, then count from zero.
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    counted.publishes = 0
    // Every 10 ms for 1.5 s, one more agent comes up with a fresh key and endpoint.
    const started = performance.now()
    let next = 0
    while (performance.now() - started < 1_500 && next < agents.length) {
      const i = next++
      await run(port.hello(agents[i]!, { wireguard_keys: [{ network_id: network.id, public_key: keys[i]!.publicKey, endpoint: `198.51.100.${(i % 250) + 1}:${51820 + i}` }], applied: [], held_vips: [] }))
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    const during = counted.publishes
    // Each publish changes all 300 peers' configs (a push and an ack each): at least 300 ms
    // apart. Spaced by the render alone (a few ms here), it was every 100 ms interval: ~15.
    expect(during).toBeGreaterThanOrEqual(2)
    expect(during).toBeLessThanOrEqual(6)
    // Nothing is lost to the spacing: the last key is published shortly after.
    const last = next - 1
    const deadline = performance.now() + 5_000
    for (;;) {
      const pushes = await run(port.pendingPushes(agents[0]!, []))
      const wireguard = pushes.find((push) => push.kind === "wireguard")
      if (wireguard?.kind === "wireguard" && wireguard.payload.peers.upserts.some((entry) => entry.public_key === keys[last]!.publicKey)) break
      expect(performance.now()).toBeLessThan(deadline)
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }, 90_000)
})
