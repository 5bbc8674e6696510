/** The web console's terminal document (terminal.html): `#/` lists the instances, `#/{instance id}` opens a terminal on one. */
import { mountConsole } from "./shell"
import { TerminalPage } from "./pages/terminal"

mountConsole({
  current: () => "Terminal",
  page: ([id]) => <TerminalPage id={id === undefined || id === "" ? undefined : id} />
})
