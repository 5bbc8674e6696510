import { packageTests } from "../../vitest.config.base.ts"

export default packageTests({ testTimeout: 120_000 })
