import { quietGateway, setupAccount } from "../test/support/gateway-harness"
import { adminApi } from "../src/cli/admin-client"
const gateway = await quietGateway()
const account = await setupAccount(gateway)
const api = adminApi(gateway.adminUrl, account.apiKey)
const t0 = Date.now()
const controller = new AbortController()
void api.events(0, { onEvent: (e) => console.log(Date.now() - t0, "got", e.seq, e.type), signal: controller.signal })
await new Promise((r) => setTimeout(r, 1000))
for (let i = 0; i < 3; i++) {
  console.log(Date.now() - t0, "create", i)
  await account.admin.action("system_create_template", { name: `t${i}` })
  await new Promise((r) => setTimeout(r, 1500))
}
controller.abort(); await gateway.close(); process.exit(0)
