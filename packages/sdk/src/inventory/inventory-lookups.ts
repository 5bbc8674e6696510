/** Account-scoped lookups that fail with a typed `*_not_found` (or `instance_terminated`) error. */
import { Effect } from "effect"
import type { TxContext } from "../domain/transactor"
import { notFound, stateError } from "../model/errors"
import type { AccountId, InstanceId, TemplateId } from "../model/ids"

export const requireTemplate = (ctx: TxContext, accountId: AccountId, templateId: string) =>
  Effect.flatMap(ctx.tx.getTemplate(accountId, templateId as TemplateId), (template) =>
    template === undefined
      ? Effect.fail(notFound("template_not_found", `template ${templateId} does not exist in this account`, { template_id: templateId }))
      : Effect.succeed(template)
  )

export const requireRunningInstance = (ctx: TxContext, accountId: AccountId, instanceId: string) =>
  Effect.gen(function* () {
    const instance = yield* ctx.tx.getInstance(accountId, instanceId as InstanceId)
    if (instance === undefined) {
      return yield* notFound("instance_not_found", `instance ${instanceId} does not exist in this account`, { instance_id: instanceId })
    }
    if (instance.status !== "running") {
      return yield* stateError("instance_terminated", `instance ${instanceId} is terminated; provision a new instance`, { instance_id: instanceId })
    }
    return instance
  })

