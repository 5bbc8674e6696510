/** The markup every page repeats, once: a scrollable table with column headers, an error line. */
import type { ComponentChildren } from "preact"

/** A table that scrolls sideways on a phone instead of squeezing; the rows are the children. */
export const Table = ({ columns, caption, children }: { columns: ReadonlyArray<string>; caption?: string; children: ComponentChildren }) => (
  <div class="scroll">
    <table>
      {caption !== undefined && <caption class="muted">{caption}</caption>}
      <thead>
        <tr>
          {columns.map((column) => (
            <th scope="col">{column}</th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  </div>
)

/** A typed error's message, announced to screen readers; nothing when there is none. */
export const Alert = ({ message }: { message: string | undefined }) =>
  message === undefined ? null : (
    <p class="error" role="alert">
      {message}
    </p>
  )
