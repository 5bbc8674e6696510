/**
 * Values thousands of sessions hold the same of (their account's id, their agent's
 * capabilities), kept once: each hello decodes fresh copies, which at 10,000 sessions is
 * ~150 bytes a session for nothing (#20's memory per session). Bounded, so an agent sending
 * ever-new values cannot grow the table: past the bound a value is simply kept as it came.
 */
const BOUND = 4_096

export class Interned<A> {
  private readonly canonical = new Map<string, A>()
  constructor(private readonly keyOf: (value: A) => string) {}

  /** The one copy of `value` (the first one seen), or `value` itself once the table is full. */
  of(value: A): A {
    const key = this.keyOf(value)
    const known = this.canonical.get(key)
    if (known !== undefined) return known
    if (this.canonical.size < BOUND) this.canonical.set(key, value)
    return value
  }
}

export const internedStrings = <A extends string>() => new Interned<A>((value) => value)
export const internedStringLists = () => new Interned<ReadonlyArray<string>>((value) => value.join("\u0000"))
