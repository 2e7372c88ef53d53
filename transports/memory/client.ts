import { Cancellation, Code, RpcError, type ClientTransport } from "../../runtime/api.js";
import { DecodeError, sharedWriter, encodeShared } from "../../runtime/index.js";
import {
  ReceivedResponse,
  abortError,
  onAbort,
  statusFromHeaders,
  type ClientStream,
  type TransportRequest,
  type TransportResponse,
  type TransportStreamRequest,
} from "../../runtime/transport.js";
import { MemoryCall, type MemoryListener, type MemoryNetwork } from "./connection.js";
import { MEMORY_STREAM_WINDOW, MemoryStreamCall } from "./stream.js";

/** Options of the in-process client transport. */
export interface MemoryClientOptions {
  /** The server to call when load balancing picked no endpoint (`memory://<name>`). */
  address?: string;
  /** The network to find servers in (the one they listen in). */
  network: MemoryNetwork;
  /** Streaming: how many messages each side may have in flight before the other takes one. Default 16. */
  streamWindow?: number;
}

let serial = 0;

/**
 * The client half of the in-process transport: finds the server by the endpoint's address in
 * its MemoryNetwork and passes the call as a real transport would: the request as the bytes its
 * WriteMessage encodes, headers copied (keys kept exactly as given: case is preserved, as on
 * TTHeader), the deadline forwarded, and the response as the bytes the server's reply encodes. Cancelling the call's signal aborts the server side of the call. Streams have
 * credit-based flow control in both directions (MemoryStreamCall).
 */
export class MemoryClientTransport implements ClientTransport {
  /** `unary` rejects as soon as the call's signal aborts, whatever it is waiting for (ClientTransport.settlesOnAbort). */
  readonly settlesOnAbort = true;
  /** How this client appears to servers (`IncomingCall.peer`). */
  readonly peer = `memory://client-${++serial}`;
  private readonly network: MemoryNetwork;
  private readonly inflight = new Set<MemoryCall>();
  private readonly streams = new Set<MemoryStreamCall>();
  private closed = false;

  constructor(private readonly options: MemoryClientOptions) {
    this.network = options.network;
  }

  /** The server a call goes to; throws UNAVAILABLE `notSent` when there is none. */
  private target(req: TransportStreamRequest): MemoryListener {
    const address = req.endpoint?.address ?? this.options.address;
    if (this.closed) throw new RpcError(Code.UNAVAILABLE, "the memory client transport is closed", { notSent: true });
    if (address === undefined) {
      throw new RpcError(Code.UNAVAILABLE, "no address to call: give createClient endpoints, or the memory transport an address", {
        notSent: true,
      });
    }
    const server = this.network.lookup(address);
    if (server === undefined) throw new RpcError(Code.UNAVAILABLE, `no memory server listening at ${address}`, { notSent: true });
    return server;
  }

  async unary(req: TransportRequest): Promise<TransportResponse> {
    const server = this.target(req);
    if (req.signal.aborted) throw abortError(req.signal, true);
    const payload = encodeShared(req.encode);
    const call = new MemoryCall(req.service, req.method.name, { ...req.headers }, payload, req.deadline, this.peer);
    const unlink = onAbort(req.signal, () => call.abort(abortError(req.signal, false)));
    this.inflight.add(call);
    try {
      const reply = await server.serve(call);
      const headers = { ...reply.headers };
      const err = statusFromHeaders(headers);
      if (err !== undefined) throw err;
      if (reply.encode === undefined) throw new RpcError(Code.INTERNAL, "the server replied with neither a message nor a status", { headers });
      return new ReceivedResponse(encodeShared(reply.encode), headers);
    } finally {
      unlink();
      this.inflight.delete(call);
    }
  }

  stream(req: TransportStreamRequest): ClientStream {
    const call = new MemoryStreamCall(req, this.peer, this.options.streamWindow ?? MEMORY_STREAM_WINDOW);
    let server: MemoryListener;
    try {
      server = this.target(req);
      if (req.signal.aborted) throw abortError(req.signal, true);
    } catch (e) {
      const err = RpcError.from(e);
      call.fail(err.notSent ? err : new RpcError(err.code, err.message, { notSent: true, cause: e }));
      return call.client;
    }
    this.streams.add(call);
    void call.done.then(() => this.streams.delete(call));
    server.serveStream(call);
    return call.client;
  }

  /** Fails the calls and streams in flight with UNAVAILABLE and refuses new ones. */
  async close(): Promise<void> {
    this.closed = true;
    const err = new RpcError(Code.UNAVAILABLE, "the memory client transport was closed");
    for (const c of this.inflight) c.abort(err);
    this.inflight.clear();
    for (const s of this.streams) s.fail(err);
    this.streams.clear();
  }
}
