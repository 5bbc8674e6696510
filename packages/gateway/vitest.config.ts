import { packageTests } from "../../vitest.config.base.ts"

// Several gateways on one PostgreSQL: a throwaway server for the whole run.
export default packageTests({ postgres: true })
