/**
 * Meridian's TCP transport: Kitex's TTHeader framing with a Kitex protobuf payload, many calls in
 * flight per connection, pooled connections per address. See docs/tcp.md.
 */
export { TcpClientTransport, type TcpClientOptions } from "./client.js";
export { TcpServerTransport, type TcpServerOptions } from "./server.js";
export {
  DEFAULT_FRAME_LIMITS,
  FrameError,
  InfoId,
  IntKey,
  MessageType,
  ProtocolId,
  StrKey,
  type FrameErrorCode,
  type FrameLimits,
} from "./framing.js";
