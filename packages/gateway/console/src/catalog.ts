/** What the signed-in key may run: the console shows only the buttons its role allows. */
import { createContext } from "preact"
import { useContext } from "preact/hooks"

const RANK = { read: 0, operate: 1, admin: 2 } as const
type Role = keyof typeof RANK

export class Catalog {
  private readonly access: Map<string, Role>
  constructor(
    readonly actions: ReadonlyArray<{ readonly name: string; readonly access: Role; readonly destructive: boolean }>,
    readonly role: Role
  ) {
    this.access = new Map(actions.map((action) => [action.name, action.access]))
  }
  /** Terminals are root shells on nodes: admin keys only (the gateway refuses others anyway). */
  get canOpenTerminals(): boolean {
    return this.role === "admin"
  }
  /** Whether this key's role may run `action` (the API refuses it anyway when not). */
  may(action: string): boolean {
    const needed = this.access.get(action)
    return needed !== undefined && RANK[this.role] >= RANK[needed]
  }
}

export const CatalogContext = createContext<Catalog>(new Catalog([], "read"))
export const useCatalog = () => useContext(CatalogContext)
