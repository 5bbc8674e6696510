import { Effect } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient } from "effect/http-api"
import { AdminApi } from "@fleetplane/gateway"
import { quietGateway, setupAccount } from "../test/support/gateway-harness"
const gateway = await quietGateway()
const account = await setupAccount(gateway)
process.env.FLEETPLANE_API_KEY = account.apiKey
const program = Effect.gen(function* () {
  const client = yield* HttpApiClient.make(AdminApi, {
    baseUrl: gateway.adminUrl,
    transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(process.env.FLEETPLANE_API_KEY!))
  })
  const { clusters } = yield* client.actions.kubernetes_list_clusters!({ payload: {} })
  return clusters
}).pipe(Effect.provide(FetchHttpClient.layer))
console.log(await Effect.runPromise(program as any))
await gateway.close(); process.exit(0)
