export { phasesWithPromises } from "./with-promises"
export { phasesWithEffect } from "./with-effect"
