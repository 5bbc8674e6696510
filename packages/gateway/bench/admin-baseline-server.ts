/**
 * The baseline of the admin API benchmark, in its own process: bare `node:http` and
 * better-sqlite3 over the gateway's own database file (after the gateway stopped), answering
 * `POST /v1/actions/kubernetes_list_clusters` with the account's cluster rows as JSON. No
 * authentication, no schema, no Effect: the floor of "an HTTP request that reads the clusters".
 */
import { createServer } from "node:http"
import { createRequire } from "node:module"

// The SDK's own better-sqlite3 (the gateway does not depend on it directly).
const Database = createRequire(import.meta.resolve("@fleetplane/sdk"))("better-sqlite3") as new (file: string, options: { readonly: boolean }) => {
  prepare: (sql: string) => { all: (...params: Array<unknown>) => Array<unknown> }
}

const [database, accountId] = process.argv.slice(2) as [string, string]
const db = new Database(database, { readonly: true })
const list = db.prepare("SELECT id, name, status, api_endpoint, version, network_id, cni_plugin, ip_family, cluster_cidr, service_cidr, warnings, created_at, activated_at FROM clusters WHERE account_id = ? ORDER BY rowid")
const server = createServer((request, response) => {
  request.resume()
  request.on("end", () => {
    const body = JSON.stringify({ clusters: list.all(accountId) })
    response.writeHead(200, { "content-type": "application/json" })
    response.end(body)
  })
})
server.listen(0, "127.0.0.1", () => process.send!({ type: "ready", url: `http://127.0.0.1:${(server.address() as { port: number }).port}` }))
