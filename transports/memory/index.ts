/**
 * The in-process transport: clients and servers in one process, connected through a
 * MemoryNetwork by `memory://<name>` addresses. Calls go through the codecs (encoded on one
 * side, decoded on the other) and honour deadlines, cancellation and graceful close, so tests
 * and examples exercise everything but a socket.
 */
export { MemoryClientTransport, type MemoryClientOptions } from "./client.js";
export { MemoryStreamCall, MEMORY_STREAM_WINDOW } from "./stream.js";
export { MemoryServerTransport, type MemoryServerOptions } from "./server.js";
export { MemoryCall, MemoryNetwork, MEMORY_SCHEME, type MemoryListener } from "./connection.js";
