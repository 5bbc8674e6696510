/**
 * R24: the module assignments of an instance's template are the only source of what its
 * agent joins. The gateway sends them to the agent (in `welcome`, and as an `assignments`
 * push whenever they change), so an agent needs no module or cluster flags; a join request
 * is read against them: a request without a target joins the assignment's target, and one
 * that names another module or cluster is refused (`assignment_mismatch`). The runbook's first
 * troubleshooting row (a worker joining the wrong cluster) is made impossible, not diagnosed.
 */
import { Effect } from "effect"
import type { ModuleAssignment as WireAssignment } from "@fleetplane/agent-protocol"
import type { TxContext } from "../domain/transactor"
import type { ModuleAssignment, ModuleName } from "../model/entities"
import type { AccountId, InstanceId } from "../model/ids"
import type { TemplateRecord } from "../store/records"
import { putDesired } from "../config/desired-configs"

/** An assignment as the agent receives it. */
export const wireAssignment = (assignment: ModuleAssignment): WireAssignment => ({
  module_name: assignment.module_name,
  module_version_id: assignment.module_version_id,
  target_cluster_id: assignment.config.target_cluster_id ?? null,
  config: Object.fromEntries(Object.entries(assignment.config).filter(([, value]) => value !== undefined)) as WireAssignment["config"]
})

export const wireAssignments = (template: TemplateRecord | undefined): Array<WireAssignment> => (template?.modules ?? []).map(wireAssignment)

/** The `assignments` push of each instance, after its template's assignments changed (or it was provisioned). */
export const syncInstanceAssignments = (ctx: TxContext, template: TemplateRecord, instanceIds: ReadonlyArray<InstanceId>) =>
  // Together: on PostgreSQL one round trip for every instance of the template, not one each.
  Effect.forEach(instanceIds, (instanceId) => putDesired(ctx, instanceId, "assignments", "modules", { assignments: wireAssignments(template) }), {
    concurrency: "unbounded",
    discard: true
  })

export type AssignedJoin =
  | { readonly ok: true; readonly assignment: ModuleAssignment; readonly targetClusterId: string | null; readonly selectedBy: "request" | "assignment" | "none" }
  | { readonly ok: false; readonly code: "module_not_assigned" | "assignment_mismatch"; readonly message: string; readonly details: Record<string, unknown> }

/** R24: what a join request may join, read against the template's assignments. */
export const readJoinAgainstAssignments = (
  template: TemplateRecord | undefined,
  request: { readonly module_name: ModuleName; readonly target_cluster_id: string | null }
): AssignedJoin => {
  const assignment = template?.modules.find((m) => m.module_name === request.module_name)
  if (template === undefined || assignment === undefined) {
    const assigned = template?.modules.map((m) => m.module_name) ?? []
    return {
      ok: false,
      code: assigned.length === 0 ? "module_not_assigned" : "assignment_mismatch",
      message:
        assigned.length === 0
          ? `${request.module_name} is not assigned to this node's template${template === undefined ? "" : ` "${template.name}"`}; assign it with system_assign_module_to_template`
          : `this node's template "${template!.name}" assigns ${assigned.join(", ")}, not ${request.module_name}; the agent must join with what its template assigns (agents that follow their assignments need no module flag)`,
      details: { requested_module: request.module_name, assigned_modules: assigned }
    }
  }
  const assigned = assignment.config.target_cluster_id ?? null
  if (request.target_cluster_id === null) {
    return { ok: true, assignment, targetClusterId: assigned, selectedBy: assigned === null ? "none" : "assignment" }
  }
  if (assigned !== null && assigned !== request.target_cluster_id) {
    return {
      ok: false,
      code: "assignment_mismatch",
      message: `this node's template "${template.name}" assigns ${assignment.module_name} to cluster ${assigned}, but the agent asked to join ${request.target_cluster_id}; remove the agent's --target-cluster (it follows its assignment), or change target_cluster_id on the template and reprovision`,
      details: { requested_cluster_id: request.target_cluster_id, assigned_cluster_id: assigned, template_id: template.id }
    }
  }
  return { ok: true, assignment, targetClusterId: request.target_cluster_id, selectedBy: "request" }
}

/** Every running instance of a template (whose agents get the new assignments). */
export const runningInstancesOfTemplate = (ctx: TxContext, accountId: AccountId, template: TemplateRecord) =>
  Effect.map(ctx.tx.listInstancesOfTemplate(accountId, template.id), (instances) => instances.map((i) => i.id))
