import { OpenApi } from "effect/http-api"
import { AdminApi } from "../src/admin/admin-api"
const spec: any = OpenApi.fromApi(AdminApi)
const op = spec.paths["/v1/actions/system_terminate_instance"].post
console.log(Object.keys(op), op.summary, op.description)
console.log(JSON.stringify(op.requestBody))
console.log(JSON.stringify(spec.components.schemas.InvalidInputErrorEncoded))
console.log(spec.openapi, JSON.stringify(spec.info), spec.tags)
