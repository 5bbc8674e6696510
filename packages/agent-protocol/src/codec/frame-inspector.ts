/**
 * A structural pre-check of msgpack bytes, run before msgpackr builds any value.
 *
 * It walks the encoding iteratively (no recursion, no allocation per value) and refuses:
 * nesting deeper than the limit, a container whose declared length cannot fit in the
 * remaining bytes (the "huge length" attack), extension types (msgpackr would build
 * Dates, Sets, RegExps, Errors or BigInts from them), non-string map keys, the keys
 * `__proto__` / `constructor` / `prototype`, truncated values and trailing bytes.
 * What passes is a plain tree of maps, arrays, strings, numbers, booleans, nil and bytes.
 */
import { ProtocolErrorCode } from "../codes"

const FORBIDDEN_KEYS = ["__proto__", "constructor", "prototype"].map((key) => Array.from(key, (c) => c.charCodeAt(0)))

const isForbiddenKey = (bytes: Uint8Array, start: number, length: number): boolean => {
  for (const key of FORBIDDEN_KEYS) {
    if (key.length !== length) continue
    let same = true
    for (let i = 0; i < length; i++) {
      if (bytes[start + i] !== key[i]) {
        same = false
        break
      }
    }
    if (same) return true
  }
  return false
}

/** Returns `undefined` when the frame is structurally safe to decode, or why it is not. */
export const inspectFrame = (bytes: Uint8Array, maxDepth: number): ProtocolErrorCode | undefined => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const end = bytes.length
  // remaining[d]: values still expected in the container open at depth d; maps count keys and values.
  const remaining: Array<number> = [1]
  const inMap: Array<boolean> = [false]
  let depth = 0
  let pos = 0

  const need = (count: number): boolean => pos + count <= end

  while (depth >= 0) {
    if (remaining[depth] === 0) {
      depth--
      continue
    }
    const left = (remaining[depth] = remaining[depth]! - 1)
    // In a map of n entries (2n values), a key comes whenever an odd count remains after taking it.
    const expectKey = inMap[depth] === true && left % 2 === 1
    if (!need(1)) return ProtocolErrorCode.TruncatedFrame
    const token = bytes[pos++]!

    let stringLength = -1
    let skip = 0
    let children = -1
    let childIsMap = false

    if (token <= 0x7f || token >= 0xe0) {
      // fixint
    } else if (token <= 0x8f) {
      children = (token & 0x0f) * 2
      childIsMap = true
    } else if (token <= 0x9f) {
      children = token & 0x0f
    } else if (token <= 0xbf) {
      stringLength = token & 0x1f
    } else {
      switch (token) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          break
        case 0xc4: // bin 8/16/32
        case 0xd9: // str 8
          if (!need(1)) return ProtocolErrorCode.TruncatedFrame
          if (token === 0xd9) stringLength = bytes[pos]!
          else skip = bytes[pos]!
          pos += 1
          break
        case 0xc5:
        case 0xda:
          if (!need(2)) return ProtocolErrorCode.TruncatedFrame
          if (token === 0xda) stringLength = view.getUint16(pos)
          else skip = view.getUint16(pos)
          pos += 2
          break
        case 0xc6:
        case 0xdb:
          if (!need(4)) return ProtocolErrorCode.TruncatedFrame
          if (token === 0xdb) stringLength = view.getUint32(pos)
          else skip = view.getUint32(pos)
          pos += 4
          break
        case 0xca: // float 32
          skip = 4
          break
        case 0xcb: // float 64
          skip = 8
          break
        case 0xcc: // uint 8
        case 0xd0: // int 8
          skip = 1
          break
        case 0xcd:
        case 0xd1:
          skip = 2
          break
        case 0xce:
        case 0xd2:
          skip = 4
          break
        case 0xcf:
        case 0xd3:
          skip = 8
          break
        case 0xdc: // array 16
        case 0xde: // map 16
          if (!need(2)) return ProtocolErrorCode.TruncatedFrame
          children = view.getUint16(pos)
          pos += 2
          childIsMap = token === 0xde
          if (childIsMap) children *= 2
          break
        case 0xdd: // array 32
        case 0xdf: // map 32
          if (!need(4)) return ProtocolErrorCode.TruncatedFrame
          children = view.getUint32(pos)
          pos += 4
          childIsMap = token === 0xdf
          if (childIsMap) children *= 2
          break
        case 0xc7:
        case 0xc8:
        case 0xc9:
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
          return ProtocolErrorCode.ExtensionNotAllowed
        default: // 0xc1 is never used
          return ProtocolErrorCode.MalformedFrame
      }
    }

    if (expectKey && stringLength < 0) return ProtocolErrorCode.NonStringKey
    if (stringLength >= 0) {
      if (!need(stringLength)) return ProtocolErrorCode.TruncatedFrame
      if (expectKey && isForbiddenKey(bytes, pos, stringLength)) return ProtocolErrorCode.DisallowedKey
      pos += stringLength
    } else if (skip > 0) {
      if (!need(skip)) return ProtocolErrorCode.TruncatedFrame
      pos += skip
    } else if (children >= 0) {
      // Every value takes at least one byte: a longer declared length is a lie.
      if (children > end - pos) return ProtocolErrorCode.TruncatedFrame
      if (depth + 1 > maxDepth) return ProtocolErrorCode.NestingTooDeep
      depth++
      remaining[depth] = children
      inMap[depth] = childIsMap
    }
  }
  return pos === end ? undefined : ProtocolErrorCode.TrailingBytes
}
