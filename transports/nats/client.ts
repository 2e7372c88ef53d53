import type { Msg } from "@nats-io/transport-node";
import { encodeShared } from "../../runtime/index.js";
import {
  ReceivedResponse,
  abortError,
  raceSignal,
  timerAt,
  type Timer,
  statusFromHeaders,
  type CallSignal,
  type ClientStream,
  type TransportRequest,
  type TransportResponse,
  type TransportStreamRequest,
} from "../../runtime/transport.js";
import { Code, RpcError, type ClientTransport } from "../../runtime/api.js";
import { NatsLink, type NatsConnectionOptions, type NatsStatus, type NatsStatusListener, type Route } from "./connection.js";
import { decodeHeaders, encodeHeaders, headerBytes, isNoResponders, NatsKey, type ReceivedHeaders } from "./wire.js";
import { methodSubject, NatsClientStream } from "./stream.js";

/** Options of {@link NatsClientTransport}. */
export interface NatsClientOptions extends NatsConnectionOptions {
  /**
   * How long a call without a deadline waits for its reply, ms (it is also sent to the server as
   * the call's budget): NATS cannot tell a client that a server died mid-call. Default 30 000.
   */
  defaultTimeoutMs?: number;
}

/** A unary call waiting for its reply on a token of the inbox. */
class PendingCall implements Route {
  timer: Timer | undefined;
  resolve!: (r: TransportResponse) => void;
  reject!: (e: RpcError) => void;

  constructor(
    private readonly client: NatsClientTransport,
    readonly token: string,
    readonly subject: string,
    readonly signal: CallSignal,
  ) {}

  deliver(msg: Msg): void {
    this.settle();
    let rh: ReceivedHeaders;
    try {
      rh = decodeHeaders(msg);
    } catch (e) {
      this.reject(new RpcError(Code.INTERNAL, `unreadable reply headers: ${(e as Error).message}`, { cause: e }));
      return;
    }
    if (isNoResponders(msg, rh.code)) {
      this.reject(
        new RpcError(
          Code.UNAVAILABLE,
          `no responders on ${this.subject}: no server is subscribed to it in any connected NATS cluster (is the service running, with the same subject prefix?)`,
          { notSent: true },
        ),
      );
      return;
    }
    const headers = rh.headers;
    const err = statusFromHeaders(headers);
    if (err !== undefined) {
      this.reject(err);
      return;
    }
    if (rh.code >= 300) {
      this.reject(new RpcError(Code.UNAVAILABLE, `NATS answered ${msg.headers?.status ?? rh.code} on ${this.subject}`, { headers }));
      return;
    }
    this.resolve(new ReceivedResponse(msg.data, headers));
  }

  lost(error: RpcError): void {
    this.fail(error);
  }

  /** The call's signal aborted (EventListenerObject: no closure per call). The late reply is dropped. */
  handleEvent(): void {
    this.fail(abortError(this.signal, false));
  }

  fail(error: RpcError): void {
    if (!this.client.forget(this)) return;
    this.settle();
    this.reject(error);
  }

  private settle(): void {
    this.client.forget(this);
    this.timer?.cancel();
    this.signal.removeEventListener("abort", this);
  }
}

function expire(p: PendingCall): void {
  p.fail(new RpcError(Code.DEADLINE_EXCEEDED, `deadline exceeded while waiting for the reply on ${p.subject}`));
}

/**
 * The client half of Meridian's NATS transport: each unary call is a NATS request on
 * `<prefix>.<package.Service>.<Method>` with the call's headers in the NATS header block; replies
 * come back on one muxed inbox subscription. Streaming calls run the credit-based protocol of
 * docs/nats.md. Connection events are visible through `status()` and `onStatus()`.
 */
export class NatsClientTransport implements ClientTransport {
  /** `unary` rejects as soon as the call's signal aborts, whatever it is waiting for (ClientTransport.settlesOnAbort). */
  readonly settlesOnAbort = true;
  private readonly link: NatsLink;
  private readonly defaultTimeoutMs: number;
  private closed = false;

  constructor(options: NatsClientOptions = {}) {
    this.link = new NatsLink(options, "client");
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 30_000;
  }

  /** The connection as it stands: state, server, reconnect and disconnect counts, last error. */
  status(): NatsStatus {
    return this.link.status;
  }

  /** Calls `listener` on every connection event; returns the unsubscribe. */
  onStatus(listener: NatsStatusListener): () => void {
    return this.link.addListener(listener);
  }

  /** The subject prefix used when a call names no endpoint. */
  get prefix(): string {
    return this.link.prefix;
  }

  unary(req: TransportRequest): Promise<TransportResponse> {
    if (req.signal.aborted) return Promise.reject(notSentAbort(req.signal));
    if (this.link.nc === undefined) {
      if (this.closed) return Promise.reject(new RpcError(Code.UNAVAILABLE, "the NATS client transport is closed", { notSent: true }));
      return raceSignal(this.link.connect(), req.signal).then(
        () => this.call(req),
        (e: unknown) => Promise.reject(e instanceof RpcError && e.notSent ? e : notSentAbort(req.signal)),
      );
    }
    return this.call(req);
  }

  private call(req: TransportRequest): Promise<TransportResponse> {
    const link = this.link;
    const nc = link.nc;
    if (nc === undefined || !link.up) {
      const s = link.status;
      return Promise.reject(
        new RpcError(Code.UNAVAILABLE, `the NATS connection is ${s.state}${s.lastError ? ` (${s.lastError})` : ""}: call not sent`, { notSent: true }),
      );
    }
    const subject = methodSubject(req.endpoint?.address ?? link.prefix, req.service, req.method);
    const now = Date.now();
    const deadline = req.deadline ?? now + this.defaultTimeoutMs;
    const timeoutMs = Math.ceil(deadline - now);
    if (!(timeoutMs > 0)) {
      return Promise.reject(new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded before the call was sent", { notSent: true }));
    }
    let payload: Uint8Array;
    try {
      payload = encodeShared(req.encode);
    } catch (e) {
      return Promise.reject(RpcError.from(e));
    }
    const headers = encodeHeaders(req.headers, { [NatsKey.timeout]: String(timeoutMs) });
    const size = headerBytes(headers) + payload.length;
    const max = link.maxPayload;
    if (size > max) {
      return Promise.reject(
        new RpcError(
          Code.INVALID_ARGUMENT,
          `request not sent: ${size} bytes (headers included) exceed the NATS server's max_payload of ${max} bytes; send less or raise max_payload in the server's configuration`,
          { notSent: true },
        ),
      );
    }
    const token = link.nextToken();
    const p = new PendingCall(this, token, subject, req.signal);
    const promise = new Promise<TransportResponse>((resolve, reject) => {
      p.resolve = resolve;
      p.reject = reject;
    });
    try {
      nc.publish(subject, payload, { reply: link.inbox + token, headers });
    } catch (e) {
      return Promise.reject(new RpcError(Code.UNAVAILABLE, `request not sent: ${(e as Error).message}`, { cause: e, notSent: true }));
    }
    link.route(token, p);
    p.timer = timerAt(deadline, () => expire(p));
    req.signal.addEventListener("abort", p);
    return promise;
  }

  /** Takes a call out of the inbox routes; false when it was settled already. */
  forget(p: PendingCall): boolean {
    return this.link.unroute(p.token);
  }

  /**
   * Opens a streaming call: an `open` message on the method's subject, answered by the server
   * instance the queue group picked; then data both ways under credit-based flow control.
   */
  stream(req: TransportStreamRequest): ClientStream {
    const link = this.link;
    const subject = methodSubject(req.endpoint?.address ?? link.prefix, req.service, req.method);
    const s = new NatsClientStream(link, req, subject);
    const start = (): void => {
      if (s.finished) return;
      if (!link.up) {
        s.fail(new RpcError(Code.UNAVAILABLE, `the NATS connection is ${link.status.state}: stream not opened`, { notSent: true }), false);
        return;
      }
      const timeoutMs = req.deadline === undefined ? 0 : Math.ceil(req.deadline - Date.now());
      if (req.deadline !== undefined && !(timeoutMs > 0)) {
        s.fail(new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded before the stream was opened", { notSent: true }), false);
        return;
      }
      s.open(timeoutMs);
    };
    if (this.closed) s.fail(new RpcError(Code.UNAVAILABLE, "the NATS client transport is closed", { notSent: true }), false);
    else if (link.nc !== undefined) start();
    else link.connect().then(start, (e: unknown) => s.fail(RpcError.from(e, Code.UNAVAILABLE), false));
    return s;
  }

  /** Connects now rather than on the first call; the endpoints (subject prefixes) need no warm-up. */
  async warmUp(): Promise<void> {
    await this.link.connect();
  }

  /** Fails calls in flight with UNAVAILABLE and closes the connection (unless it was handed in). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.link.close();
  }
}

/** The error of a call aborted before it was sent. */
function notSentAbort(signal: CallSignal): RpcError {
  return abortError(signal, true);
}
