/**
 * Meridian's NATS transport: request/reply over a NATS server with headers, a queue group per
 * service, no responders and timeouts as RpcErrors, connection status in the open, and streaming
 * with credit-based flow control. See docs/nats.md.
 */
export { NatsClientTransport, type NatsClientOptions } from "./client.js";
export { DEFAULT_NATS_MAX_CONCURRENT_CALLS, NatsServerTransport, type NatsServerOptions } from "./server.js";
export {
  DEFAULT_PREFIX,
  type NatsConnectionOptions,
  type NatsState,
  type NatsStatus,
  type NatsStatusEvent,
  type NatsStatusListener,
} from "./connection.js";
