import { generateKeyPairSync } from "node:crypto"

/** A WireGuard key pair as an agent makes it: X25519, base64 of the raw 32-byte keys. */
export const wireguardKeyPair = () => {
  const { publicKey, privateKey } = generateKeyPairSync("x25519")
  const publicRaw = publicKey.export({ format: "der", type: "spki" }).subarray(-32)
  const privateRaw = privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32)
  return { publicKey: publicRaw.toString("base64"), privateKey: privateRaw.toString("base64") }
}
