/** Output for people (aligned tables) and for scripts (`--json`). */
export interface Io {
  readonly out: (text: string) => void
  readonly err: (text: string) => void
  /** Asks a question on the terminal; undefined when there is no terminal to ask on. */
  readonly ask: ((question: string) => Promise<string>) | undefined
  /** For `fleetplane terminal`: the local input and raw output (default: process stdin/stdout). */
  readonly terminal?: {
    readonly input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown }
    readonly output: (bytes: Uint8Array) => void
    readonly size: () => { cols: number; rows: number }
    /** Calls `listener` when the local terminal is resized; returns a function that stops it. */
    readonly onResize: (listener: () => void) => () => void
  }
}

export const table = (rows: ReadonlyArray<Record<string, unknown>>, columns: ReadonlyArray<string>): string => {
  if (rows.length === 0) return "(none)\n"
  const cell = (value: unknown) => (value === null || value === undefined ? "-" : typeof value === "object" ? JSON.stringify(value) : String(value))
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => cell(row[column]).length)))
  const line = (values: ReadonlyArray<string>) => values.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd()
  return [line(columns.map((c) => c.toUpperCase())), ...rows.map((row) => line(columns.map((c) => cell(row[c]))))].join("\n") + "\n"
}

export const fields = (record: Record<string, unknown>): string =>
  Object.entries(record)
    .map(([key, value]) => `${key}: ${value === null || value === undefined ? "-" : typeof value === "object" ? JSON.stringify(value) : String(value)}`)
    .join("\n") + "\n"
