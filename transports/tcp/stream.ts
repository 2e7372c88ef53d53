import {
  abortError,
  type CallSignal,
  type ClientStream,
  type DeadlineEntry,
  type DeadlineQueue,
  type IncomingStream,
  ReceiveWindow,
  SendCredit,
  statusFromHeaders,
  statusToHeaders,
  StreamInbox,
  type TransportStreamRequest,
  type WriteMessage,
  statusHeaders,
} from "../../runtime/transport.js";
import { type PeerIdentity, Code, RpcError, Cancellation, type Headers } from "../../runtime/api.js";
import type { Writer } from "../../runtime/index.js";
import type { FrameConnection } from "./connection.js";
import { wireTimeout } from "./deadlines.js";
import {
  FrameError,
  HeaderFlags,
  ProtocolId,
  StrKey,
  StreamFrameType,
  beginFrame,
  boundStatus,
  endFrame,
  endHeader,
  writeStreamInfo,
  writeStringInfo,
  type FrameHead,
  type FrameLimits,
} from "./wire.js";

/**
 * Streaming over TTHeader frames (TTHeader Streaming, as Kitex's ttstream lays it out; see
 * docs/tcp.md, "Streams"): every frame of a stream has the Streaming flag, the stream id as its
 * sequence id, protocol 0x11 (the bare protobuf message as payload) and its frame type in int
 * key 27. Streams share their connection with unary calls and with each other.
 *
 * Flow control is per stream and per direction, in messages: a side may send
 * `STREAM_INITIAL_WINDOW` data frames before hearing from its peer, and then as many more as the
 * peer grants in window frames (type 6, string key `mrd-credit`), which the peer sends as its
 * consumer takes messages. So one slow reader holds back its own stream's writer, not the
 * connection, and no side buffers more than its window per stream.
 */

/** Data frames a side may send on a new stream before its peer grants more. */
export const STREAM_INITIAL_WINDOW = 32;

/** What a stream needs of the connection it lives on. */
export interface StreamHost {
  readonly fc: FrameConnection;
  readonly limits: FrameLimits;
  readonly deadlines: DeadlineQueue;
  /** This side's receive window per stream, in messages. */
  readonly streamWindow: number;
  /** Whether this side is shutting down (server: frames carry `crrst`). */
  readonly draining: boolean;
  /** The stream is over: take it out of the connection's map. */
  forget(stream: TcpStream): void;
}

/** Writes one streaming frame without payload (header, trailer, rst, window). */
function writeControl(host: StreamHost, sid: number, type: number, headers: Headers | undefined, k?: string, v?: string, method?: string, timeoutMs?: number): void {
  const fc = host.fc;
  const w = fc.writer;
  const mark = beginFrame(w, sid, HeaderFlags.Streaming, ProtocolId.ProtobufStruct);
  try {
    const reset = host.draining && (type === StreamFrameType.Header || type === StreamFrameType.Trailer);
    let count = reset ? writeStringInfo(w, headers, k, v, StrKey.reset, "1") : writeStringInfo(w, headers, k, v);
    count += writeStreamInfo(w, type, method, timeoutMs);
    endHeader(w, mark, count, host.limits);
    endFrame(w, mark, host.limits);
  } catch (e) {
    fc.rollback(mark);
    throw e;
  }
  fc.frameWritten();
}

/** Writes one data frame, the message encoded straight into the connection's slab. */
function writeData(host: StreamHost, sid: number, encode: (w: Writer) => void): void {
  const fc = host.fc;
  const w = fc.writer;
  const mark = beginFrame(w, sid, HeaderFlags.Streaming, ProtocolId.ProtobufStruct);
  try {
    const count = writeStreamInfo(w, StreamFrameType.Data);
    endHeader(w, mark, count, host.limits);
    encode(w);
    endFrame(w, mark, host.limits);
  } catch (e) {
    fc.rollback(mark);
    throw e;
  }
  fc.frameWritten();
}

/** The error a failed encode of a stream message stands for: nothing of it was sent. */
function messageError(e: unknown, what: string): RpcError {
  if (e instanceof RpcError) return e;
  if (e instanceof FrameError) {
    return new RpcError(e.code === "FRAME_TOO_LARGE" ? Code.RESOURCE_EXHAUSTED : Code.INVALID_ARGUMENT, `${what} not sent: ${e.message}`, { cause: e });
  }
  return new RpcError(Code.INVALID_ARGUMENT, `${what} not sent: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/** The error a trailer or rst frame carries: its status, or `fallback` when it has none. */
function frameStatus(headers: Headers, fallback: () => RpcError): RpcError {
  return statusFromHeaders(headers) ?? fallback();
}

/** Marks a SendCredit that ended because the call finished with OK: later sends are dropped. */
const ENDED_OK = new RpcError(Code.OK, "the call has ended");

/**
 * One end of a stream on a connection: the inbox of the peer's messages with the credit this
 * side grants, and the credit to send its own. Subclasses say what the frames mean on their side.
 */
export abstract class TcpStream implements DeadlineEntry {
  dlAt = 0;
  dlPrev: DeadlineEntry | undefined = undefined;
  dlNext: DeadlineEntry | undefined = undefined;
  dlQueued = false;
  /** The stream id (the frames' sequence id); 0 until a client stream is on a connection. */
  sid = 0;
  /** Nothing more is sent or received. */
  over = false;
  /** Why the stream failed, once it did. */
  error: RpcError | undefined;
  protected host: StreamHost | undefined;
  /** The deadline queue this stream is in, when it has a deadline. */
  protected deadlines: DeadlineQueue | undefined;
  protected readonly inbox: StreamInbox<Uint8Array>;
  protected readonly credit = new SendCredit(STREAM_INITIAL_WINDOW);
  private recv: ReceiveWindow | undefined;
  protected sending: Promise<void> = Promise.resolve();

  constructor() {
    this.inbox = new StreamInbox({ onTake: () => this.taken(), onReturn: () => this.abandoned() });
  }

  /** Joins `host`: from now on this side grants credit by `host.streamWindow`. */
  protected join(host: StreamHost): void {
    this.host = host;
    this.recv = new ReceiveWindow(Math.max(1, host.streamWindow), STREAM_INITIAL_WINDOW);
  }

  /** A window larger than the initial credit is granted at once. */
  protected openWindow(): void {
    const n = this.recv?.opening() ?? 0;
    if (n > 0) this.control(StreamFrameType.Window, undefined, StrKey.credit, String(n));
  }

  /** A frame for this stream. Frames after the stream is over are dropped. */
  onFrame(head: FrameHead, buf: Buffer, end: number): void {
    if (this.over) return;
    switch (head.frameType) {
      case StreamFrameType.Data: {
        if (this.inbox.closed) return;
        this.inbox.push(new Uint8Array(buf.buffer, buf.byteOffset + head.payloadStart, end - head.payloadStart));
        if (this.recv !== undefined && !this.recv.arrived(this.inbox.size)) {
          this.reset(new RpcError(Code.RESOURCE_EXHAUSTED, "the peer sent more messages than it was granted (flow control)"));
        }
        return;
      }
      case StreamFrameType.Window:
        this.credit.grant(Number(head.headers[StrKey.credit]) | 0);
        return;
      case StreamFrameType.Header:
        this.onHeader(head.headers);
        return;
      case StreamFrameType.Trailer:
        this.onTrailer(head.headers);
        return;
      case StreamFrameType.Rst:
        this.onRst(head.headers);
        return;
      default:
      // Kitex's meta frame and frame types of later versions: nothing to do.
    }
  }

  /** The consumer took a message: grant the peer more once half a window is free. */
  private taken(): void {
    const n = this.recv?.taken() ?? 0;
    if (n > 0 && !this.over) this.control(StreamFrameType.Window, undefined, StrKey.credit, String(n));
  }

  /** Writes a control frame on this stream, unless the connection is gone. */
  protected control(type: number, headers: Headers | undefined, k?: string, v?: string, method?: string, timeoutMs?: number): void {
    const host = this.host;
    if (host === undefined || host.fc.closed) return;
    writeControl(host, this.sid, type, headers, k, v, method, timeoutMs);
  }

  /**
   * Sends one message, in order after the ones before it: waits for credit and for the
   * connection's write queue to be under its limit, then encodes it into the slab. Resolves once
   * written (so a sender that awaits it holds at most one message); dropped when the call already
   * ended with OK; rejects with the call's error once it failed.
   */
  protected sendMessage(encode: (w: Writer) => void, what: string, ready?: Promise<void>): Promise<void> {
    const p = this.sending.then(async () => {
      if (ready !== undefined) await ready;
      try {
        await this.credit.acquire();
      } catch (e) {
        if (e === ENDED_OK) return;
        throw e;
      }
      const host = this.host!;
      if (host.fc.congested) await host.fc.drained();
      if (this.over) {
        if (this.error === undefined) return;
        throw this.error;
      }
      if (host.fc.closed) throw this.error ?? new RpcError(Code.UNAVAILABLE, "the connection is closed");
      this.beforeData();
      try {
        writeData(host, this.sid, encode);
      } catch (e) {
        throw messageError(e, what);
      }
    });
    this.sending = p.catch(() => undefined);
    return p;
  }

  /** Ends the stream on this side: no more frames in or out, out of the connection's map. */
  protected finish(): void {
    if (this.over) return;
    this.over = true;
    if (this.dlQueued) this.deadlines?.remove(this);
    this.host?.forget(this);
    this.finished();
  }

  /** Fails the stream here (no frame sent): pending pulls and sends reject with `error`. */
  protected failHere(error: RpcError): void {
    if (this.error === undefined) this.error = error;
    this.inbox.fail(error, true);
    this.credit.fail(error);
  }

  /** The call ended with OK on this side: sends still waiting are dropped. */
  protected endedOk(): void {
    this.credit.fail(ENDED_OK);
  }

  /** The peer broke the protocol on this stream: reset it with `error`. */
  protected abstract reset(error: RpcError): void;
  /** The consumer of the inbox stopped before the end. */
  protected abstract abandoned(): void;
  /** A data frame is about to be written (a server sends its headers first). */
  protected beforeData(): void {}
  protected abstract onHeader(headers: Headers): void;
  protected abstract onTrailer(headers: Headers): void;
  protected abstract onRst(headers: Headers): void;
  /** The connection is gone. */
  abstract lost(error: RpcError): void;
  abstract expire(): void;
  /** Called once when the stream is over. */
  protected finished(): void {}
}

/** What a client stream needs of its transport. */
export interface StreamTransport {
  readonly deadlines: DeadlineQueue;
  /** A connection for a new call or stream, connecting if needed (rejects UNAVAILABLE `notSent`). */
  connectionFor(req: TransportStreamRequest): Promise<ClientStreamHost>;
}

/** A client connection as a stream sees it: a host that also numbers streams. */
export interface ClientStreamHost extends StreamHost {
  /** Registers `stream` under a fresh sequence id and returns it. */
  open(stream: TcpStream): number;
}

/** The client end of a stream: what `TcpClientTransport.stream` returns. */
export class TcpClientStream extends TcpStream implements ClientStream {
  readonly responses: AsyncIterable<Uint8Array>;
  readonly headers: Promise<Headers>;
  readonly trailers: Promise<Headers>;
  private resolveHeaders!: (h: Headers) => void;
  private resolveTrailers!: (h: Headers) => void;
  private headersSeen = false;
  private sendClosed = false;
  /** The write batch of the opening header frame: sent once the connection's batch is past it. */
  private batch = -1;
  private readonly attached: Promise<void>;
  private readonly signal: CallSignal;

  constructor(
    transport: StreamTransport,
    private readonly req: TransportStreamRequest,
  ) {
    super();
    this.headers = new Promise((r) => (this.resolveHeaders = r));
    this.trailers = new Promise((r) => (this.resolveTrailers = r));
    this.signal = req.signal;
    this.responses = this.inbox;
    if (req.signal.aborted) {
      this.attached = Promise.resolve();
      this.fail(abortError(req.signal, true));
      return;
    }
    const deadline = req.deadline;
    if (deadline !== undefined) {
      if (!(deadline > Date.now())) {
        this.attached = Promise.resolve();
        this.fail(new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded before the stream was opened", { notSent: true }));
        return;
      }
      this.dlAt = deadline;
      this.deadlines = transport.deadlines;
      this.deadlines.add(this);
    }
    req.signal.addEventListener("abort", this);
    this.attached = transport.connectionFor(req).then(
      (host) => this.attach(host),
      (e: unknown) => {
        const err = RpcError.from(e, Code.UNAVAILABLE);
        this.fail(err.notSent ? err : new RpcError(err.code, err.message, { notSent: true, cause: e }));
      },
    );
  }

  /** On its connection: takes a stream id and writes the opening header frame. */
  private attach(host: ClientStreamHost): void {
    if (this.over) return;
    this.join(host);
    this.sid = host.open(this);
    const req = this.req;
    let timeoutMs = 0;
    if (req.deadline !== undefined) {
      timeoutMs = wireTimeout(req.deadline);
      if (!(timeoutMs > 0)) {
        this.fail(new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded before the stream was opened", { notSent: true }));
        return;
      }
    }
    try {
      this.control(StreamFrameType.Header, req.headers, StrKey.service, req.service, req.method.name, timeoutMs);
    } catch (e) {
      const err = messageError(e, "stream");
      this.fail(new RpcError(err.code, err.message, { notSent: true, cause: e }));
      return;
    }
    this.batch = host.fc.batch;
    this.openWindow();
  }

  send(encode: WriteMessage): Promise<void> {
    if (this.sendClosed) return Promise.reject(new RpcError(Code.FAILED_PRECONDITION, "send() after closeSend(): the request side is closed"));
    return this.sendMessage(encode, "stream request", this.attached);
  }

  closeSend(): Promise<void> {
    if (this.sendClosed) return this.sending;
    this.sendClosed = true;
    const p = this.sending.then(async () => {
      await this.attached;
      if (this.error !== undefined) throw this.error;
      if (!this.over) this.control(StreamFrameType.Trailer, undefined);
    });
    this.sending = p.catch(() => undefined);
    return p;
  }

  cancel(reason?: unknown): void {
    if (this.over) return;
    const err = abortError({ reason });
    this.rst(err);
    this.fail(err);
  }

  /** The call's signal aborted (EventListenerObject: no closure per stream). */
  handleEvent(): void {
    this.cancel(abortError(this.signal));
  }

  expire(): void {
    this.cancel(new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded on the stream"));
  }

  lost(error: RpcError): void {
    const sent = this.batch >= 0 && this.host !== undefined && this.host.fc.batch > this.batch;
    this.fail(sent ? error : new RpcError(error.code, error.message, { notSent: true, cause: error }));
  }

  protected reset(error: RpcError): void {
    this.cancel(error);
  }

  protected abandoned(): void {
    this.cancel(new RpcError(Code.CANCELLED, "the response iterator was closed early"));
  }

  protected onHeader(headers: Headers): void {
    this.seeHeaders(headers);
  }

  protected onTrailer(trailers: Headers): void {
    const err = statusFromHeaders(trailers);
    this.seeHeaders(trailers);
    this.resolveTrailers(trailers);
    if (err === undefined) {
      this.inbox.end();
      this.endedOk();
    } else {
      this.error = err;
      this.inbox.fail(err);
      this.credit.fail(err);
    }
    this.finish();
  }

  protected onRst(headers: Headers): void {
    this.fail(frameStatus(headers, () => new RpcError(Code.CANCELLED, "the server reset the stream")));
  }

  /** Fails the call here: iteration and sends reject with `error`; headers and trailers settle. */
  private fail(error: RpcError): void {
    if (this.over) return;
    this.failHere(error);
    const t = statusHeaders(error);
    this.seeHeaders(t);
    this.resolveTrailers(t);
    this.finish();
  }

  /** Tells the server the stream is cancelled, if it was opened. */
  private rst(error: RpcError): void {
    if (this.batch < 0 || this.over) return;
    try {
      this.control(StreamFrameType.Rst, statusToHeaders(error, {}));
    } catch {
      // a status too large for a frame: the stream ends here anyway
    }
  }

  private seeHeaders(h: Headers): void {
    if (this.headersSeen) return;
    this.headersSeen = true;
    this.resolveHeaders(h);
  }

  protected override finished(): void {
    this.signal.removeEventListener("abort", this);
  }
}

/** The server end of a stream: what the StreamDispatcher gets as its IncomingStream. */
export class TcpServerStream extends TcpStream implements IncomingStream {
  readonly signal = new Cancellation();
  readonly requests: AsyncIterable<Uint8Array>;
  private headersSent = false;

  constructor(
    host: StreamHost,
    sid: number,
    readonly service: string,
    readonly method: string,
    readonly headers: Headers,
    readonly deadline: number | undefined,
    readonly peer: string,
    readonly peerIdentity: PeerIdentity | undefined,
  ) {
    super();
    this.sid = sid;
    this.requests = this.inbox;
    this.join(host);
    if (deadline !== undefined) {
      this.dlAt = deadline;
      this.deadlines = host.deadlines;
      this.deadlines.add(this);
    }
    this.openWindow();
  }

  sendHeaders(headers: Headers): void {
    if (this.headersSent || this.over) return;
    this.headersSent = true;
    this.control(StreamFrameType.Header, headers);
  }

  send(encode: (writer: Writer) => void): Promise<void> {
    if (this.over) return Promise.reject(this.error ?? new RpcError(Code.FAILED_PRECONDITION, "the stream has ended"));
    return this.sendMessage(encode, "stream response");
  }

  protected override beforeData(): void {
    if (!this.headersSent) this.sendHeaders({});
  }

  /**
   * The dispatcher is done: sends the trailers and forgets the stream. Not after the client
   * reset it or the connection failed; after this side's own deadline, yes (the trailers say so).
   * Never throws (it runs in a promise continuation): trailers that cannot be sent are replaced
   * by a short INTERNAL status, and if even that fails the connection is closed.
   */
  end(trailers: Headers): void {
    if (!this.over && (this.error === undefined || this.error.code === Code.DEADLINE_EXCEEDED)) {
      try {
        this.control(StreamFrameType.Trailer, boundStatus(trailers));
      } catch (e) {
        const err = new RpcError(Code.INTERNAL, `the stream's trailers cannot be sent: ${e instanceof Error ? e.message : String(e)}`);
        try {
          this.control(StreamFrameType.Trailer, statusToHeaders(err, {}));
        } catch (again) {
          this.host?.fc.destroy(again instanceof Error ? again : err);
        }
      }
    }
    this.endedOk();
    this.finish();
  }

  expire(): void {
    this.abortHere(new RpcError(Code.DEADLINE_EXCEEDED, "the stream's deadline passed"));
  }

  lost(error: RpcError): void {
    this.abortHere(error);
    this.finish();
  }

  protected reset(error: RpcError): void {
    this.control(StreamFrameType.Rst, statusToHeaders(error, {}));
    this.abortHere(error);
  }

  protected abandoned(): void {
    // The handler stopped reading requests: nothing to tell the client; its sends are dropped
    // once the call ends.
  }

  protected onHeader(): void {
    // A second header frame from the client: nothing in the protocol; ignored.
  }

  protected onTrailer(): void {
    this.inbox.end();
  }

  protected onRst(headers: Headers): void {
    this.abortHere(frameStatus(headers, () => new RpcError(Code.CANCELLED, "the client cancelled the stream")));
  }

  /** Aborts the call on this side: the handler's signal, its requests and its sends. */
  private abortHere(error: RpcError): void {
    this.failHere(error);
    this.signal.abort(error);
  }
}
