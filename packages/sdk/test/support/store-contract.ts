/**
 * The store contract: what any `Store` implementation must do, as a suite that takes a
 * factory. The SQLite store runs it today; a PostgreSQL store must pass the same suite.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { newId, Store, type AccountId, type InstanceId, type NetworkId, type PeerId, type StoreTx } from "../../src/index"

type StoreFactory = () => Layer.Layer<Store, unknown>

const seedAccount = (tx: StoreTx) =>
  Effect.gen(function* () {
    const id = newId("account")
    yield* tx.insertAccount({ id, name: "acme", created_at: "2026-01-01T00:00:00.000Z", ula_global_id: "fd12:3456:789a" })
    return id
  })

const seedInstance = (tx: StoreTx, accountId: AccountId) =>
  Effect.gen(function* () {
    const templateId = newId("template")
    yield* tx.insertTemplate({ id: templateId, account_id: accountId, name: `t-${templateId}`, modules: [], created_at: "2026-01-01T00:00:00.000Z" })
    const nodeId = newId("node")
    yield* tx.insertNode({ id: nodeId, account_id: accountId, hostname: `h-${nodeId.slice(-6)}`, node_template_id: templateId, created_at: "2026-01-01T00:00:00.000Z" })
    const instanceId = newId("instance")
    yield* tx.insertInstance({ id: instanceId, account_id: accountId, node_id: nodeId, status: "running", credential_hash: "00", created_at: "2026-01-01T00:00:00.000Z" })
    return instanceId
  })

let seededNetworks = 0
const seedNetwork = (tx: StoreTx, accountId: AccountId, handle: string, pod: { family: 4 | 6; startKey: string; endKey: string } | null = null) =>
  Effect.gen(function* () {
    const id = newId("network")
    yield* tx.insertNetwork(
      {
        id,
        account_id: accountId,
        name: handle,
        handle,
        interface_name: `wg-sdwan-${handle}`,
        overlay_prefix: `fd12:3456:789a:${handle.length}${Math.floor(Math.random() * 1000).toString(16)}::/64`,
        overlay_ipv4_prefix: `100.${64 + ((seededNetworks >> 8) & 63)}.${seededNetworks++ & 255}.0/24`,
        pod_subnet_prefix: pod === null ? null : "x",
        listen_port: 51820,
        created_at: "2026-01-01T00:00:00.000Z",
        ula_global_id: null,
        subnet_index: null
      },
      pod
    )
    return id
  })

export const storeContract = (name: string, makeStore: StoreFactory) =>
  describe(`store contract: ${name}`, () => {
    const withStore = <A, E>(body: (store: Store["Service"]) => Effect.Effect<A, E>) =>
      Effect.provide(Effect.flatMap(Effect.service(Store), body), makeStore()) as Effect.Effect<A, unknown>

    it.live("a failed transaction changes nothing", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const failed = yield* Effect.flip(
            store.transaction((tx) =>
              Effect.gen(function* () {
                yield* seedAccount(tx)
                return yield* Effect.fail("boom" as const)
              })
            )
          )
          assert.strictEqual(failed, "boom")
          const count = yield* store.transaction((tx) => tx.listEvents("acc_x" as AccountId, 0, 10))
          assert.strictEqual(count.length, 0)
          const id = yield* store.transaction(seedAccount)
          assert.isDefined(yield* store.transaction((tx) => tx.getAccount(id)))
        })
      )
    )

    it.live("a read sees what was committed, and refuses to write: the write fails and nothing of it is kept", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const id = yield* store.transaction(seedAccount)
          assert.strictEqual((yield* store.read((tx) => tx.getAccount(id)))?.id, id)
          const refused = yield* Effect.flip(store.read(seedAccount))
          assert.strictEqual((refused as { code?: string }).code, "store_failed")
          assert.strictEqual((yield* store.read((tx) => tx.listAccounts())).length, 1)
          // Writes work again after a refused read.
          yield* store.transaction(seedAccount)
          assert.strictEqual((yield* store.read((tx) => tx.listAccounts())).length, 2)
        })
      )
    )

    it.live("a defect inside a transaction rolls back too", () =>
      withStore((store) =>
        Effect.gen(function* () {
          let created: AccountId | undefined
          yield* Effect.exit(
            store.transaction((tx) =>
              Effect.gen(function* () {
                created = yield* seedAccount(tx)
                return yield* Effect.die(new Error("bug"))
              })
            )
          )
          assert.isUndefined(yield* store.transaction((tx) => tx.getAccount(created!)))
        })
      )
    )

    it.live("a savepoint undoes a failed body's writes and events, and the transaction commits the rest; a failed statement inside one too", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const [a, kept, dropped, broken] = [newId("account"), newId("account"), newId("account"), newId("account")]
          const account = (id: AccountId, name: string) => ({ id, name, created_at: "2026-01-01T00:00:00.000Z", ula_global_id: "fd12:3456:789a" })
          const outcomes = yield* store.transaction((tx) =>
            Effect.gen(function* () {
              yield* tx.insertAccount(account(a, "a"))
              const first = yield* Effect.exit(tx.inSavepoint(Effect.andThen(tx.insertAccount(account(kept, "kept")), tx.appendEvent(a, "kept", "2026-01-01T00:00:00.000Z", {}))))
              const second = yield* Effect.exit(
                tx.inSavepoint(
                  Effect.gen(function* () {
                    yield* tx.insertAccount(account(dropped, "dropped"))
                    yield* tx.appendEvent(a, "dropped", "2026-01-01T00:00:00.000Z", {})
                    return yield* Effect.fail("refused" as const)
                  })
                )
              )
              // A statement the database refuses (a NOT NULL column left empty) fails its body only.
              const third = yield* Effect.exit(tx.inSavepoint(Effect.andThen(tx.insertAccount(account(broken, "broken")), tx.insertAccount(account(newId("account"), null as never)))))
              yield* tx.appendEvent(a, "after", "2026-01-01T00:00:00.000Z", {})
              return [first, second, third] as const
            })
          )
          assert.isTrue(Exit.isSuccess(outcomes[0]))
          assert.deepStrictEqual(outcomes[1], Exit.fail("refused"))
          assert.isTrue(Exit.isFailure(outcomes[2]))
          const names = (yield* store.read((tx) => tx.listAccounts())).map((x) => x.name).sort()
          assert.deepStrictEqual(names, ["a", "kept"])
          assert.deepStrictEqual((yield* store.read((tx) => tx.listEvents(a, 0, 10))).map((e) => e.type), ["kept", "after"])
        })
      )
    )

    it.live("account-scoped reads never return another account's rows", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const [a, b] = yield* store.transaction((tx) => Effect.all([seedAccount(tx), seedAccount(tx)]))
          const instance = yield* store.transaction((tx) => seedInstance(tx, a))
          const network = yield* store.transaction((tx) => seedNetwork(tx, a, "prod"))
          assert.isDefined(yield* store.transaction((tx) => tx.getInstance(a, instance)))
          assert.isUndefined(yield* store.transaction((tx) => tx.getInstance(b, instance)))
          assert.isUndefined(yield* store.transaction((tx) => tx.getNetwork(b, network)))
          assert.strictEqual((yield* store.transaction((tx) => tx.listNetworks(b))).length, 0)
        })
      )
    )

    it.live("overlay leases hand out each host number once per network", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const account = yield* store.transaction(seedAccount)
          const network = yield* store.transaction((tx) => seedNetwork(tx, account, "prod"))
          const leases = yield* Effect.all(
            Array.from({ length: 20 }, (_, i) => store.transaction((tx) => tx.leaseNextHostIndex(network, `owner-${i}`))),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(new Set(leases.map(String)).size, 20)
          yield* store.transaction((tx) => tx.releaseLease(network, "owner-19"))
          const next = yield* store.transaction((tx) => tx.leaseNextHostIndex(network, "late"))
          assert.isFalse(leases.slice(0, 19).includes(next))
        })
      )
    )

    it.live("pod prefix neighbours are the nearest ranges before and after, per family", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const account = yield* store.transaction(seedAccount)
          const key = (n: number) => n.toString(16).padStart(32, "0")
          yield* store.transaction((tx) => seedNetwork(tx, account, "a", { family: 4, startKey: key(100), endKey: key(199) }))
          yield* store.transaction((tx) => seedNetwork(tx, account, "b", { family: 4, startKey: key(300), endKey: key(399) }))
          yield* store.transaction((tx) => seedNetwork(tx, account, "c", { family: 6, startKey: key(250), endKey: key(260) }))
          const around = yield* store.transaction((tx) => tx.podPrefixNeighbours(account, { family: 4, startKey: key(250), endKey: key(260) }))
          assert.deepStrictEqual(around.map((n) => n.name), ["a", "b"])
          const first = yield* store.transaction((tx) => tx.podPrefixNeighbours(account, { family: 4, startKey: key(1), endKey: key(2) }))
          assert.deepStrictEqual(first.map((n) => n.name), ["a"])
        })
      )
    )

    it.live("desired configs bump their version only when the payload changes, and acks never go backwards", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const account = yield* store.transaction(seedAccount)
          const instance = yield* store.transaction((tx) => seedInstance(tx, account))
          const put = (payload: unknown) => store.transaction((tx) => tx.putDesiredConfig(instance, "wireguard", "net_1", payload, "2026-01-01T00:00:00.000Z"))
          const v1 = yield* put({ a: 1 })
          const same = yield* put({ a: 1 })
          const v2 = yield* put({ a: 2 })
          assert.deepStrictEqual([v1.record.version, v1.changed, same.record.version, same.changed, v2.record.version, v2.changed], [1, true, 1, false, 2, true])
          assert.isTrue(yield* store.transaction((tx) => tx.recordConfigAck(instance, "wireguard", "net_1", 2, null)))
          assert.isFalse(yield* store.transaction((tx) => tx.recordConfigAck(instance, "wireguard", "net_1", 1, null)))
          assert.isFalse(yield* store.transaction((tx) => tx.recordConfigAck(instance, "wireguard", "net_1", 9, null)))
          const [record] = yield* store.transaction((tx) => tx.listDesiredConfigs(instance))
          assert.strictEqual(record?.acked_version, 2)
        })
      )
    )

    it.live("one desired payload for every peer of a network: one statement, versions move only where it changed", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const account = yield* store.transaction(seedAccount)
          const network = yield* store.transaction((tx) => seedNetwork(tx, account, "prod"))
          const instances = [yield* store.transaction((tx) => seedInstance(tx, account)), yield* store.transaction((tx) => seedInstance(tx, account))]
          for (const [i, instance] of instances.entries()) {
            yield* store.transaction((tx) =>
              tx.insertPeer({
                id: newId("peer"),
                account_id: account,
                network_id: network,
                instance_id: instance,
                public_key: null,
                overlay_address: `fd12:3456:789a:1::${i + 10}`,
                overlay_ipv4_address: `100.64.1.${i + 10}`,
                endpoint: null,
                pod_subnet: null,
                created_at: "2026-01-01T00:00:00.000Z"
              })
            )
          }
          const put = (payload: unknown) =>
            store.transaction((tx) => tx.putDesiredConfigForNetworkPeers(account, network, "vip_routes", network, payload, "2026-01-01T00:00:00.000Z"))
          const first = yield* put({ routes: ["a"] })
          assert.deepStrictEqual(first.map((r) => r.version), [1, 1])
          assert.sameMembers(first.map((r) => r.instance_id), instances)
          assert.deepStrictEqual(yield* put({ routes: ["a"] }), [])
          const second = yield* put({ routes: ["b"] })
          assert.deepStrictEqual(second.map((r) => r.version), [2, 2])
          assert.deepStrictEqual(second[0]?.payload, { routes: ["b"] })
          const [record] = yield* store.transaction((tx) => tx.listDesiredConfigs(instances[0]!))
          assert.deepStrictEqual([record?.kind, record?.version], ["vip_routes", 2])
          // What it answers is the stored record, acked version included (built, not read back row by row).
          yield* store.transaction((tx) => tx.recordConfigAck(instances[0]!, "vip_routes", network, 2, null))
          const third = yield* store.transaction((tx) =>
            tx.putDesiredConfigForNetworkPeers(account, network, "vip_routes", network, { routes: ["c"] }, "2026-01-01T00:00:05.000Z")
          )
          for (const instance of instances) {
            const answered = third.find((r) => r.instance_id === instance)
            const [stored] = yield* store.transaction((tx) => tx.listDesiredConfigs(instance))
            assert.deepStrictEqual(answered, stored)
          }
          assert.deepStrictEqual(third.find((r) => r.instance_id === instances[0])?.acked_version, 2)
        })
      )
    )

    it.live("a network sync is requested once however often it is asked for, and taken once", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const account = yield* store.transaction(seedAccount)
          const network = yield* store.transaction((tx) => seedNetwork(tx, account, "prod"))
          yield* store.transaction((tx) => tx.markNetworkSyncPending(account, network, "2026-01-01T00:00:00.000Z"))
          yield* store.transaction((tx) => tx.markNetworkSyncPending(account, network, "2026-01-01T00:00:01.000Z"))
          assert.deepStrictEqual(yield* store.transaction((tx) => tx.listPendingNetworkSyncs()), [{ account_id: account, network_id: network }])
          assert.isTrue(yield* store.transaction((tx) => tx.takePendingNetworkSync(network)))
          assert.isFalse(yield* store.transaction((tx) => tx.takePendingNetworkSync(network)))
          assert.deepStrictEqual(yield* store.transaction((tx) => tx.listPendingNetworkSyncs()), [])
        })
      )
    )

    it.live("desired configs can be listed newer than what an agent has, per (kind, key)", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const account = yield* store.transaction(seedAccount)
          const instance = yield* store.transaction((tx) => seedInstance(tx, account))
          const put = (kind: "wireguard" | "vip_routes", payload: unknown) =>
            store.transaction((tx) => tx.putDesiredConfig(instance, kind, "net_1", payload, "2026-01-01T00:00:00.000Z"))
          yield* put("wireguard", { peers: 1 })
          yield* put("wireguard", { peers: 2 })
          yield* put("vip_routes", { routes: 1 })
          const newer = (known: Array<{ kind: string; key: string; version: number }>) =>
            Effect.map(store.transaction((tx) => tx.listDesiredConfigs(instance, known)), (records) => records.map((r) => `${r.kind}@${r.version}`))
          assert.deepStrictEqual(yield* newer([]), ["vip_routes@1", "wireguard@2"])
          assert.deepStrictEqual(yield* newer([{ kind: "wireguard", key: "net_1", version: 2 }]), ["vip_routes@1"])
          assert.deepStrictEqual(yield* newer([{ kind: "wireguard", key: "net_1", version: 1 }, { kind: "vip_routes", key: "net_1", version: 1 }]), ["wireguard@2"])
          assert.deepStrictEqual(yield* newer([{ kind: "wireguard", key: "other", version: 9 }]), ["vip_routes@1", "wireguard@2"])
          const [routes] = yield* store.transaction((tx) => tx.listDesiredConfigs(instance, [{ kind: "wireguard", key: "net_1", version: 2 }]))
          assert.deepStrictEqual(routes?.payload, { routes: 1 })
        })
      )
    )

    it.live("an instance's node and template, by the instance's id: the same rows as by theirs, and nothing across accounts", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const account = yield* store.transaction(seedAccount)
          const other = yield* store.transaction(seedAccount)
          const instanceId = yield* store.transaction((tx) => seedInstance(tx, account))
          const { instance, node, template } = yield* store.read((tx) =>
            Effect.gen(function* () {
              const instance = (yield* tx.getInstance(account, instanceId))!
              const node = yield* tx.getNode(account, instance.node_id)
              return { instance, node, template: yield* tx.getTemplate(account, node!.node_template_id) }
            })
          )
          assert.deepStrictEqual(yield* store.read((tx) => tx.getNodeOfInstance(account, instance.id)), node)
          assert.deepStrictEqual(yield* store.read((tx) => tx.getTemplateOfInstance(account, instance.id)), template)
          assert.isUndefined(yield* store.read((tx) => tx.getNodeOfInstance(other, instance.id)))
          assert.isUndefined(yield* store.read((tx) => tx.getTemplateOfInstance(other, instance.id)))
          assert.isUndefined(yield* store.read((tx) => tx.getNodeOfInstance(account, "ins_missing" as InstanceId)))
        })
      )
    )

    it.live("a VIP changes only at the epoch it was read at (compare-and-set)", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const account = yield* store.transaction(seedAccount)
          const instance = yield* store.transaction((tx) => seedInstance(tx, account))
          const network = yield* store.transaction((tx) => seedNetwork(tx, account, "prod"))
          const clusterId = newId("cluster")
          const vipId = newId("vip")
          const peerA = newId("peer")
          const peerB = newId("peer")
          const peer = (id: string, address: string) => ({
            id: id as PeerId, account_id: account, network_id: network, instance_id: instance as InstanceId, public_key: null,
            overlay_address: address, overlay_ipv4_address: `100.64.0.${address.slice(-1)}`, endpoint: null, pod_subnet: null, created_at: "2026-01-01T00:00:00.000Z"
          })
          yield* store.transaction((tx) => tx.insertPeer(peer(peerA, "fd00::1")))
          // A second peer of the same instance on the same network is refused.
          const second = yield* Effect.exit(store.transaction((tx) => tx.insertPeer(peer(peerB, "fd00::2"))))
          assert.strictEqual(second._tag, "Failure")
          assert.strictEqual((yield* store.transaction((tx) => tx.listPeersOfNetwork(account, network))).length, 1)
          yield* store.transaction((tx) =>
            tx.insertCluster({
              id: clusterId, account_id: account, name: "c", flavor: "k3s", status: "active", api_endpoint: "https://[fd00::100]:6443", version: null,
              network_id: network as NetworkId, cni_plugin: "flannel", ip_family: "ipv4", cluster_cidr: null, service_cidr: "10.43.0.0/16", warnings: [],
              created_at: "2026-01-01T00:00:00.000Z", activated_at: null, bootstrap_instance_id: instance, ca_cert_pem: "", ca_key_pem: "",
              token_secret: "", token_version: 1, admin_cert_pem: "", admin_key_pem: ""
            })
          )
          // A cluster's network, by the cluster's id (a join reads it beside the cluster); not across accounts.
          const other = yield* store.transaction(seedAccount)
          assert.strictEqual((yield* store.read((tx) => tx.getNetworkOfCluster(account, clusterId)))?.id, network)
          assert.isUndefined(yield* store.read((tx) => tx.getNetworkOfCluster(other, clusterId)))
          yield* store.transaction((tx) =>
            tx.insertVip({ id: vipId, account_id: account, network_id: network, cluster_id: clusterId, address: "fd00::100", address_ipv4: "100.64.0.100", holder_peer_id: peerA as PeerId, holder_since: "2026-01-01T00:00:00.000Z", failover_holder_peer_ids: [], epoch: 1, policy: "automatic", silent_epoch: null, incident: null, probe_reporters: [] })
          )
          assert.isTrue(yield* store.transaction((tx) => tx.updateVipIfEpoch(account, vipId, 1, { epoch: 2 })))
          assert.isFalse(yield* store.transaction((tx) => tx.updateVipIfEpoch(account, vipId, 1, { epoch: 2 })))
          assert.strictEqual((yield* store.transaction((tx) => tx.getVip(account, vipId)))?.epoch, 2)
          // One live cluster per bootstrap instance.
          const duplicate = yield* Effect.exit(
            store.transaction((tx) =>
              tx.insertCluster({
                id: newId("cluster"), account_id: account, name: "c2", flavor: "k3s", status: "provisioning", api_endpoint: "x", version: null,
                network_id: network as NetworkId, cni_plugin: "flannel", ip_family: "ipv4", cluster_cidr: null, service_cidr: "10.43.0.0/16", warnings: [],
                created_at: "2026-01-01T00:00:00.000Z", activated_at: null, bootstrap_instance_id: instance, ca_cert_pem: "", ca_key_pem: "",
                token_secret: "", token_version: 1, admin_cert_pem: "", admin_key_pem: ""
              })
            )
          )
          assert.strictEqual(duplicate._tag, "Failure")
        })
      )
    )

    it.live("confirmations work once", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const account = yield* store.transaction(seedAccount)
          yield* store.transaction((tx) => tx.insertConfirmation({ token_hash: "h", account_id: account, action: "a", input_hash: "i", expires_at: 1 }))
          assert.strictEqual((yield* store.transaction((tx) => tx.takeConfirmation("h")))?.action, "a")
          assert.isUndefined(yield* store.transaction((tx) => tx.takeConfirmation("h")))
        })
      )
    )

    it.live("events are ordered, per account, and readable from a sequence number", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const [a, b] = yield* store.transaction((tx) => Effect.all([seedAccount(tx), seedAccount(tx)]))
          for (let i = 0; i < 5; i++) {
            yield* store.transaction((tx) => tx.appendEvent(i % 2 === 0 ? a : b, `e${i}`, "2026-01-01T00:00:00.000Z", { i }))
          }
          const ofA = yield* store.transaction((tx) => tx.listEvents(a, 0, 100))
          assert.deepStrictEqual(ofA.map((e) => e.type), ["e0", "e2", "e4"])
          const later = yield* store.transaction((tx) => tx.listEvents(a, ofA[0]!.seq, 100))
          assert.deepStrictEqual(later.map((e) => e.type), ["e2", "e4"])
          assert.deepStrictEqual((yield* store.transaction((tx) => tx.listEvents(a, 0, 1))).map((e) => e.type), ["e0"])
        })
      )
    )

    it.live("a network's published peer set: rows newer than a version, removals kept, the current version, many rows per write", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const networkId = yield* store.transaction((tx) => Effect.flatMap(seedAccount(tx), (accountId) => seedNetwork(tx, accountId, "peers")))
          assert.deepStrictEqual(yield* store.transaction((tx) => tx.peerEntriesSince(networkId, 0)), { current: 0, purgedThrough: 0, rows: [] })
          const first = Array.from({ length: 450 }, (_, i) => ({ peer_id: `peer_${String(i).padStart(3, "0")}`, entry: JSON.stringify({ i }) }))
          yield* store.transaction((tx) => tx.writePeerEntries(networkId, 1, first))
          yield* store.transaction((tx) => tx.writePeerEntries(networkId, 2, [{ peer_id: "peer_007", entry: JSON.stringify({ i: 7, moved: true }) }, { peer_id: "peer_008", entry: null }]))
          const since1 = yield* store.transaction((tx) => tx.peerEntriesSince(networkId, 1))
          assert.deepStrictEqual(since1, {
            current: 2,
            purgedThrough: 0,
            rows: [
              { peer_id: "peer_007", version: 2, entry: JSON.stringify({ i: 7, moved: true }) },
              { peer_id: "peer_008", version: 2, entry: null }
            ]
          })
          assert.strictEqual((yield* store.transaction((tx) => tx.peerEntriesSince(networkId, 0))).rows.length, 450)
          assert.strictEqual((yield* store.transaction((tx) => tx.listPeerEntries(networkId))).length, 450)
          assert.deepStrictEqual(yield* store.transaction((tx) => tx.peerEntriesSince(networkId, 5)), { current: 2, purgedThrough: 0, rows: [] })
          // Purging removals through version 2 drops peer_008's row, keeps the others, and records the horizon; it never moves back.
          yield* store.transaction((tx) => tx.purgeRemovedPeerEntries(networkId, 2))
          yield* store.transaction((tx) => tx.purgeRemovedPeerEntries(networkId, 1))
          const purged = yield* store.transaction((tx) => tx.peerEntriesSince(networkId, 1))
          assert.deepStrictEqual(purged, { current: 2, purgedThrough: 2, rows: [{ peer_id: "peer_007", version: 2, entry: JSON.stringify({ i: 7, moved: true }) }] })
          assert.strictEqual((yield* store.transaction((tx) => tx.listPeerEntries(networkId))).length, 449)
        })
      )
    )

    it.live("passes its integrity check", () => withStore((store) => Effect.map(store.integrityCheck, (result) => assert.strictEqual(result, "ok"))))
  })
