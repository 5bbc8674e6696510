// The one build setup every package shares: ESM for Node 20 with declarations and source maps.
import { defineConfig, type Options } from "tsup"

export const packageBuild = (overrides: Options = {}) =>
  defineConfig({
    entry: ["src/index.ts"],
    format: ["esm"],
    target: "node20",
    dts: true,
    sourcemap: true,
    clean: true,
    ...overrides
  })
