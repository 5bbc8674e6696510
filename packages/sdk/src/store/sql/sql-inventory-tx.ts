/** The SQL store's accounts, templates and module assignments, nodes, instances and API keys. */
import { Effect } from "effect"
import type { StoreTx } from "../store"
import type { SqlDriver } from "./sql-driver"
import { accounts, accountSummaries, apiKeys, instances, json, nodes, templates } from "./sql-rows"

export const inventoryTx = (db: SqlDriver) => {
  const { one, all, run, write } = db

  /** A template with its module assignments, in one statement (a LEFT JOIN: a template may have none). */
  const readTemplate = (where: string, params: ReadonlyArray<unknown>) =>
    Effect.flatMap(
      all(
        `SELECT t.*, m.module_name, m.module_version_id, m.config FROM templates t
         LEFT JOIN module_assignments m ON m.template_id = t.id WHERE ${where} ORDER BY m.module_name`,
        params
      ),
      (rows) => templates.one(rows.length === 0 ? undefined : { ...rows[0]!, modules: rows[0]!.module_name === null ? [] : rows })
    )

  return {
    insertAccount: (account) =>
      write("INSERT INTO accounts (id, name, ula_global_id, created_at) VALUES (?, ?, ?, ?)", [account.id, account.name, account.ula_global_id, account.created_at]),
    getAccount: (id) => Effect.flatMap(one("SELECT * FROM accounts WHERE id = ?", [id]), accounts.one),
    listAccounts: () => Effect.flatMap(all("SELECT id, name, created_at FROM accounts ORDER BY name, id"), accountSummaries.all),
    setAccountUlaGlobalId: (id, ulaGlobalId) => write("UPDATE accounts SET ula_global_id = ? WHERE id = ?", [ulaGlobalId, id]),

    insertTemplate: (template) =>
      write("INSERT INTO templates (id, account_id, name, created_at) VALUES (?, ?, ?, ?)", [template.id, template.account_id, template.name, template.created_at]),
    getTemplate: (accountId, id) => readTemplate("t.account_id = ? AND t.id = ?", [accountId, id]),
    getTemplateOfInstance: (accountId, instanceId) =>
      readTemplate("t.account_id = ? AND t.id = (SELECT n.node_template_id FROM nodes n JOIN instances i ON i.node_id = n.id WHERE i.account_id = ? AND i.id = ?)", [
        accountId,
        accountId,
        instanceId
      ]),
    findTemplateByName: (accountId, name) => readTemplate("t.account_id = ? AND t.name = ?", [accountId, name]),
    listTemplates: (accountId) =>
      Effect.gen(function* () {
        const rows = yield* all("SELECT * FROM templates WHERE account_id = ? ORDER BY name", [accountId])
        const modules = yield* all(
          "SELECT m.* FROM module_assignments m JOIN templates t ON t.id = m.template_id WHERE t.account_id = ? ORDER BY m.module_name",
          [accountId]
        )
        return yield* templates.all(rows.map((row) => ({ ...row, modules: modules.filter((m) => m.template_id === row.id) })))
      }),
    deleteTemplate: (accountId, id) =>
      Effect.gen(function* () {
        yield* write("DELETE FROM module_assignments WHERE template_id = (SELECT id FROM templates WHERE account_id = ? AND id = ?)", [accountId, id])
        yield* write("DELETE FROM templates WHERE account_id = ? AND id = ?", [accountId, id])
      }),
    putModuleAssignment: (templateId, assignment) =>
      write(
          `INSERT INTO module_assignments (template_id, module_name, module_version_id, config) VALUES (?, ?, ?, ?)
           ON CONFLICT (template_id, module_name) DO UPDATE SET module_version_id = excluded.module_version_id, config = excluded.config`,
          [templateId, assignment.module_name, assignment.module_version_id, json(assignment.config)]
        ),

    insertNode: (node) =>
      write("INSERT INTO nodes (id, account_id, hostname, node_template_id, created_at) VALUES (?, ?, ?, ?, ?)", [
          node.id,
          node.account_id,
          node.hostname,
          node.node_template_id,
          node.created_at
        ]),
    getNode: (accountId, id) => Effect.flatMap(one("SELECT * FROM nodes WHERE account_id = ? AND id = ?", [accountId, id]), nodes.one),
    getNodeOfInstance: (accountId, instanceId) =>
      Effect.flatMap(one("SELECT n.* FROM nodes n JOIN instances i ON i.node_id = n.id WHERE i.account_id = ? AND i.id = ?", [accountId, instanceId]), nodes.one),
    listNodes: (accountId) => Effect.flatMap(all("SELECT * FROM nodes WHERE account_id = ? ORDER BY created_at, rowid", [accountId]), nodes.all),
    findNodeByHostname: (accountId, hostname) => Effect.flatMap(one("SELECT * FROM nodes WHERE account_id = ? AND hostname = ?", [accountId, hostname]), nodes.one),
    deleteNode: (accountId, id) => write("DELETE FROM nodes WHERE account_id = ? AND id = ?", [accountId, id]),
    listInstances: (accountId) => Effect.flatMap(all("SELECT * FROM instances WHERE account_id = ? ORDER BY created_at, rowid", [accountId]), instances.all),
    listInstancesOfNode: (accountId, nodeId) =>
      Effect.flatMap(all("SELECT * FROM instances WHERE account_id = ? AND node_id = ? ORDER BY created_at, rowid", [accountId, nodeId]), instances.all),
    insertInstance: (instance) =>
      write("INSERT INTO instances (id, account_id, node_id, status, credential_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)", [
          instance.id,
          instance.account_id,
          instance.node_id,
          instance.status,
          instance.credential_hash,
          instance.created_at
        ]),
    getInstance: (accountId, id) => Effect.flatMap(one("SELECT * FROM instances WHERE account_id = ? AND id = ?", [accountId, id]), instances.one),
    getInstanceForAuthentication: (id) => Effect.flatMap(one("SELECT * FROM instances WHERE id = ?", [id]), instances.one),
    setInstanceStatus: (accountId, id, status) => write("UPDATE instances SET status = ? WHERE account_id = ? AND id = ?", [status, accountId, id]),
    rotateInstanceCredential: (accountId, id, credentialHash, previousValidUntil, at) =>
      write(
          `UPDATE instances SET
             previous_credential_hash = CASE WHEN previous_credential_hash IS NOT NULL AND previous_credential_valid_until > ? THEN previous_credential_hash ELSE credential_hash END,
             previous_credential_valid_until = ?, credential_hash = ?
           WHERE account_id = ? AND id = ?`,
          [at, previousValidUntil, credentialHash, accountId, id]
        ),
    retirePreviousCredential: (id) =>
      write("UPDATE instances SET previous_credential_hash = NULL, previous_credential_valid_until = NULL WHERE id = ? AND previous_credential_hash IS NOT NULL", [id]),
    listInstancesOfTemplate: (accountId, templateId) =>
      Effect.flatMap(
        all(
          `SELECT i.* FROM instances i JOIN nodes n ON n.id = i.node_id
           WHERE i.account_id = ? AND n.node_template_id = ? AND i.status = 'running' ORDER BY i.created_at, i.rowid`,
          [accountId, templateId]
        ),
        instances.all
      ),

    findRunningInstanceOfNode: (accountId, nodeId) =>
      Effect.flatMap(one("SELECT * FROM instances WHERE account_id = ? AND node_id = ? AND status = 'running' ORDER BY created_at DESC LIMIT 1", [accountId, nodeId]), instances.one),

    insertApiKey: (key) =>
      write("INSERT INTO api_keys (id, account_id, name, role, key_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)", [
          key.id,
          key.account_id,
          key.name,
          key.role,
          key.key_hash,
          key.created_at,
          key.revoked_at
        ]),
    findApiKeyByHash: (keyHash) => Effect.flatMap(one("SELECT * FROM api_keys WHERE key_hash = ?", [keyHash]), apiKeys.one),
    revokeApiKey: (accountId, id, at) =>
      Effect.map(run("UPDATE api_keys SET revoked_at = ? WHERE account_id = ? AND id = ? AND revoked_at IS NULL", [at, accountId, id]), (changed) => changed === 1),

    listApiKeys: (accountId) => Effect.flatMap(all("SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at, id", [accountId]), apiKeys.all),

  } satisfies Partial<StoreTx>
}
