/**
 * Meridian's TCP transport: Kitex's TTHeader framing with a Kitex protobuf payload, many calls in
 * flight per connection, pooled connections per address, and streams (TTHeader Streaming frames
 * with per-stream flow control) on the same connections. See docs/tcp.md.
 */
export { TcpClientTransport, type TcpClientOptions } from "./client.js";
export { DEFAULT_SERVER_LIMITS, TcpServerTransport, type TcpServerOptions, type TcpServerStats } from "./server.js";
// What a user configures or catches; the wire's own constants (flags, info keys, frame types)
// stay in wire.ts, for the transport and its tests.
export { DEFAULT_FRAME_LIMITS, FrameError, type FrameErrorCode, type FrameLimits, type Framing } from "./wire.js";
export type { ThriftWireOptions } from "./thrift.js";
export { STREAM_INITIAL_WINDOW } from "./stream.js";
export { DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS, isLoopbackHost } from "./tls.js";
