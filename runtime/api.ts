/**
 * The user API of Meridian, the package's main entry (`meridian-rpc`): createClient and
 * createServer, errors and their codes, call context and its keys, metainfo, the Middleware type,
 * governance (timeouts, retries, breakers, load balancing, limits) and observability.
 *
 * Generated code imports `meridian-rpc/runtime` (runtime/index.ts), transport authors
 * `meridian-rpc/transport` (runtime/transport.ts); docs/architecture.md lays out the three.
 * A name defined once may be exported here and from one of those when both audiences need it.
 */
export {
  createClient,
  clientMiddleware,
  type Client,
  type ClientOptions,
  type CallOptions,
  type MethodCall,
  type UnaryCall,
  type ServerStreamingCall,
  type ClientStreamingCall,
  type BidiStreamingCall,
} from "./rpc/client.js";
export {
  createServer,
  type Server,
  type ServerOptions,
  type CloseOptions,
  type Handlers,
  type HandlerOf,
  type HandlerFn,
  type ServerStreamingHandler,
  type ClientStreamingHandler,
  type BidiStreamingHandler,
  type Logger,
} from "./rpc/server.js";
export { RequestStream, type ResponseStream, type StreamInput } from "./rpc/streaming.js";
export {
  CallContext,
  ContextValues,
  createContextKey,
  currentContext,
  runWithContext,
  type CallContextInit,
  type ContextKey,
  type Consistency,
  type Side,
} from "./rpc/context.js";
export { compose, type Handler, type Middleware, type RpcRequest, type RpcResponse } from "./rpc/middleware.js";
export { Metainfo, MetainfoPrefix, type MetainfoKind } from "./rpc/metainfo.js";
export { BizError, Code, ConfigError, RpcError, type ConfigErrorCode, type RpcErrorOptions } from "./rpc/errors.js";
export { ThriftException } from "./codec/thrift/codec.js";
export { Cancellation } from "./rpc/signal.js";
export { peerIdentityOf, type ClientTls, type PeerIdentity, type Pem, type ServerTls } from "./rpc/tls.js";

// Shared with generated code (meridian-rpc/runtime): a user names services, methods and codecs
// in middleware and resolvers, and catches DecodeError from a codec's decode.
export type { MethodKind, IdempotencyLevel, MethodDescriptor, ServiceDescriptor, InputOf, OutputOf } from "./rpc/descriptors.js";
export type { MessageCodec, AnyMessageCodec, MessageOf, PayloadProtocol } from "./codec/types.js";
export { DecodeError, EncodeError, type DecodeErrorCode } from "./codec/errors.js";

// Shared with transport authors (meridian-rpc/transport): a user passes a transport to
// createClient/createServer, reads headers and writes resolvers that return endpoints.
export { HeaderKeys, type Headers, type Endpoint, type EndpointHealth, type ClientTransport, type ServerTransport } from "./rpc/transport.js";

export { timeoutMiddleware } from "./rpc/governance/timeout.js";
export {
  retryMiddleware,
  requeueMiddleware,
  backupMiddleware,
  isRetrySafe,
  RetryBudget,
  type RetryBudgetOptions,
  type RetryPolicy,
  type ResolvedRetryPolicy,
  type BackupPolicy,
} from "./rpc/governance/retry.js";
export {
  CircuitBreaker,
  CircuitOpenError,
  breakerMiddleware,
  classifyOutcome,
  type BreakerOptions,
  type BreakerOutcome,
  type BreakerPermit,
  type BreakerScope,
  type BreakerState,
} from "./rpc/governance/breaker.js";
export {
  WeightedRoundRobin,
  ConsistentHash,
  LeastLoaded,
  type LeastLoadedOptions,
  loadBalancerMiddleware,
  failedEndpoints,
  type LoadBalancer,
  type Resolver,
  type EndpointSource,
  type ConsistentHashOptions,
  type HashKeySource,
} from "./rpc/governance/loadbalance.js";
export { TokenBucket, limiterMiddleware, type LimiterOptions } from "./rpc/governance/limiter.js";
export { AdaptiveLimit, DEFAULT_ADAPTIVE_LIMIT, type AdaptiveLimitOptions } from "./rpc/governance/adaptive.js";
export { PRIORITY_HEADER, priorityOf, type Priority } from "./rpc/governance/priority.js";
export { DEFAULT_ADMISSION, type AdmissionOptions } from "./rpc/governance/admission.js";
export { DEFAULT_RUN_QUEUE } from "./rpc/governance/runqueue.js";
export { WorkerPool, offloaded, type WorkerPoolOptions } from "./rpc/offload.js";
export { statsMiddleware, type CallStats, type StatsHook } from "./rpc/observability/stats.js";
export { otelMiddleware, otelContextKey, type OtelOptions } from "./rpc/observability/otel.js";
export {
  RpcMetrics,
  LATENCY_BUCKETS_MS,
  type MetricsOptions,
  type MetricsSnapshot,
  type MethodMetrics,
  type HistogramSnapshot,
  type EventLoopDelay,
} from "./rpc/observability/metrics.js";
export { observabilityMiddleware, type ObservabilityOptions } from "./rpc/observability/index.js";
