/**
 * Protocol versions. The envelope's `v` is the wire-format major version; an agent lists
 * the versions it speaks in `hello.protocol_versions` and the gateway picks one in `welcome`.
 */
export const PROTOCOL_VERSION = 3 as const

/** Every protocol version this build can decode and speak, newest first. */
export const SUPPORTED_PROTOCOL_VERSIONS: ReadonlyArray<number> = [PROTOCOL_VERSION]

/**
 * Picks the newest version both sides speak, or `undefined` when there is none
 * (the gateway then closes with `CloseCode.UnsupportedProtocolVersion`).
 */
export const negotiateProtocolVersion = (
  offered: ReadonlyArray<number>,
  supported: ReadonlyArray<number> = SUPPORTED_PROTOCOL_VERSIONS
): number | undefined => {
  let best: number | undefined
  for (const version of offered) {
    if (supported.includes(version) && (best === undefined || version > best)) best = version
  }
  return best
}
