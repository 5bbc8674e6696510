/**
 * Account-scoped lookups that fail with a typed `*_not_found` (or `instance_terminated`) error.
 * Wherever an id is accepted, the name an operator knows works too: a template's name, a
 * node's hostname (for its running instance).
 */
import { Effect } from "effect"
import type { ReadContext, TxContext } from "../domain/transactor"
import { notFound, stateError } from "../model/errors"
import type { AccountId, InstanceId, TemplateId } from "../model/ids"

export const requireTemplate = (ctx: ReadContext, accountId: AccountId, templateRef: string) =>
  Effect.gen(function* () {
    const template = (yield* ctx.tx.getTemplate(accountId, templateRef as TemplateId)) ?? (yield* ctx.tx.findTemplateByName(accountId, templateRef))
    if (template === undefined) {
      return yield* notFound("template_not_found", `there is no template "${templateRef.slice(0, 128)}" (by id or name) in this account`, { template_id: templateRef })
    }
    return template
  })

/** An instance by id, or the running instance of the node with this hostname. */
export const findInstance = (ctx: ReadContext, accountId: AccountId, instanceRef: string) =>
  Effect.gen(function* () {
    const byId = yield* ctx.tx.getInstance(accountId, instanceRef as InstanceId)
    if (byId !== undefined) return byId
    const node = yield* ctx.tx.findNodeByHostname(accountId, instanceRef)
    return node === undefined ? undefined : yield* ctx.tx.findRunningInstanceOfNode(accountId, node.id)
  })

export const requireRunningInstance = (ctx: TxContext, accountId: AccountId, instanceId: string) =>
  Effect.gen(function* () {
    const instance = yield* findInstance(ctx, accountId, instanceId)
    if (instance === undefined) {
      return yield* notFound("instance_not_found", `there is no instance "${instanceId.slice(0, 128)}" (by id, or a node's hostname with a running instance) in this account`, {
        instance_id: instanceId
      })
    }
    if (instance.status !== "running") {
      return yield* stateError("instance_terminated", `instance ${instanceId} is terminated; provision a new instance`, { instance_id: instanceId })
    }
    return instance
  })

