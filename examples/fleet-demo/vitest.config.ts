import { packageTests } from "../../vitest.config.base"

export default packageTests({ testTimeout: 120_000 })
