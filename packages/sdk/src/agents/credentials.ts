/**
 * Agent credentials: 256 random bits shown once at provisioning and stored only as a
 * SHA-256 hash (R20). A hash of a high-entropy secret needs no slow KDF; comparison is
 * constant-time so response timing reveals nothing about the stored hash.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"

export const newAgentCredential = (): string => `fpa_${randomBytes(32).toString("base64url")}`

export const hashSecret = (secret: string): string => createHash("sha256").update(secret, "utf8").digest("hex")

const DUMMY_HASH = hashSecret("no such instance")

/** Constant-time check; `storedHash` undefined (unknown instance) still costs one comparison. */
export const credentialMatches = (credential: string, storedHash: string | undefined): boolean => {
  const given = Buffer.from(hashSecret(credential), "hex")
  const expected = Buffer.from(storedHash ?? DUMMY_HASH, "hex")
  return timingSafeEqual(given, expected) && storedHash !== undefined
}
