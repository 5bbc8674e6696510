// The one test setup every package shares: tests under test/, and a JSON report that the
// root `npm test` sums into its closing "N passed, N failed" line.
import { defineConfig } from "vitest/config"

export const packageTests = (overrides: { readonly testTimeout?: number } = {}) =>
  defineConfig({
    test: {
      include: ["test/**/*.test.ts"],
      reporters: ["default", "json"],
      outputFile: { json: "test-results.json" },
      ...overrides
    }
  })
