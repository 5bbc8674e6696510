/**
 * Output for people and for scripts, as kubectl prints it: `-o table` (default), `wide` (more
 * columns), `json`, `yaml`, or `name` (`kind/name` per line, for xargs). Records print as
 * `key: value` lines with nested objects indented as YAML, never as one-line JSON.
 */
import { stringify } from "yaml"

export interface Io {
  readonly out: (text: string) => void
  readonly err: (text: string) => void
  /** Asks a question on the terminal; undefined when there is no terminal to ask on. */
  readonly ask: ((question: string) => Promise<string>) | undefined
  /** Whether stderr is a terminal: progress redraws one line there, and prints plain lines otherwise. */
  readonly isTerminal?: boolean
  /** For `fleetplane terminal`: the local input and raw output (default: process stdin/stdout). */
  readonly terminal?: {
    readonly input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown }
    readonly output: (bytes: Uint8Array) => void
    readonly size: () => { cols: number; rows: number }
    /** Calls `listener` when the local terminal is resized; returns a function that stops it. */
    readonly onResize: (listener: () => void) => () => void
  }
}

export const OUTPUT_FORMATS = ["table", "wide", "json", "yaml", "name"] as const
export type OutputFormat = (typeof OUTPUT_FORMATS)[number]

const cell = (value: unknown) =>
  value === null || value === undefined || value === ""
    ? "-"
    : Array.isArray(value)
      ? value.length === 0
        ? "-"
        : value.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(",")
      : typeof value === "object"
        ? JSON.stringify(value)
        : String(value)

/** A column: a field of the row, or a heading and a function of the row. */
export type Column<Row> = string | readonly [heading: string, value: (row: Row) => unknown]

export const table = <Row extends Record<string, unknown>>(rows: ReadonlyArray<Row>, columns: ReadonlyArray<Column<Row>>): string => {
  if (rows.length === 0) return "(none)\n"
  const heading = (c: Column<Row>) => (typeof c === "string" ? c : c[0])
  const valueOf = (row: Row, c: Column<Row>) => cell(typeof c === "string" ? row[c] : c[1](row))
  const cells = rows.map((row) => columns.map((c) => valueOf(row, c)))
  const widths = columns.map((c, i) => Math.max(heading(c).length, ...cells.map((r) => r[i]!.length)))
  const line = (values: ReadonlyArray<string>) => values.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd()
  return [line(columns.map((c) => heading(c).toUpperCase())), ...cells.map(line)].join("\n") + "\n"
}

/** `key: value` lines; a nested object or a list of objects is indented YAML under its key. */
export const fields = (record: Record<string, unknown>): string =>
  Object.entries(record)
    .map(([key, value]) => {
      const nested = value !== null && typeof value === "object" && (!Array.isArray(value) || value.some((v) => v !== null && typeof v === "object"))
      if (nested && (Array.isArray(value) ? value.length > 0 : Object.keys(value).length > 0)) {
        return `${key}:\n${stringify(value, { lineWidth: 0 }).trimEnd().replace(/^/gm, "  ")}`
      }
      return `${key}: ${cell(value)}`
    })
    .join("\n") + "\n"

export const asJson = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`
export const asYaml = (value: unknown) => stringify(value, { lineWidth: 0 })

/** A titled section of `describe` output. */
export const section = (title: string, body: string) => `\n${title}:\n${body.replace(/^(?=.)/gm, "  ")}`
