/**
 * What every console document shares: the session (sign-in when there is none), the key's
 * catalog, the header with the pages the key's role may see, and the live event stream. The
 * console is two documents: the pages (index.html) and the terminal (terminal.html), which
 * needs a CSP of its own (see console-assets.ts).
 */
import { render, type ComponentChildren } from "preact"
import { useEffect, useState } from "preact/hooks"
import { currentSession, signIn, signOut, run, startEventsAfter, ApiError, type Caller } from "./api"
import { Catalog, CatalogContext } from "./catalog"
import { Alert } from "./ui"

/** The route after `#/`, split on `/`: `#/clusters/clu_1` is ["clusters", "clu_1"]. */
const useRoute = () => {
  const read = () => location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent)
  const [route, setRoute] = useState(read)
  useEffect(() => {
    const changed = () => setRoute(read())
    addEventListener("hashchange", changed)
    return () => removeEventListener("hashchange", changed)
  }, [])
  return route
}

const SignIn = ({ onSignedIn }: { onSignedIn: (caller: Caller) => void }) => {
  const [key, setKey] = useState("")
  const [error, setError] = useState<string>()
  return (
    <form
      class="signin"
      onSubmit={async (event) => {
        event.preventDefault()
        setError(undefined)
        try {
          onSignedIn(await signIn(key.trim()))
        } catch (e) {
          setError((e as Error).message)
        }
      }}
    >
      <h1>Fleetplane</h1>
      <label for="api-key">API key</label>
      <input
        id="api-key"
        name="api-key"
        type="password"
        autocomplete="off"
        required
        value={key}
        onInput={(e) => setKey((e.target as HTMLInputElement).value)}
      />
      <button class="primary" type="submit">
        Sign in
      </button>
      <p class="muted">The key is exchanged for a session cookie; it is not stored in the browser.</p>
      <Alert message={error} />
    </form>
  )
}

/** The pages, by address; the terminal is its own document. */
const PAGES: ReadonlyArray<{ readonly href: string; readonly label: string; readonly shown?: (catalog: Catalog) => boolean }> = [
  { href: "/console/#/fleet", label: "Fleet" },
  { href: "/console/#/networks", label: "Networks" },
  { href: "/console/#/approvals", label: "Approvals" },
  { href: "/console/#/upgrades", label: "Upgrades" },
  { href: "/console/#/events", label: "Events" },
  { href: "/console/terminal.html", label: "Terminal", shown: (catalog) => catalog.canOpenTerminals }
]

const Header = ({ caller, catalog, current, onSignedOut }: { caller: Caller; catalog: Catalog; current: string; onSignedOut: () => void }) => (
  <header>
    <strong>Fleetplane</strong>
    <nav aria-label="Pages">
      {PAGES.filter((page) => page.shown?.(catalog) ?? true).map((page) => (
        <a href={page.href} aria-current={page.label === current ? "page" : undefined}>
          {page.label}
        </a>
      ))}
    </nav>
    <span class="who">
      {caller.name} ({caller.role}){" "}
      <button type="button" onClick={() => signOut().finally(onSignedOut)}>
        Sign out
      </button>
    </span>
  </header>
)

/** A document's pages: which header entry is current and what to show, from the route. */
export interface Pages {
  readonly current: (route: ReadonlyArray<string>) => string
  readonly page: (route: ReadonlyArray<string>) => ComponentChildren
}

const Shell = ({ pages }: { pages: Pages }) => {
  const [caller, setCaller] = useState<Caller | null>()
  const [catalog, setCatalog] = useState<Catalog>()
  const [error, setError] = useState<string>()
  const route = useRoute()
  useEffect(() => {
    currentSession().then(
      (c) => setCaller(c ?? null),
      (e: Error) => setError(e.message)
    )
  }, [])
  useEffect(() => {
    if (caller === null || caller === undefined) return
    // The stream starts after the newest event: pages read the state themselves first.
    run("system_list_events", { latest: true, limit: 1 })
      .then((page: { events: Array<{ seq: number }> }) => startEventsAfter(page.events.at(-1)?.seq ?? 0))
      .then(() => fetch("/v1/actions", { credentials: "same-origin" }).then((r) => r.json()))
      .then((body: { actions: Catalog["actions"] }) => setCatalog(new Catalog(body.actions, caller.role)))
      .catch((e: Error) => setError(e.message))
  }, [caller])
  if (error !== undefined) return <Alert message={error} />
  if (caller === undefined) return <p class="muted">Loading…</p>
  if (caller === null) return <SignIn onSignedIn={setCaller} />
  if (catalog === undefined) return <p class="muted">Loading…</p>
  return (
    <CatalogContext.Provider value={catalog}>
      <Header caller={caller} catalog={catalog} current={pages.current(route)} onSignedOut={() => setCaller(null)} />
      <main>{pages.page(route)}</main>
    </CatalogContext.Provider>
  )
}

export const mountConsole = (pages: Pages) => {
  addEventListener("unhandledrejection", (event) => {
    if (event.reason instanceof ApiError) console.warn(event.reason.code, event.reason.message)
  })
  render(<Shell pages={pages} />, document.getElementById("app")!)
}
