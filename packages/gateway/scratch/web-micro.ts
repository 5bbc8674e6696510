import { Context, Deferred, Effect, Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { Actions, createFleet } from "@fleetplane/sdk"
import { AdminApi } from "../src/admin/admin-api"
import { adminHandlersLayer, apiKeyAuthLayer, PeerAddress } from "../src/admin/admin-handlers"
const fleet = await createFleet({ database: ":memory:" })
const acct = await fleet.createAccount({ name: "a" })
const key = await fleet.createApiKey({ account_id: acct.id, name: "k", role: "admin" })
const identity = await fleet.identifyApiKey(key.api_key)
const keys: any = { check: async () => ({ ok: true, identity, key: key.api_key }), watch: () => () => {} }
const deps: any = { metrics: {}, log: console, health: () => ({}), keys, closing: Deferred.makeUnsafe<void>() }
const routes = HttpApiBuilder.layer(AdminApi).pipe(Layer.provide(adminHandlersLayer(deps)), Layer.provide(apiKeyAuthLayer(deps)), Layer.provide(Layer.succeedContext(await fleet.services())), Layer.provide(HttpServer.layerServices))
const web = HttpRouter.toWebHandler(routes, { disableLogger: true })
const ctx = Context.make(PeerAddress, "x") as Context.Context<any>
const time = async (label: string, n: number, f: () => Promise<unknown>) => {
  for (let i = 0; i < 2000; i++) await f()
  const t = performance.now(); for (let i = 0; i < n; i++) await f(); const ms = performance.now() - t
  console.log(label, (ms / n * 1000).toFixed(0), "µs")
}
const services = await fleet.services()
const actions = Context.get(services, Actions)
for (let round = 0; round < Number(process.env.ROUNDS ?? 3); round++) {
  if (!process.env.ONLY_WEB) await time("execute via facade", 5000, () => fleet.forApiKey(identity).execute("system_list_templates", {}))
  if (!process.env.ONLY_WEB) await time("execute effect", 5000, () => Effect.runPromise(actions.execute(acct.id, "system_list_templates", {})))
  await time("web handler (POST, body {})", 5000, async () => {
    const r = await web.handler(new Request("http://x/v1/actions/system_list_templates", { method: "POST", headers: { authorization: "Bearer x", "content-type": "application/json" }, body: "{}" }), ctx)
    await r.arrayBuffer()
  })
  if (!process.env.ONLY_WEB) await time("new Request + Response only", 5000, async () => {
    const q = new Request("http://x/v1/actions/system_list_templates", { method: "POST", headers: { authorization: "Bearer x", "content-type": "application/json" }, body: "{}" })
    await q.arrayBuffer()
    const r = new Response('{"templates":[]}', { headers: { "content-type": "application/json" } })
    await r.arrayBuffer()
  })
}
await fleet.close(); process.exit(0)
