/**
 * Values thousands of agents hold the same of, kept once: the gateway's sessions (their
 * account's id, their agent's capabilities) and liveness (k3s state and version, network ids).
 * Each message decodes fresh copies, which at 10,000 sessions is ~150 bytes a session for
 * nothing (#20's memory per session). Bounded, so an agent sending ever-new values cannot grow
 * the table: past the bound a value is kept as `keep` makes it, unshared.
 */
const BOUND = 4_096

export class Interned<A> {
  private readonly canonical = new Map<string, A>()
  /**
   * @param keyOf what makes two values equal
   * @param keep the copy to hold of a value seen first (the value itself unless it must not be
   *   held as it came: see `ownString`)
   */
  constructor(
    private readonly keyOf: (value: A) => string,
    private readonly keep: (value: A) => A = (value) => value
  ) {}

  /** The one copy of `value` (made of the first one seen), or `keep(value)` once the table is full. */
  of(value: A): A {
    const key = this.keyOf(value)
    const known = this.canonical.get(key)
    if (known !== undefined) return known
    const kept = this.keep(value)
    if (this.canonical.size < BOUND) this.canonical.set(key, kept)
    return kept
  }
}

/**
 * A string with storage of its own. msgpackr decodes the strings of a frame of 140 bytes or
 * more as slices of one string of the whole frame, and V8 keeps a slice's parent alive: a
 * string kept from a message would keep the whole message.
 */
export const ownString = <A extends string>(value: A): A => Buffer.from(value, "utf8").toString("utf8") as A

/** Strings kept once, as they came (they are not slices, or the message is kept anyway). */
export const internedStrings = <A extends string>() => new Interned<A>((value) => value)
/** Strings kept once, each an `ownString` copy: for strings kept long after their message. */
export const internedOwnStrings = <A extends string>() => new Interned<A>((value) => value, ownString)
export const internedStringLists = () => new Interned<ReadonlyArray<string>>((value) => value.join("\u0000"))
