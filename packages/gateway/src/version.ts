/** The gateway's version, as MCP clients and `--version` see it (kept equal to package.json's). */
export const GATEWAY_VERSION = "0.1.0"
