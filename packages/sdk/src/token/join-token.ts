/**
 * Cluster join tokens in k3s's secure format (R12): `K10<sha256 of the CA, hex>::server:<secret>`.
 * The CA hash lets a joining node verify the server it reaches before trusting it.
 */
import { createHash, randomBytes } from "node:crypto"

const sha256Hex = (text: string) => createHash("sha256").update(text, "utf8").digest("hex")

export const newTokenSecret = (): string => randomBytes(16).toString("hex")

export const formatJoinToken = (caCertPem: string, secret: string): string => `K10${sha256Hex(caCertPem)}::server:${secret}`

/** What an agent sends instead of the token itself, to tell whether it holds the current one. */
export const tokenFingerprint = (token: string): string => sha256Hex(token)

export const JOIN_TOKEN_PATTERN = /^K10[0-9a-f]{64}::server:[0-9a-f]{32}$/
