import { packageTests } from "../../vitest.config.base.ts"

// The store contract also runs on PostgreSQL: a throwaway server for the whole run.
export default packageTests({ postgres: true })
