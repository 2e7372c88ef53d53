import type { Middleware } from "../middleware.js";
import { otelMiddleware, type OtelOptions } from "./otel.js";
import { statsMiddleware, type StatsHook } from "./stats.js";

/** The observability options shared by createClient and createServer. */
export interface ObservabilityOptions {
  /** Stats/tracer hooks told of every call's start and end. */
  stats?: readonly StatsHook[];
  /** OpenTelemetry tracing: `true` for the global tracer provider, or options. Off by default. */
  otel?: OtelOptions | boolean;
}

/**
 * The observability slot of a chain: the stats middleware (built-in hooks first, then the
 * user's), with the OpenTelemetry middleware inside it.
 */
export function observabilityMiddleware(options: ObservabilityOptions, builtIn: readonly StatsHook[] = []): Middleware[] {
  const hooks = [...builtIn, ...(options.stats ?? [])];
  const chain: Middleware[] = [];
  if (hooks.length > 0) chain.push(statsMiddleware(hooks));
  if (options.otel !== undefined && options.otel !== false) chain.push(otelMiddleware(options.otel === true ? {} : options.otel));
  return chain;
}
