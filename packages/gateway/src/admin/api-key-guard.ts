/**
 * The admin port's one door for API keys, shared by plain requests and terminal upgrades:
 *
 * - **Checking** a key goes through the per-address failure throttle, so guessing keys costs
 *   time whichever route it tries (a request, an event stream, a terminal upgrade).
 * - **Watching** a key: an event stream or a terminal outlives the request that checked it.
 *   Every `recheckIntervalMs` each key with something open is identified again; a revoked key
 *   ends everything opened with it.
 */
import { FleetplaneError, type ApiKeyIdentity, type Fleet } from "@fleetplane/sdk"
import { AuthThrottle } from "../agent/auth-throttle"
import type { Logger } from "../log"

export type KeyCheck =
  | { readonly ok: true; readonly identity: ApiKeyIdentity; readonly key: string }
  | {
      readonly ok: false
      readonly status: number
      readonly code: string
      readonly message: string
      readonly category: string
      readonly retryAfterMs?: number
    }

export interface ApiKeyGuard {
  /** Checks `Authorization: Bearer fpk_…` from `address`. */
  readonly check: (authorization: string | undefined, address: string) => Promise<KeyCheck>
  /** Calls `end` if `key` is revoked while this stays registered; returns the unregister. */
  readonly watch: (key: string, end: () => void) => () => void
  readonly close: () => void
}

export const createApiKeyGuard = (deps: { readonly fleet: Fleet; readonly log: Logger; readonly throttle?: AuthThrottle; readonly recheckIntervalMs?: number }): ApiKeyGuard => {
  const throttle = deps.throttle ?? new AuthThrottle()
  const watched = new Set<{ readonly key: string; readonly end: () => void }>()

  const check = async (authorization: string | undefined, address: string): Promise<KeyCheck> => {
    const header = authorization ?? ""
    const key = header.startsWith("Bearer ") ? header.slice(7).trim() : ""
    if (key === "") {
      return { ok: false, status: 401, code: "missing_api_key", message: "send an account API key as `Authorization: Bearer fpk_…`; create one with `fleetplane apikey create`", category: "UnauthorizedError" }
    }
    const verdict = await throttle.begin(address)
    if (!verdict.allowed) {
      const seconds = Math.ceil(verdict.retryAfterMs / 1000)
      return {
        ok: false,
        status: 429,
        code: "too_many_failed_keys",
        message: `too many failed API-key attempts from this address; retry after ${seconds} s`,
        category: "UnauthorizedError",
        retryAfterMs: verdict.retryAfterMs
      }
    }
    try {
      const identity = await deps.fleet.identifyApiKey(key)
      throttle.finish(address, true)
      return { ok: true, identity, key }
    } catch (error) {
      const e = error instanceof FleetplaneError ? error : new FleetplaneError("internal_error", String(error))
      // Only a wrong key counts as a failure; a store outage says nothing about the caller.
      throttle.finish(address, e.category === "UnauthorizedError" ? false : undefined)
      return { ok: false, status: e.httpStatus, code: e.code, message: e.message, category: e.category }
    }
  }

  const recheck = async () => {
    const keys = new Set([...watched].map((entry) => entry.key))
    for (const key of keys) {
      try {
        await deps.fleet.identifyApiKey(key)
      } catch (error) {
        if (!(error instanceof FleetplaneError) || error.category !== "UnauthorizedError") continue // a store outage is not a revocation
        const ended = [...watched].filter((entry) => entry.key === key)
        for (const entry of ended) {
          watched.delete(entry)
          entry.end()
        }
        deps.log.info("admin.revoked_key_connections_closed", { connections: ended.length })
      }
    }
  }
  let running = false
  const timer = setInterval(() => {
    if (running || watched.size === 0) return
    running = true
    void recheck().finally(() => (running = false))
  }, deps.recheckIntervalMs ?? 10_000)
  timer.unref()

  return {
    check,
    watch: (key, end) => {
      const entry = { key, end }
      watched.add(entry)
      return () => void watched.delete(entry)
    },
    close: () => clearInterval(timer)
  }
}
