import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Context,
  type TextMapGetter,
  type TextMapSetter,
  type TracerProvider,
} from "@opentelemetry/api";
import { createContextKey } from "../context.js";
import { Code, RpcError } from "../errors.js";
import type { Middleware } from "../middleware.js";
import { observeStream, streamsResponses } from "../streaming.js";
import type { Headers } from "../transport.js";

/** Options of the OpenTelemetry middleware. */
export interface OtelOptions {
  /** Where spans go. Default: the global provider (`trace.setGlobalTracerProvider`). */
  tracerProvider?: TracerProvider;
}

/**
 * The OpenTelemetry context of the server call being handled, so that client calls made while
 * handling it (with `parent`, or inherited automatically) start child spans even when no
 * OpenTelemetry context manager is installed.
 */
export const otelContextKey = createContextKey<Context | undefined>(undefined, { description: "meridian.otel.context" });

const headerSetter: TextMapSetter<Headers> = {
  set(carrier, key, value) {
    carrier[key] = value;
  },
};

const headerGetter: TextMapGetter<Headers> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/**
 * Tracing on OpenTelemetry's API (client and server; it reads `ctx.side`). Without an SDK the
 * API is a no-op, so this costs next to nothing until one is installed.
 *
 * Spans are named `<service>/<method>` (CLIENT or SERVER kind) with the attributes
 * `rpc.system=meridian`, `rpc.service`, `rpc.method` and `rpc.meridian.status_code`, and status
 * ERROR with the error's message on failure. Trace context crosses the wire in the request
 * headers through the global propagator (`propagation.setGlobalPropagator`, for example W3C
 * traceparent): the client injects, the server extracts.
 */
export function otelMiddleware(options: OtelOptions = {}): Middleware {
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer("meridian");
  return (next) => async (req) => {
    const ctx = req.ctx;
    const server = ctx.side === "server";
    const parent = server ? propagation.extract(ROOT_CONTEXT, req.headers, headerGetter) : (ctx.values.get(otelContextKey) ?? context.active());
    const span = tracer.startSpan(
      `${req.service.typeName}/${req.method.name}`,
      {
        kind: server ? SpanKind.SERVER : SpanKind.CLIENT,
        attributes: { "rpc.system": "meridian", "rpc.service": req.service.typeName, "rpc.method": req.method.name },
      },
      parent,
    );
    const active = trace.setSpan(parent, span);
    if (server) ctx.values.set(otelContextKey, active);
    else propagation.inject(active, req.headers, headerSetter);
    const end = (err: RpcError | undefined): void => {
      span.setAttribute("rpc.meridian.status_code", err === undefined ? Code.OK : err.code);
      if (err !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: `${err.codeName}: ${err.message}` });
      span.end();
    };
    let res;
    try {
      res = await context.with(active, () => next(req));
    } catch (e) {
      const err = RpcError.from(e);
      end(err);
      throw err;
    }
    // A streaming call's span lasts as long as its response stream.
    if (streamsResponses(req.method)) return observeStream(res, ctx, end);
    end(undefined);
    return res;
  };
}
