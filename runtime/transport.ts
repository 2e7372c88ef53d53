/**
 * The interface a transport implements, the `meridian-rpc/transport` entry: ClientTransport and
 * ServerTransport with their call and stream shapes, stream flow control (StreamInbox,
 * SendCredit, ReceiveWindow), status headers, and the deadline and cancellation helpers every
 * transport shares.
 *
 * A transport also imports errors, metainfo and TLS types from `meridian-rpc` (runtime/api.ts)
 * and the codec from `meridian-rpc/runtime` (runtime/index.ts); docs/architecture.md lays out
 * the three entries.
 */
export {
  HeaderKeys,
  type Headers,
  copyHeaders,
  type AbortListener,
  type CallSignal,
  type Endpoint,
  type EndpointHealth,
  type TransportRequest,
  type TransportResponse,
  ReceivedResponse,
  type ClientTransport,
  type TransportStreamRequest,
  type ClientStream,
  type IncomingStream,
  type StreamDispatcher,
  type IncomingCall,
  type OutgoingReply,
  Reply,
  type CallDispatcher,
  dispatchCall,
  type ReplySink,
  type ServerTransport,
  type WriteMessage,
  settleCall,
  warmUpAll,
} from "./rpc/transport.js";
export { ServerCall } from "./rpc/server-call.js";
export { decodedResponses, decodeResponse, messageWriter } from "./rpc/client.js";
export { StreamInbox, SendCredit, ReceiveWindow, type InboxHooks } from "./rpc/flow.js";
export { MAX_STATUS_MESSAGE, clipText, errorHeaders, statusFromHeaders, statusHeaders, statusToHeaders } from "./rpc/status.js";
export {
  abortError,
  deadlineAfter,
  deadlineExceeded,
  DeadlineQueue,
  earliest,
  MAX_TIMER_MS,
  raceDeadline,
  raceSignal,
  sleep,
  startTimer,
  timerAt,
  timerDelay,
  type DeadlineEntry,
  type DeadlineQueueOptions,
  type Timer,
} from "./rpc/deadline.js";
export { onAbort } from "./rpc/signal.js";
export { SendDelayEstimator } from "./rpc/governance/admission.js";
// Thrift payloads: a transport that carries Thrift frames the envelope and answers errors with a
// TApplicationException; `thriftInfo` tells a Thrift function's descriptor (oneway) apart.
export { thriftInfo, type ThriftMethodInfo } from "./rpc/thrift.js";
export {
  TApplicationError,
  readApplicationException,
  readThriftEnvelope,
  writeApplicationException,
  writeThriftEnvelope,
  type ThriftEnvelope,
} from "./codec/thrift/envelope.js";
