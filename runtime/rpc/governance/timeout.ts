import { abortError, deadlineExceeded } from "../deadline.js";
import { Code } from "../errors.js";
import { directMiddleware, type DirectMiddleware } from "../direct.js";

/**
 * The whole-call timeout (client side). The call's deadline was set from `timeoutMs` (the call's,
 * else the client's) and what is left of a parent call's; this middleware arms it: the call's
 * cancellation aborts with DEADLINE_EXCEEDED when it passes, and a deadline already passed fails
 * the call before it is sent (`notSent`). What waits below ends on that abort: retry's backoff,
 * load balancing's resolver, and the transport (a transport that does not say it settles on abort,
 * `ClientTransport.settlesOnAbort`, is raced against the call's signal at the end of the chain).
 *
 * With `timesCalls` (the transport's `ClientTransport.timesCalls`) a unary call's deadline is
 * left to the transport: it is checked here, not armed. Whatever waits below arms it by following
 * the call's cancellation.
 */
export function timeoutMiddleware(timesCalls = false): DirectMiddleware {
  return directMiddleware((next) => (req) => {
    const ctx = req.ctx;
    const deadline = ctx.deadline;
    if (deadline === undefined) return next(req);
    if (timesCalls && req.method.kind === "unary") {
      // Failed here rather than by the transport, so that the breakers below do not count a call
      // that was over before it was sent (its deadline passed while a middleware above waited).
      if (deadline <= Date.now()) throw deadlineExceeded("deadline exceeded before the call was sent", true);
      return next(req);
    }
    // Following the cancellation arms the deadline, and aborts the call at once when it has
    // passed: that clock read is the only one here.
    const signal = ctx.cancellation;
    if (signal.aborted) {
      const why = abortError(signal, true);
      throw why.code === Code.DEADLINE_EXCEEDED ? deadlineExceeded("deadline exceeded before the call was sent", true) : why;
    }
    return next(req);
  });
}
