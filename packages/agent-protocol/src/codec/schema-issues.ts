/**
 * Turns a schema failure into a message that names the paths and what was expected,
 * never the values received: a rejected `hello` must not echo its credential into a log.
 */
import { SchemaIssue } from "effect"
import type { Schema } from "effect"

const valueFreeLeaf: SchemaIssue.LeafHook = (issue) => {
  switch (issue._tag) {
    case "InvalidType":
      return `expected ${expectedOf(issue.ast)}`
    case "MissingKey":
      return "missing"
    case "UnexpectedKey":
      return "not allowed"
    case "OneOf":
      return "matches more than one alternative"
    default:
      return "invalid value"
  }
}

const expectedOf = (ast: { readonly _tag: string; readonly annotations?: { readonly expected?: unknown } | undefined }): string => {
  const expected = ast.annotations?.expected
  return typeof expected === "string" ? expected : ast._tag.toLowerCase().replace(/keyword$/, "")
}

const valueFreeCheck: SchemaIssue.CheckHook = (issue) => {
  const annotations = issue.filter.annotations
  const expected = annotations?.expected ?? annotations?.description
  return typeof expected === "string" ? `expected ${expected}` : "failed a check"
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1({ leafHook: valueFreeLeaf, checkHook: valueFreeCheck })

/** `body.credential: expected a value with a length of at most 512; body.seq: missing` */
export const describeSchemaError = (error: Schema.SchemaError, maxIssues = 5): string => {
  const issues = formatter(error.issue).issues
  const parts = issues.slice(0, maxIssues).map((issue) => {
    const path = (issue.path ?? []).map((segment) => String(typeof segment === "object" ? segment.key : segment)).join(".")
    return path === "" ? issue.message : `${path}: ${issue.message}`
  })
  if (issues.length > maxIssues) parts.push(`and ${issues.length - maxIssues} more`)
  return parts.join("; ")
}
