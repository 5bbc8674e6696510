/**
 * The Effect API is typed by the catalog: `Actions.execute` named by a literal returns the
 * action's output type, the same shape its published output schema describes. The type
 * assertions are checked by `tsc` (the `typecheck` task, which `npm test` runs first); the
 * runtime assertions check the values.
 */
import { describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { expect, expectTypeOf } from "vitest"
import { Actions, type ActionOutput } from "../src/index"
import { newAccount, withFleet } from "./support/fleet-harness"

describe("typed Effect API", () => {
  it.effect("Actions.execute returns the action's output type, and the value has that shape", () =>
    withFleet()(
      Effect.gen(function* () {
        const actions = yield* Actions
        const { id: account } = yield* newAccount("acme")
        const template = yield* actions.execute(account, "system_create_template", { name: "servers" })
        expectTypeOf(template).toEqualTypeOf<ActionOutput<"system_create_template">>()
        expectTypeOf(template).toEqualTypeOf<{ readonly id: string; readonly name: string }>()
        expect(template.name).toBe("servers")

        const { clusters } = yield* actions.execute(account, "kubernetes_list_clusters", {})
        expectTypeOf<(typeof clusters)[number]["status"]>().toEqualTypeOf<"provisioning" | "active" | "error" | "decommissioning" | "decommissioned">()
        expect(clusters).toEqual([])

        // A dry run and a real failover are one tool with two result shapes, told apart by `dry_run`.
        expectTypeOf<ActionOutput<"system_sdwan_failover_virtual_ip">["dry_run"]>().toEqualTypeOf<boolean>()

        // A name only known at run time gives `unknown`, as any host reading names from a request would.
        const name: string = "system_sdwan_list_networks"
        const untyped = yield* actions.execute(account, name, {})
        expectTypeOf(untyped).toBeUnknown()
        expect(untyped).toEqual({ networks: [] })
      })
    )
  )
})
