/**
 * The syncer spaces a large network's publishes by what a publish costs (#20): the next waits
 * three times as long as the last took. On PostgreSQL a publish's transaction can be run again
 * after conflicts with the very agents registering their keys; those lost attempts are not its
 * cost. Counted, a 1,000-peer fleet coming up on PostgreSQL waited ~19 s for its second publish
 * after 6 s of retries (configured in 21-30 s; 12 s once only the committed attempt counts).
 *
 * It also spaces them by the fan-out a publish causes (a push per peer whose config changed,
 * each carrying the entries that changed): enough that a network coming up is not published on
 * every interval, and no more, so one peer moving in a large network does not hold the next
 * change back a millisecond per peer.
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
  /** Resolves once `watcher`'s WireGuard config lists `publicKey`; how long that took. */
  const published = async (watcher: AgentIdentity, publicKey: string, withinMs = 20_000) => {
    const started = performance.now()
    for (;;) {
      const pushes = await run(port.pendingPushes(watcher, []))
      const wireguard = pushes.find((push) => push.kind === "wireguard")
      if (wireguard?.kind === "wireguard" && wireguard.payload.peers.upserts.some((entry) => entry.public_key === publicKey)) return performance.now() - started
      if (performance.now() - started > withinMs) throw new Error(`${publicKey} was not published within ${withinMs} ms`)
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }
  return { run, network, port, agents, published }
}

/** Agent `i` says hello with `key` and a fresh endpoint. */
const helloWith = (fleet: Awaited<ReturnType<typeof networkOfPeers>>, i: number, key: { readonly publicKey: string }, port = 51820) =>
  fleet.run(
    fleet.port.hello(fleet.agents[i]!, {
      wireguard_keys: [{ network_id: fleet.network.id, public_key: key.publicKey, endpoint: `198.51.100.${(i % 250) + 1}:${port}` }],
      applied: [],
      held_vips: []
    })
  )

describe("the network syncer's spacing", () => {
  it("counts the attempt that committed, not attempts lost to conflicts: the next publish is not held back by them", async () => {
    const armed = { next: false, retried: 0 }
    const fleet = await networkOfPeers(storeWithOneRetriedPublish(armed), 3)
    const keys = fleet.agents.map(() => wireguardKeyPair())
    const hello = (i: number) => helloWith(fleet, i, keys[i]!)
    const published = (i: number) => fleet.published(fleet.agents[2]!, keys[i]!.publicKey)
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

  it("spaces a network's publishes by the pushes each causes: agents of a 1,000-peer network registering keys for 1.5 s get a few publishes, not one per interval", async () => {
    const counted = { publishes: 0 }
    const fleet = await networkOfPeers(storeCountingPublishes(counted), 1_000)
    const keys = fleet.agents.map(() => wireguardKeyPair())
    // Settle what the setup requested, then count from zero.
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    counted.publishes = 0
    // Every 10 ms for 1.5 s, one more agent comes up with a fresh key and endpoint.
    const started = performance.now()
    let next = 0
    while (performance.now() - started < 1_500 && next < fleet.agents.length) {
      const i = next++
      await helloWith(fleet, i, keys[i]!, 51820 + i)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    const during = counted.publishes
    // Each publish changes all 1,000 peers' configs (a push and an ack each) and carries the
    // keys that came up since: ~0.1 ms a push plus ~0.01 ms an entry, so ~0.6 s apart here.
    // Spaced by the render alone (a few ms here), it was every 100 ms interval: ~15.
    expect(during).toBeGreaterThanOrEqual(2)
    expect(during).toBeLessThanOrEqual(6)
    // Nothing is lost to the spacing: the last key is published shortly after.
    await fleet.published(fleet.agents[0]!, keys[next - 1]!.publicKey, 5_000)
  }, 90_000)

  it("spaces a small change by what its pushes carry: after one peer moves in a 2,000-peer network, the next is published within a second, not 1 ms per peer later", async () => {
    const fleet = await networkOfPeers(sqliteStoreLayer({ filename: ":memory:" }), 2_000)
    const keys = [0, 1, 2].map(() => wireguardKeyPair())
    const watcher = fleet.agents[2]!
    // The watcher, then a first peer: each publish changes all 2,000 peers' configs (one entry each).
    await helloWith(fleet, 2, keys[2]!)
    await fleet.published(watcher, keys[2]!.publicKey)
    await helloWith(fleet, 0, keys[0]!)
    await fleet.published(watcher, keys[0]!.publicKey)
    // A second, right after the first was published: held back by the first publish's fan-out
    // (2,000 one-entry pushes, ~0.2 s) and its render, not 2,000 x 1 ms = 2 s.
    await helloWith(fleet, 1, keys[1]!)
    expect(await fleet.published(watcher, keys[1]!.publicKey)).toBeLessThan(1_000)
  }, 120_000)
})
