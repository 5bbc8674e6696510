/**
 * Field schemas shared by action inputs. Strings are never empty: an empty string is a
 * mistake (a blank form field, an unset shell variable), not "absent" — omit the field or
 * pass null where the field allows it. Unknown fields are refused by the executor.
 */
import { Schema } from "effect"

/** An id, or the name an operator knows (a cluster's name, a node's hostname, a network's handle, ...). */
export const Ref = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(128))
/** A display name. */
export const Text = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(256))
/** A CIDR prefix as text (parsed and checked by the rules). */
export const CidrText = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64))
/** Free text such as a reason. */
export const Note = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(1024))
