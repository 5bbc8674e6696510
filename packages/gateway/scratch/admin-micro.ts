// Scratch: admin API request overhead in-process (list templates of an empty account).
import { Agent, request } from "node:http"
import { quietGateway, setupAccount } from "../test/support/gateway-harness"
const gateway = await quietGateway()
const account = await setupAccount(gateway)
const url = new URL(`${gateway.adminUrl}/v1/actions/${process.argv[2] ?? "system_list_templates"}`)
const agent = new Agent({ keepAlive: true, maxSockets: 16 })
const body = "{}"
const one = () => new Promise<void>((resolve, reject) => {
  const r = request({ host: url.hostname, port: url.port, path: url.pathname, method: "POST", agent, headers: { authorization: `Bearer ${account.apiKey}`, "content-type": "application/json", "content-length": "2" } }, (res) => { res.resume(); res.on("end", () => res.statusCode === 200 ? resolve() : reject(new Error(String(res.statusCode)))) })
  r.on("error", reject); r.end(body)
})
for (const seconds of [2, 5, 5]) {
  let n = 0; const until = Date.now() + seconds * 1000
  await Promise.all(Array.from({ length: 16 }, async () => { while (Date.now() < until) { await one(); n++ } }))
  console.log(`${(n / seconds).toFixed(0)} req/s`)
}
await gateway.close(); process.exit(0)
