export { runDemo, type DemoOptions, type DemoSummary } from "./demo"
