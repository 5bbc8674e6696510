// A probe that lives inside a test node's namespace for the whole test: it answers TCP on
// port 7946 with the node's name (so others can check they reach it over the overlay), and
// runs the connects the test asks for on stdin (`<id> <host> <port> <timeout ms>`), answering
// on stdout `<id> ok <what answered> <ms>` or `<id> fail <reason> <ms>`. One process per node:
// spawning one per probe would cost more than the failover being measured.
import { connect, createServer } from "node:net"
import { createInterface } from "node:readline"

const [name] = process.argv.slice(2)
createServer((socket) => socket.end(`${name}\n`)).listen({ port: 7946, host: "::", ipv6Only: false })

createInterface({ input: process.stdin }).on("line", (line) => {
  const [id, host, port, timeout] = line.trim().split(" ")
  const started = performance.now()
  let answered = ""
  let done = false
  const finish = (result) => {
    if (done) return
    done = true
    socket.destroy()
    process.stdout.write(`${id} ${result} ${Math.round(performance.now() - started)}\n`)
  }
  const socket = connect({ host, port: Number(port) })
  socket.setTimeout(Number(timeout), () => finish("fail timeout"))
  socket.on("data", (data) => (answered += data.toString()))
  socket.on("end", () => finish(answered.trim() === "" ? "fail empty" : `ok ${answered.trim()}`))
  socket.on("error", (error) => finish(`fail ${error.code ?? "error"}`))
})
