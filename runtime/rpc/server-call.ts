import { Cancellation } from "./signal.js";
import type { RpcError } from "./errors.js";
import type { CallSignal, Headers, IncomingCall } from "./transport.js";

/**
 * The base of a unary call as a server transport hands it to the runtime: the IncomingCall
 * fields, and a signal created only when something reads it, so a call whose cancellation nobody
 * follows costs no signal, no deadline timer and no listener. Every server transport extends it
 * (tcp, grpc, nats) or builds its calls with it (memory); a subclass says how it follows the call
 * (`follow`, on the first read of the signal: a deadline timer, a peer's cancel) and stops
 * (`unfollow`, once the call is aborted or answered).
 */
export abstract class ServerCall implements IncomingCall {
  private cancellation: Cancellation | undefined;
  private abortReason: RpcError | undefined;
  private over = false;

  constructor(
    readonly service: string,
    readonly method: string,
    readonly headers: Headers,
    readonly deadline: number | undefined,
  ) {}

  /** The raw request payload; valid until the call ends. */
  abstract readonly payload: Uint8Array;
  /** The peer's address. */
  abstract readonly peer: string;

  get signal(): CallSignal {
    let c = this.cancellation;
    if (c === undefined) {
      c = this.cancellation = new Cancellation();
      if (this.abortReason !== undefined) c.abort(this.abortReason);
      else if (!this.over) this.follow();
    }
    return c;
  }

  /** Whether the call was aborted (cancelled by the peer, past its deadline, cut off by a close). */
  get aborted(): boolean {
    return this.abortReason !== undefined;
  }

  /** Aborts the call's signal, now or when it is first read. Later calls do nothing. */
  abort(reason: RpcError): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.done();
    this.cancellation?.abort(reason);
  }

  /** The call is answered (or aborted): what follows it stops. */
  done(): void {
    if (this.over) return;
    this.over = true;
    if (this.cancellation !== undefined) this.unfollow();
  }

  /**
   * Starts following the call, once, on the first read of its signal: typically a timer that
   * aborts it at its deadline (`abort(deadlineExceeded(...))`) and a listener for the peer's cancel.
   */
  protected follow(): void {}

  /** Stops what `follow` started; called once, when the call is answered or aborted. */
  protected unfollow(): void {}
}
