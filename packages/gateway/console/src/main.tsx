/** The web console: sign-in, then the fleet's pages, all through the admin API (api.ts). */
import { render } from "preact"
import { useEffect, useState } from "preact/hooks"
import { currentSession, signIn, signOut, run, startEventsAfter, ApiError, type Caller } from "./api"
import { Catalog, CatalogContext } from "./catalog"
import { FleetPage } from "./pages/fleet"
import { ClusterPage } from "./pages/cluster"
import { ApprovalsPage } from "./pages/approvals"
import { EventsPage } from "./pages/events"
import { NetworksPage } from "./pages/networks"
import { UpgradesPage } from "./pages/upgrades"

const useHash = () => {
  const [hash, setHash] = useState(location.hash || "#/fleet")
  useEffect(() => {
    const changed = () => setHash(location.hash || "#/fleet")
    addEventListener("hashchange", changed)
    return () => removeEventListener("hashchange", changed)
  }, [])
  return hash
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
      <input id="api-key" name="api-key" type="password" autocomplete="off" required value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} />
      <button class="primary" type="submit">
        Sign in
      </button>
      <p class="muted">The key is exchanged for a session cookie; it is not stored in the browser.</p>
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  )
}

const PAGES: ReadonlyArray<[string, string]> = [
  ["#/fleet", "Fleet"],
  ["#/networks", "Networks"],
  ["#/approvals", "Approvals"],
  ["#/upgrades", "Upgrades"],
  ["#/events", "Events"]
]

const App = () => {
  const [caller, setCaller] = useState<Caller | null>()
  const [catalog, setCatalog] = useState<Catalog>()
  const [error, setError] = useState<string>()
  const hash = useHash()
  useEffect(() => {
    currentSession().then((c) => setCaller(c ?? null), (e: Error) => setError(e.message))
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
  if (error !== undefined) return <p class="error" role="alert">{error}</p>
  if (caller === undefined) return <p class="muted">Loading…</p>
  if (caller === null) return <SignIn onSignedIn={setCaller} />
  if (catalog === undefined) return <p class="muted">Loading…</p>
  const [, page, id] = hash.split("/")
  return (
    <CatalogContext.Provider value={catalog}>
      <header>
        <strong>Fleetplane</strong>
        <nav aria-label="Pages">
          {PAGES.map(([href, label]) => (
            <a href={href} aria-current={hash.startsWith(href) ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <span class="who">
          {caller.name} ({caller.role}){" "}
          <button type="button" onClick={() => signOut().finally(() => setCaller(null))}>
            Sign out
          </button>
        </span>
      </header>
      <main>
        {page === "clusters" && id !== undefined ? (
          <ClusterPage id={decodeURIComponent(id)} />
        ) : page === "networks" ? (
          <NetworksPage />
        ) : page === "approvals" ? (
          <ApprovalsPage />
        ) : page === "upgrades" ? (
          <UpgradesPage />
        ) : page === "events" ? (
          <EventsPage />
        ) : (
          <FleetPage />
        )}
      </main>
    </CatalogContext.Provider>
  )
}

addEventListener("unhandledrejection", (event) => {
  if (event.reason instanceof ApiError) console.warn(event.reason.code, event.reason.message)
})
render(<App />, document.getElementById("app")!)
