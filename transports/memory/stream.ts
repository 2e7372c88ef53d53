import { Cancellation, Code, RpcError, type Headers } from "../../runtime/api.js";
import { encodeShared } from "../../runtime/index.js";
import {
  SendCredit,
  StreamInbox,
  abortError,
  statusFromHeaders,
  startTimer,
  type ClientStream,
  type IncomingStream,
  type Timer,
  type TransportStreamRequest,
  type WriteMessage,
  statusHeaders,
} from "../../runtime/transport.js";

/** How many messages each side may send before the other has taken one. Default of `window`. */
export const MEMORY_STREAM_WINDOW = 16;

/**
 * One streaming call of the in-process transport, both ends: the client's ClientStream
 * (`client`) and the server's IncomingStream (`server`). Messages cross as encoded bytes through
 * an inbox per direction with credit-based flow control: a sender holds `window` credits, spends
 * one per message and waits when it has none; the receiver gives one back each time its consumer
 * takes a message. So at most `window` messages wait in either direction and a slow reader slows
 * the writer, as on a real transport.
 */
export class MemoryStreamCall {
  readonly client: ClientStream;
  readonly server: IncomingStream;
  /** The server side's cancellation (`IncomingStream.signal`). */
  readonly serverSignal = new Cancellation();
  /** Settles when the call is over, whichever way. */
  readonly done: Promise<void>;
  private readonly requests: StreamInbox<Uint8Array>;
  private readonly requestCredit: SendCredit;
  private readonly responses: StreamInbox<Uint8Array>;
  private readonly responseCredit: SendCredit;
  private resolveHeaders!: (h: Headers) => void;
  private resolveTrailers!: (h: Headers) => void;
  private resolveDone!: () => void;
  private headersSent = false;
  private sendClosed = false;
  private sending: Promise<void> = Promise.resolve();
  /** The server finished (trailers) or the call failed: no more messages either way. */
  private over = false;
  /** Why the call failed (cancel, close, deadline), when it did. */
  private failure: RpcError | undefined;
  private timer: Timer | undefined;
  private readonly unlink: () => void;

  constructor(
    req: TransportStreamRequest,
    peer: string,
    window: number = MEMORY_STREAM_WINDOW,
  ) {
    this.requestCredit = new SendCredit(window);
    this.responseCredit = new SendCredit(window);
    this.requests = new StreamInbox({ onTake: () => this.requestCredit.grant(1) });
    this.responses = new StreamInbox({
      onTake: () => this.responseCredit.grant(1),
      onReturn: () => this.fail(new RpcError(Code.CANCELLED, "the response iterator was closed early")),
    });
    const headers = new Promise<Headers>((r) => (this.resolveHeaders = r));
    const trailers = new Promise<Headers>((r) => (this.resolveTrailers = r));
    this.done = new Promise((r) => (this.resolveDone = r));
    this.client = {
      responses: this.responses,
      headers,
      trailers,
      send: (m) => this.sendRequest(m),
      closeSend: () => this.closeSend(),
      cancel: (reason) => this.fail(reason instanceof RpcError ? reason : new RpcError(Code.CANCELLED, "call cancelled", { cause: reason })),
    };
    this.server = {
      service: req.service,
      method: req.method.name,
      headers: { ...req.headers },
      deadline: req.deadline,
      signal: this.serverSignal,
      peer,
      requests: this.requests,
      sendHeaders: (h) => this.sendHeaders(h),
      send: (encode) => this.sendResponse(encode),
    };
    const signal = req.signal;
    const onAbort = (): void => this.fail(abortError(signal, false));
    signal.addEventListener("abort", onAbort);
    this.unlink = () => signal.removeEventListener("abort", onAbort);
    if (req.deadline !== undefined) {
      this.timer = startTimer(req.deadline - Date.now(), () => this.fail(new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded on the stream")));
    }
  }

  /** The server's dispatcher is done: its trailers end the call (an error status fails it). */
  finish(trailers: Headers): void {
    if (this.over) return;
    const t = { ...trailers };
    const err = statusFromHeaders(t);
    this.settle(t);
    if (err === undefined) this.responses.end();
    else this.responses.fail(err);
    this.requests.fail(new RpcError(Code.CANCELLED, "the server has ended the call"), true);
    this.requestCredit.fail(err ?? new RpcError(Code.CANCELLED, "the server has ended the call"));
  }

  /**
   * Fails the call from either side: the client's iteration and sends reject with `error`, the
   * server's signal aborts with it and its requests throw it. Messages not yet taken are dropped.
   */
  fail(error: RpcError): void {
    if (this.over) return;
    this.failure = error;
    this.settle(statusHeaders(error));
    this.responses.fail(error, true);
    this.requests.fail(error, true);
    this.requestCredit.fail(error);
    this.responseCredit.fail(error);
    this.serverSignal.abort(error);
  }

  private settle(trailers: Headers): void {
    this.over = true;
    this.timer?.cancel();
    this.unlink();
    this.resolveHeaders(trailers);
    this.resolveTrailers(trailers);
    this.resolveDone();
  }

  private sendRequest(encode: WriteMessage): Promise<void> {
    if (this.sendClosed) return Promise.reject(new RpcError(Code.FAILED_PRECONDITION, "send() after closeSend(): the request side is closed"));
    let bytes: Uint8Array;
    try {
      bytes = encodeShared(encode);
    } catch (e) {
      return Promise.reject(RpcError.from(e));
    }
    const p = this.sending.then(async () => {
      if (this.over) {
        // The server finished with OK: it reads nothing more, and the outcome is in `responses`.
        if (this.failure === undefined) return;
        throw this.failure;
      }
      try {
        await this.requestCredit.acquire();
      } catch (e) {
        if (this.over && this.failure === undefined) return; // ended with OK while waiting: dropped
        throw e;
      }
      this.requests.push(bytes);
    });
    this.sending = p.catch(() => undefined);
    return p;
  }

  private closeSend(): Promise<void> {
    if (this.sendClosed) return this.sending;
    this.sendClosed = true;
    const p = this.sending.then(() => {
      if (this.failure !== undefined) throw this.failure;
      this.requests.end();
    });
    this.sending = p.catch(() => undefined);
    return p;
  }

  private sendHeaders(headers: Headers): void {
    if (this.headersSent || this.over) return;
    this.headersSent = true;
    this.resolveHeaders({ ...headers });
  }

  private async sendResponse(encode: WriteMessage): Promise<void> {
    if (this.over) throw this.failure ?? new RpcError(Code.FAILED_PRECONDITION, "the call has ended");
    const bytes = encodeShared(encode);
    await this.responseCredit.acquire();
    if (!this.headersSent) this.sendHeaders({});
    this.responses.push(bytes);
  }
}
