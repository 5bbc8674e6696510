import { packageTests } from "../../vitest.config.base"

export default packageTests()
