/**
 * The CLI reference (packages/gateway/CLI.md), generated from the command definitions:
 * `fleetplane reference > packages/gateway/CLI.md`. A test regenerates it and fails when the
 * committed file differs, so the reference cannot drift from the commands.
 */
import type { Command, Option } from "commander"

const visible = (command: Command) => command.commands.filter((c) => c.name() !== "help")

const usageOf = (command: Command, path: ReadonlyArray<string>) => {
  const args = (command.registeredArguments ?? []).map((a) => (a.required ? `<${a.name()}${a.variadic ? "..." : ""}>` : `[${a.name()}${a.variadic ? "..." : ""}]`))
  return ["fleetplane", ...path, ...(command.options.length > 0 ? ["[options]"] : []), ...args].join(" ")
}

const optionRow = (option: Option) => {
  const extra = [
    option.argChoices === undefined ? undefined : `one of ${option.argChoices.map((c) => `\`${c}\``).join(", ")}`,
    option.defaultValue === undefined || option.defaultValue === false || (Array.isArray(option.defaultValue) && option.defaultValue.length === 0)
      ? undefined
      : `default \`${String(option.defaultValue)}\``,
    option.mandatory ? "required" : undefined
  ].filter((x) => x !== undefined)
  const description = `${option.description}${extra.length === 0 ? "" : ` (${extra.join("; ")})`}`.replace(/\|/g, "\\|")
  return `| \`${option.flags}\` | ${description} |`
}

export const cliReference = (program: Command): string => {
  const lines = [
    "# `fleetplane` command reference",
    "",
    "<!-- Generated from the command definitions by `fleetplane reference`; a test checks it. Do not edit by hand. -->",
    "",
    program.description(),
    "",
    "## Global options",
    "",
    "Given before or after the command.",
    "",
    "| option | meaning |",
    "| --- | --- |",
    ...program.options.map(optionRow),
    "",
    "Exit codes: 0 success, 1 unexpected error, 2 invalid input or usage, 3 unauthorized or forbidden, 4 not found, 5 conflict, 6 wrong state (including an upgrade that halted), 7 confirmation needed or cancelled, 8 a wait timed out, 10 the gateway is unreachable. A remote command's exit status is `fleetplane terminal`'s.",
    ""
  ]
  const walk = (command: Command, path: ReadonlyArray<string>) => {
    const subcommands = visible(command)
    if (path.length > 0 && (subcommands.length === 0 || command.options.length > 0 || (command.registeredArguments ?? []).length > 0)) {
      lines.push(`${"#".repeat(Math.min(path.length + 1, 4))} \`fleetplane ${path.join(" ")}\`${command.aliases().length > 0 ? ` (alias \`${command.aliases().join("`, `")}\`)` : ""}`, "")
      lines.push(command.description(), "", "```", usageOf(command, path), "```", "")
      if (command.options.length > 0) lines.push("| option | meaning |", "| --- | --- |", ...command.options.map((o) => optionRow(o as Option)), "")
    } else if (path.length > 0) {
      lines.push(`${"#".repeat(Math.min(path.length + 1, 4))} \`fleetplane ${path.join(" ")}\``, "", command.description(), "")
    }
    for (const sub of subcommands) walk(sub, [...path, sub.name()])
  }
  walk(program, [])
  return `${lines.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd()}\n`
}
