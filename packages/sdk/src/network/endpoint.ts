/**
 * The UDP endpoint an agent advertises for its WireGuard interface: `a.b.c.d:port`,
 * `[v6::addr]:port` or `host.name:port`. It goes verbatim into every other peer's `Endpoint =`
 * line, so anything else (a path, spaces, a newline that would inject a config line) is refused.
 */
import ipaddr from "ipaddr.js"

/** RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens, at most 253 characters. */
const HOSTNAME = /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/

export type EndpointParse = { readonly ok: true; readonly endpoint: string } | { readonly ok: false; readonly reason: string }

export const parseWireguardEndpoint = (text: string): EndpointParse => {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text)
  if (match === null) return { ok: false, reason: `"${text.slice(0, 100)}" is not host:port (write an IPv6 address in brackets: [fd00::1]:51820)` }
  const port = Number(match[3])
  if (port < 1 || port > 65535) return { ok: false, reason: `port ${port} is not between 1 and 65535` }
  if (match[1] !== undefined) {
    if (!ipaddr.IPv6.isValid(match[1]) || match[1].includes("%")) return { ok: false, reason: `"${match[1].slice(0, 100)}" is not an IPv6 address` }
    return { ok: true, endpoint: `[${ipaddr.IPv6.parse(match[1]).toString()}]:${port}` }
  }
  const host = match[2]!
  if (/^[0-9.]+$/.test(host)) {
    if (!ipaddr.IPv4.isValidFourPartDecimal(host)) return { ok: false, reason: `"${host.slice(0, 100)}" is not an IPv4 address` }
    return { ok: true, endpoint: `${ipaddr.IPv4.parse(host).toString()}:${port}` }
  }
  if (!HOSTNAME.test(host)) return { ok: false, reason: `"${host.slice(0, 100)}" is not a host name` }
  return { ok: true, endpoint: `${host.toLowerCase()}:${port}` }
}
