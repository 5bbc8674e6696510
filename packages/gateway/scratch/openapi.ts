import { OpenApi } from "effect/http-api"
import { AdminApi } from "../src/admin/admin-api"
const spec = OpenApi.fromApi(AdminApi)
const s = JSON.stringify(spec)
console.log(s.length, Object.keys(spec.paths).length)
console.log(JSON.stringify(spec.paths["/v1/actions/system_terminate_instance"], null, 1).slice(0, 3000))
console.log(JSON.stringify(spec.paths["/v1/events"], null, 1).slice(0, 1500))
