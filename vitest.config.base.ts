// The one test setup every package shares: tests under test/, and a JSON report that the
// root `npm test` sums into its closing "N passed, N failed" line.
import { defineConfig } from "vitest/config"

export const packageTests = ({ postgres = false, ...overrides }: { readonly testTimeout?: number; readonly postgres?: boolean } = {}) =>
  defineConfig({
    test: {
      include: ["test/**/*.test.ts"],
      reporters: ["default", "json"],
      outputFile: { json: "test-results.json" },
      // A throwaway PostgreSQL (initdb + pg_ctl on a temp dir) for packages whose tests need one.
      ...(postgres ? { globalSetup: [new URL("./scripts/throwaway-postgres.mjs", import.meta.url).pathname] } : {}),
      ...overrides
    }
  })
