/**
 * Meridian's TCP transport: Kitex's TTHeader framing with a Kitex protobuf payload, many calls in
 * flight per connection, pooled connections per address, and streams (TTHeader Streaming frames
 * with per-stream flow control) on the same connections. See docs/tcp.md.
 */
export { TcpClientTransport, type TcpClientOptions } from "./client.js";
export { DEFAULT_SERVER_LIMITS, TcpServerTransport, type TcpServerOptions, type TcpServerStats } from "./server.js";
export {
  DEFAULT_FRAME_LIMITS,
  FrameError,
  HeaderFlags,
  InfoId,
  IntKey,
  MessageType,
  ProtocolId,
  StrKey,
  StreamFrameType,
  type FrameErrorCode,
  type FrameLimits,
} from "./framing.js";
export { STREAM_INITIAL_WINDOW, TcpClientStream, TcpServerStream } from "./stream.js";
export { DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS, isLoopbackHost } from "./tls.js";
