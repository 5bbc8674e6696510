/**
 * Web console sign-in: an API key is exchanged once for a session, kept in this gateway's
 * memory and carried by an HttpOnly, SameSite=Strict cookie, so the key never sits in the
 * browser's script-readable storage. Every change also needs the session's CSRF token in a
 * header (defence in depth beside SameSite). A session lives as long as its key: each request
 * still checks the key (a revoked key ends it), and it expires after `ttlMs` idle.
 */
import { randomBytes, timingSafeEqual } from "node:crypto"
import type { ApiKeyIdentity } from "@fleetplane/sdk"

export const SESSION_COOKIE = "fp_session"
export const CSRF_HEADER = "x-csrf-token"

export interface ConsoleSession {
  readonly id: string
  readonly csrfToken: string
  /** The key it was opened with (checked on every request; never sent back). */
  readonly key: string
  readonly identity: ApiKeyIdentity
  expiresAt: number
}

export interface ConsoleSessionsOptions {
  /** Idle lifetime (default 12 h). */
  readonly ttlMs?: number
  /** Sessions kept at once; the oldest goes first (default 10,000). */
  readonly maxSessions?: number
  readonly now?: () => number
}

const token = () => randomBytes(32).toString("base64url")

export const sameToken = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))

export const createConsoleSessions = (options: ConsoleSessionsOptions = {}) => {
  const ttlMs = options.ttlMs ?? 12 * 60 * 60_000
  const maxSessions = options.maxSessions ?? 10_000
  const now = options.now ?? Date.now
  // Insertion order is age order: the first entry is the oldest.
  const sessions = new Map<string, ConsoleSession>()

  return {
    ttlMs,
    open: (identity: ApiKeyIdentity, key: string): ConsoleSession => {
      if (sessions.size >= maxSessions) sessions.delete(sessions.keys().next().value!)
      const session: ConsoleSession = { id: token(), csrfToken: token(), key, identity, expiresAt: now() + ttlMs }
      sessions.set(session.id, session)
      return session
    },
    /** The live session behind a cookie value; using it extends it. */
    find: (id: string | undefined): ConsoleSession | undefined => {
      if (id === undefined || id === "") return undefined
      const session = sessions.get(id)
      if (session === undefined) return undefined
      if (session.expiresAt <= now()) {
        sessions.delete(id)
        return undefined
      }
      session.expiresAt = now() + ttlMs
      return session
    },
    close: (id: string) => void sessions.delete(id),
    get size() {
      return sessions.size
    }
  }
}

export type ConsoleSessions = ReturnType<typeof createConsoleSessions>
