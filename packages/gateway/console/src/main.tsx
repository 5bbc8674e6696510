/** The web console's pages (index.html): the fleet, clusters, networks, approvals, upgrades, events. */
import { mountConsole } from "./shell"
import { FleetPage } from "./pages/fleet"
import { ClusterPage } from "./pages/cluster"
import { ApprovalsPage } from "./pages/approvals"
import { EventsPage } from "./pages/events"
import { NetworksPage } from "./pages/networks"
import { UpgradesPage } from "./pages/upgrades"

const LABELS: Record<string, string> = { networks: "Networks", approvals: "Approvals", upgrades: "Upgrades", events: "Events" }

mountConsole({
  current: ([page]) => LABELS[page ?? ""] ?? "Fleet",
  page: ([page, id]) =>
    page === "clusters" && id !== undefined ? (
      <ClusterPage id={id} />
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
    )
})
