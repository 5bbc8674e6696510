/**
 * Size and shape limits for frames. Enforced before msgpack decoding allocates anything,
 * so a hostile peer cannot make either side build huge or deeply nested values.
 */
export interface FrameLimits {
  /** Largest frame accepted, in bytes. The gateway also passes this to `ws` as `maxPayload`. */
  readonly maxFrameBytes: number
  /** Deepest nesting of arrays and maps accepted. Real messages nest at most 5 levels. */
  readonly maxDepth: number
}

export const DEFAULT_FRAME_LIMITS: FrameLimits = {
  // A kubeconfig with its certificates is ~6 KB, a WireGuard config for 1,000 peers ~200 KB.
  maxFrameBytes: 1024 * 1024,
  maxDepth: 16
}

/** Upper bounds on individual fields; generous, but finite. */
export const FIELD_LIMITS = {
  idLength: 128,
  credentialLength: 512,
  shortTextLength: 256,
  messageLength: 4096,
  configContentLength: 512 * 1024,
  listItems: 4096,
  terminalChunkBytes: 64 * 1024
} as const
