/**
 * Traces: the SDK's spans — `Actions.execute`, `AgentPort.joinRequest`, `VipFailover.promote`,
 * `AgentPort.pendingPushes` / `completePushes` / `completePushesMany` — exported over OTLP/HTTP
 * (JSON) to a collector when an endpoint is set (the gateway reads `OTEL_EXPORTER_OTLP_ENDPOINT`).
 * Without one, spans cost next to nothing: Effect's default tracer keeps nothing.
 *
 * Span attributes name what was done (action, account, instance, VIP, outcome), never inputs,
 * credentials or tokens (R20).
 */
import { Duration, Layer } from "effect"
import { FetchHttpClient } from "effect/http"
import { OtlpSerialization, OtlpTracer } from "effect/observability"

export interface TracingOptions {
  /** The collector's OTLP/HTTP base URL, e.g. `http://otel-collector:4318`; spans go to `<endpoint>/v1/traces`. */
  readonly otlpEndpoint: string
  /** `service.name` of the exported spans (default `fleetplane`). */
  readonly serviceName?: string
  readonly serviceVersion?: string
  /** How often batched spans are sent (default 5 s); they are also sent when the fleet closes. */
  readonly exportIntervalMs?: number
}

/** Where OTLP/HTTP wants traces: the signal path appended to the base URL, as OTEL_EXPORTER_OTLP_ENDPOINT specifies. */
export const otlpTracesUrl = (endpoint: string) => `${endpoint.replace(/\/+$/, "")}/v1/traces`

export const tracingLayer = (options: TracingOptions) =>
  OtlpTracer.layer({
    url: otlpTracesUrl(options.otlpEndpoint),
    resource: { serviceName: options.serviceName ?? "fleetplane", ...(options.serviceVersion === undefined ? {} : { serviceVersion: options.serviceVersion }) },
    exportInterval: Duration.millis(options.exportIntervalMs ?? 5_000)
  }).pipe(Layer.provide([FetchHttpClient.layer, OtlpSerialization.layerJson]))
