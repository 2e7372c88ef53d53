import type { Handler, Middleware, RpcRequest, RpcResponse } from "./middleware.js";

/**
 * A chain without a promise per link, on either side. Each promise costs a microtask and, with
 * AsyncLocalStorage on (a server's default, which turns its promise hooks on for the whole
 * process, the clients of a mid-tier service included), its promise hooks: about 300 ns of CPU
 * per call and per link (docs/profile.md, "Promises and clock reads per call"). The runtime's own
 * links are direct: on a server the user's handler, the stats middleware and the limiter; on a
 * client the transport's end of the chain, the stats middleware, the timeout, retry and requeue,
 * and load balancing. A link answers with the response itself when nothing was awaited, or with a
 * {@link Later} when something was (a handler's promise, the transport's), to which the links
 * around it add what they do with the outcome; whoever takes the answer waits for it with one
 * `then`. A user's middleware still gets a promise from `next` and returns one: the chain is
 * direct up to it.
 */

/** A link of a chain that may answer at once or {@link Later}. It may throw instead of rejecting. */
export type DirectHandler = (req: RpcRequest) => DirectAnswer;

/** What a direct link answers: the response, a promise of it (from a plain middleware inside), or a Later. */
export type DirectAnswer = RpcResponse | Promise<RpcResponse> | Later;

/** A middleware that also has a form over direct handlers, which `composeDirect` uses. */
export interface DirectMiddleware extends Middleware {
  direct(next: DirectHandler): DirectHandler;
}

/** True when `v` has a `then` method (a promise, or any thenable a handler returned). */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as { then?: unknown } | null | undefined)?.then === "function";
}

/**
 * `direct` as a middleware of both forms: itself for `composeDirect`, and as a plain middleware
 * (a Handler is a direct handler whose answers are promises; `promised` makes its answer one).
 */
export function directMiddleware(direct: (next: DirectHandler) => DirectHandler): DirectMiddleware {
  return Object.assign((next: Handler) => promised(direct(next)), { direct });
}

/**
 * What a link of a {@link Later} does with the outcome before it: `ok` with the value, `failed`
 * with the error (see Later). A link can hand a Later two closures, or be a step itself: an object
 * whose methods these are, one allocation per call where the closures would be three.
 */
export interface LaterStep {
  ok(value: unknown): unknown;
  failed(error: unknown): unknown;
  /** The step after this one: set by the Later (undefined until then). */
  next: LaterStep | undefined;
}

/** One link's step of a {@link Later} from its two closures; a class, not a literal, for the reason `CallRequest` gives. */
class Step implements LaterStep {
  declare readonly ok: (value: unknown) => unknown;
  declare readonly failed: (error: unknown) => unknown;
  declare next: LaterStep | undefined;

  constructor(ok: (value: unknown) => unknown, failed: (error: unknown) => unknown) {
    this.ok = ok;
    this.failed = failed;
    this.next = undefined;
  }
}

/**
 * An answer still to come: what the innermost link waits on (a handler's promise, a transport's),
 * and what it and each link around it do with the outcome, in order from the inside. A step's
 * `ok` gets the value before it and returns the next; its `failed` gets the error before it and
 * throws the next (or returns, to recover). A step may return a promise instead (a retry that
 * sends the call again): the steps after it then run once that settles. Not a thenable, so that
 * no code awaits it by mistake: `settle` turns it into a promise, `end` hands its outcome on with
 * the one `then` it costs. The steps are a list of class instances: an array literal here is an
 * allocation site V8 may pretenure when a burst of calls holds many at once, as it does object
 * literals (docs/profile.md, "Sixth pass"), and it did: 8.7 µs of CPU per call against 3.2.
 */
export class Later {
  declare private readonly source: unknown;
  declare private readonly first: LaterStep;
  declare private last: LaterStep;

  /** What `source` (a promise) settles with, made into a response by `ok`, or its error by `failed`. */
  constructor(source: unknown, ok: (value: unknown) => RpcResponse, failed: (error: unknown) => RpcResponse);
  /** The same, by a step object (`first.ok` must return a response). */
  constructor(source: unknown, first: LaterStep);
  constructor(source: unknown, ok: LaterStep | ((value: unknown) => RpcResponse), failed?: (error: unknown) => RpcResponse) {
    this.source = source;
    this.first = this.last = typeof ok === "function" ? new Step(ok, failed!) : ok;
  }

  /** Adds a link's step around the ones before it. */
  map(ok: (res: RpcResponse) => RpcResponse | Promise<RpcResponse>, failed: (error: unknown) => RpcResponse | Promise<RpcResponse>): this {
    return this.add(new Step(ok as (value: unknown) => unknown, failed));
  }

  /** Adds `step` around the ones before it (its `ok` gets a response). */
  add(step: LaterStep): this {
    this.last.next = step;
    this.last = step;
    return this;
  }

  /** The outcome as a promise (for a plain middleware's `next`, or a stream's call). */
  settle(): Promise<RpcResponse> {
    return Promise.resolve(this.source).then(
      (v) => this.run(v, false, this.first),
      (e: unknown) => this.run(e, true, this.first),
    );
  }

  /**
   * The outcome as what `ok` or `failed` make of it, as a promise: a last step and `settle` in
   * one, for the caller of a client call (one `then` for the whole chain).
   */
  settleAs<T>(ok: (res: RpcResponse) => T, failed: (error: unknown) => T): Promise<T>;
  /** The same, by a step object: what its `ok` or `failed` make of the outcome. */
  settleAs<T>(last: LaterStep): Promise<T>;
  settleAs<T>(ok: LaterStep | ((res: RpcResponse) => T), failed?: (error: unknown) => T): Promise<T> {
    this.add(typeof ok === "function" ? new Step(ok as (value: unknown) => unknown, failed!) : ok);
    return this.settle() as unknown as Promise<T>;
  }

  /** Hands the outcome to `ok` or `failed`, neither of which may throw. */
  end(ok: (res: RpcResponse) => void, failed: (error: unknown) => void): void {
    const done = (x: unknown, failing: boolean): void => {
      let res: RpcResponse | Promise<RpcResponse>;
      try {
        res = this.run(x, failing, this.first);
      } catch (e) {
        return failed(e);
      }
      if (res instanceof Promise) res.then(ok, failed);
      else ok(res);
    };
    Promise.resolve(this.source).then(
      (v) => done(v, false),
      (e: unknown) => done(e, true),
    );
  }

  /**
   * Runs the steps from `from` outwards on `x`, a value or (`failing`) an error; throws the error
   * left. A step that returns a promise has the steps after it run once that settles: the result
   * is then a promise.
   */
  private run(x: unknown, failing: boolean, from: LaterStep): RpcResponse | Promise<RpcResponse> {
    for (let step: LaterStep | undefined = from; step !== undefined; step = step.next) {
      try {
        x = failing ? step.failed(x) : step.ok(x);
        failing = false;
      } catch (e) {
        x = e;
        failing = true;
      }
      if (!failing && x instanceof Promise) {
        const rest = step.next;
        if (rest === undefined) return x as Promise<RpcResponse>;
        return x.then(
          (v) => this.run(v, false, rest),
          (e: unknown) => this.run(e, true, rest),
        );
      }
    }
    if (failing) throw x;
    return x as RpcResponse;
  }
}

/**
 * What a direct link hands on after `next` answered `answer`: `ok(response)` at once, or `ok` and
 * `failed` as the steps of a Later or the callbacks of a promise. A link with nothing to add when
 * it answers at once tests for that first, and needs no closures then.
 */
export function mapAnswer(
  answer: DirectAnswer,
  ok: (res: RpcResponse) => RpcResponse | Promise<RpcResponse>,
  failed: (error: unknown) => RpcResponse | Promise<RpcResponse>,
): DirectAnswer {
  if (answer instanceof Later) return answer.map(ok, failed);
  return isThenable(answer) ? answer.then(ok, failed) : ok(answer);
}

/**
 * `next(req)`, and what the link does with its outcome (`mapAnswer`), a throw of `next` included:
 * it goes to `failed` as a rejection would, so that a link that holds something for the call (a
 * place in a limit, a balancer's count) always gives it back.
 */
export function mapNext(
  next: DirectHandler,
  req: RpcRequest,
  ok: (res: RpcResponse) => RpcResponse | Promise<RpcResponse>,
  failed: (error: unknown) => RpcResponse | Promise<RpcResponse>,
): DirectAnswer;
/**
 * The same with a step object, whose `ok` gets the response and returns one (or its promise), and
 * whose `failed` throws or recovers: no closures, and the step itself joins a Later.
 */
export function mapNext(next: DirectHandler, req: RpcRequest, step: LaterStep): DirectAnswer;
export function mapNext(
  next: DirectHandler,
  req: RpcRequest,
  ok: LaterStep | ((res: RpcResponse) => RpcResponse | Promise<RpcResponse>),
  failed?: (error: unknown) => RpcResponse | Promise<RpcResponse>,
): DirectAnswer {
  let answer: DirectAnswer;
  try {
    answer = next(req);
  } catch (e) {
    return typeof ok === "function" ? failed!(e) : (ok.failed(e) as RpcResponse | Promise<RpcResponse>);
  }
  return typeof ok === "function" ? mapAnswer(answer, ok, failed!) : mapAnswerTo(answer, ok);
}

/** `mapAnswer` for a step object: a Later gets the step itself, a promise its two methods, an answer its `ok`. */
function mapAnswerTo(answer: DirectAnswer, step: LaterStep): DirectAnswer {
  if (answer instanceof Later) return answer.add(step);
  if (isThenable(answer)) {
    return answer.then(
      (res) => step.ok(res) as RpcResponse | Promise<RpcResponse>,
      (e: unknown) => step.failed(e) as RpcResponse | Promise<RpcResponse>,
    );
  }
  return step.ok(answer) as RpcResponse | Promise<RpcResponse>;
}

/** A direct link's answer as a promise. */
export function settle(answer: DirectAnswer): Promise<RpcResponse> {
  return answer instanceof Later ? answer.settle() : Promise.resolve(answer);
}

/** `h` as a Handler, for a plain middleware's `next`: its throw as a rejection. */
export function promised(h: DirectHandler): Handler {
  return (req) => {
    try {
      return settle(h(req));
    } catch (e) {
      return Promise.reject(e);
    }
  };
}

/**
 * `compose` for a direct chain: a middleware with a direct form joins the direct links around
 * it without a promise; any other gets a Handler as its `next`, as `compose` gives it.
 */
export function composeDirect(middleware: readonly Middleware[], last: DirectHandler): DirectHandler {
  let h = last;
  for (let i = middleware.length - 1; i >= 0; i--) {
    const m = middleware[i] as Middleware | DirectMiddleware;
    h = "direct" in m ? m.direct(h) : m(promised(h));
  }
  return h;
}
