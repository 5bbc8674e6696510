export { runDemo, type DemoOptions, type DemoSummary, type RunningDemo } from "./demo"
