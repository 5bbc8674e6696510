import { packageTests } from "../../vitest.config.base.ts"

export default packageTests()
