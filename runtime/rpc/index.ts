/**
 * Meridian's RPC runtime: typed clients and servers, the middleware model, call context and
 * metainfo, deadlines, governance and observability, and the transport seam.
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
} from "./client.js";
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
} from "./server.js";
export {
  RequestStream,
  observeStream,
  requestsTaken,
  resumeStream,
  streamsRequests,
  streamsResponses,
  type ResponseStream,
  type StreamInput,
} from "./streaming.js";
export { StreamInbox, SendCredit, ReceiveWindow, type InboxHooks } from "./flow.js";
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
} from "./context.js";
export { compose, type Handler, type Middleware, type RpcRequest, type RpcResponse } from "./middleware.js";
export { Metainfo, MetainfoPrefix, type MetainfoKind } from "./metainfo.js";
export {
  abortError,
  deadlineAfter,
  deadlineExceeded,
  earliest,
  MAX_TIMER_MS,
  raceSignal,
  sleep,
  startTimer,
  timerDelay,
  type Timer,
} from "./deadline.js";
export { Cancellation, onAbort } from "./signal.js";
export { BizError, Code, ConfigError, RpcError, type ConfigErrorCode, type RpcErrorOptions } from "./errors.js";
export { MAX_STATUS_MESSAGE, statusFromHeaders, statusToHeaders } from "./status.js";
export type { MethodKind, IdempotencyLevel, MethodDescriptor, ServiceDescriptor, InputOf, OutputOf } from "./descriptors.js";
export {
  HeaderKeys,
  type Headers,
  type AbortListener,
  type CallSignal,
  type Endpoint,
  type EndpointHealth,
  type TransportRequest,
  type TransportResponse,
  type ClientTransport,
  type TransportStreamRequest,
  type ClientStream,
  type IncomingStream,
  type StreamDispatcher,
  type IncomingCall,
  type OutgoingReply,
  type CallDispatcher,
  type ServerTransport,
  settleCall,
  warmUpAll,
} from "./transport.js";
export { peerIdentityOf, type ClientTls, type PeerIdentity, type Pem, type ServerTls } from "./tls.js";
export { timeoutMiddleware } from "./governance/timeout.js";
export {
  retryMiddleware,
  requeueMiddleware,
  isRefused,
  backupMiddleware,
  backoffDelay,
  resolveRetryPolicy,
  isIdempotent,
  isRetrySafe,
  RetryBudget,
  type RetryBudgetOptions,
  type RetryPolicy,
  type ResolvedRetryPolicy,
  type BackupPolicy,
} from "./governance/retry.js";
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
} from "./governance/breaker.js";
export {
  WeightedRoundRobin,
  ConsistentHash,
  LeastLoaded,
  type LeastLoadedOptions,
  loadBalancerMiddleware,
  failedEndpoints,
  hash32,
  type LoadBalancer,
  type Resolver,
  type EndpointSource,
  type ConsistentHashOptions,
  type HashKeySource,
} from "./governance/loadbalance.js";
export { TokenBucket, limiterMiddleware, type LimiterOptions } from "./governance/limiter.js";
export { AdaptiveLimit, DEFAULT_ADAPTIVE_LIMIT, type AdaptiveLimitOptions } from "./governance/adaptive.js";
export { PRIORITY_HEADER, priorityOf, type Priority } from "./governance/priority.js";
export { QueueShedder, DEFAULT_ADMISSION, type AdmissionOptions } from "./governance/admission.js";
export { RunQueue, DEFAULT_RUN_QUEUE } from "./governance/runqueue.js";
export { WorkerPool, offloaded, type WorkerPoolOptions } from "./offload.js";
export { statsMiddleware, type CallStats, type StatsHook } from "./observability/stats.js";
export { otelMiddleware, otelContextKey, type OtelOptions } from "./observability/otel.js";
export {
  RpcMetrics,
  LATENCY_BUCKETS_MS,
  type MetricsOptions,
  type MetricsSnapshot,
  type MethodMetrics,
  type HistogramSnapshot,
  type EventLoopDelay,
} from "./observability/metrics.js";
export { observabilityMiddleware, type ObservabilityOptions } from "./observability/index.js";
