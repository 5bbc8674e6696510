/**
 * Agent credential rotation (#15.9): a lost or leaked agent credential is replaced without
 * locking a connected agent out. The new one is delivered over the agent's session; the old
 * one works until the agent confirms the new one or the grace runs out; the secret is never
 * in an event, and the database keeps only its hash once the agent has it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { expect } from "vitest"
import { AgentPort, Store } from "../src/index"
import { accountWithNetwork, desiredConfig, events, exec, failure, provisionAgent, withFleet } from "./support/fleet-harness"

const rotate = (accountId: any, instanceId: string, graceHours?: number) =>
  exec(accountId, "system_rotate_agent_credential", { instance_id: instanceId, ...(graceHours === undefined ? {} : { grace_hours: graceHours }) })

describe("agent credential rotation", () => {
  it.effect("a lost credential is replaced: the new one works at once, the old one until the agent confirms the new one", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const agent = yield* provisionAgent(setup.accountId, { hostname: "edge-1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const port = yield* AgentPort

        // By hostname, as operators name machines.
        const rotated = yield* rotate(setup.accountId, "edge-1")
        assert.notStrictEqual(rotated.agent_credential, agent.credential)
        expect(rotated.instance_id).toBe(agent.instanceId)
        expect(rotated.hostname).toBe("edge-1")

        // The old one works until the agent confirms: a connected agent is not locked out
        // (the new one works at once: see the next test).
        yield* port.authenticate(agent.instanceId, agent.credential)
        yield* port.authenticate(agent.instanceId, agent.credential)

        // The agent gets it over its session, and acks it once stored.
        const push = yield* desiredConfig(agent, "agent_credential")
        expect(push?.payload).toEqual({ credential: rotated.agent_credential })
        yield* port.configAck(agent.identity, { kind: "agent_credential", key: push!.key, version: push!.version, status: "applied" })

        // Confirmed: the old credential stops working, and the stored push no longer holds the secret.
        const refused = yield* failure(port.authenticate(agent.instanceId, agent.credential))
        expect(refused.code).toBe("authentication_failed")
        yield* port.authenticate(agent.instanceId, rotated.agent_credential)
        expect((yield* desiredConfig(agent, "agent_credential"))?.payload).toEqual({})

        // The audit trail says who rotated and when the agent confirmed, never the secret.
        const log = yield* events(setup.accountId)
        expect(log.map((e) => e.type)).toEqual(expect.arrayContaining(["system.agent_credential_rotated", "agent.credential_confirmed"]))
        const text = JSON.stringify(log)
        expect(text).not.toContain(rotated.agent_credential)
        expect(text).not.toContain(agent.credential)
      })
    )
  )

  it.effect("an agent that comes back with the new credential has confirmed it", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const agent = yield* provisionAgent(setup.accountId, { hostname: "edge-1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const port = yield* AgentPort
        const rotated = yield* rotate(setup.accountId, agent.instanceId)
        yield* port.authenticate(agent.instanceId, rotated.agent_credential)
        expect((yield* failure(port.authenticate(agent.instanceId, agent.credential))).code).toBe("authentication_failed")
        expect((yield* desiredConfig(agent, "agent_credential"))?.payload).toEqual({})
      })
    )
  )

  it.effect("an agent that never confirms keeps its old credential for the grace, then only the new one works", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const agent = yield* provisionAgent(setup.accountId, { hostname: "edge-1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const port = yield* AgentPort
        const rotated = yield* rotate(setup.accountId, agent.instanceId, 2)
        yield* TestClock.adjust(2 * 3_600_000 - 1_000)
        yield* port.authenticate(agent.instanceId, agent.credential)
        yield* TestClock.adjust(2_000)
        expect((yield* failure(port.authenticate(agent.instanceId, agent.credential))).code).toBe("authentication_failed")
        yield* port.authenticate(agent.instanceId, rotated.agent_credential)
      })
    )
  )

  it.effect("rotating twice before the agent confirms keeps the credential the agent really has", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const agent = yield* provisionAgent(setup.accountId, { hostname: "edge-1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const port = yield* AgentPort
        const first = yield* rotate(setup.accountId, agent.instanceId)
        const firstPush = yield* desiredConfig(agent, "agent_credential")
        const second = yield* rotate(setup.accountId, agent.instanceId)
        // The agent (offline for both) still has its original credential.
        yield* port.authenticate(agent.instanceId, agent.credential)
        expect((yield* failure(port.authenticate(agent.instanceId, first.agent_credential))).code).toBe("authentication_failed")
        // A late ack of the first rotation confirms nothing: the agent does not have the newest.
        yield* port.configAck(agent.identity, { kind: "agent_credential", key: firstPush!.key, version: firstPush!.version, status: "applied" })
        yield* port.authenticate(agent.instanceId, agent.credential)
        expect((yield* desiredConfig(agent, "agent_credential"))?.payload).toEqual({ credential: second.agent_credential })
      })
    )
  )

  it.effect("the database keeps only hashes of agent credentials", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const agent = yield* provisionAgent(setup.accountId, { hostname: "edge-1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const rotated = yield* rotate(setup.accountId, agent.instanceId)
        const port = yield* AgentPort
        const push = yield* desiredConfig(agent, "agent_credential")
        yield* port.configAck(agent.identity, { kind: "agent_credential", key: push!.key, version: push!.version, status: "applied" })
        const store = yield* Store
        const dump = JSON.stringify(yield* store.transaction((tx) => Effect.all([tx.getInstanceForAuthentication(agent.instanceId as never), tx.listDesiredConfigs(agent.instanceId as never)])))
        expect(dump).not.toContain(rotated.agent_credential)
        expect(dump).not.toContain(agent.credential)
      })
    )
  )

  it.effect("a terminated instance's credential cannot be rotated back to life", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const agent = yield* provisionAgent(setup.accountId, { hostname: "edge-1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        yield* exec(setup.accountId, "system_terminate_instance", { instance_id: agent.instanceId }).pipe(
          Effect.catchTag("ConfirmationRequiredError", (error: any) =>
            exec(setup.accountId, "system_terminate_instance", { instance_id: agent.instanceId, confirmation_token: error.details.confirmation_token })
          )
        )
        expect((yield* failure(rotate(setup.accountId, agent.instanceId))).code).toBe("instance_terminated")
      })
    )
  )
})
