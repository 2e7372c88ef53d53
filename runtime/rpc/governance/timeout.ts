import { deadlineExceeded } from "../deadline.js";
import type { Middleware } from "../middleware.js";

/**
 * The whole-call timeout (client side). The call's deadline was set from `timeoutMs` (the call's,
 * else the client's) and what is left of a parent call's; this middleware enforces it: the call
 * is aborted when it passes, and rejects with DEADLINE_EXCEEDED then, even if the transport
 * below has not given up yet. A deadline already passed fails the call before it is sent
 * (`notSent`).
 */
export function timeoutMiddleware(): Middleware {
  return (next) => (req) => {
    const ctx = req.ctx;
    if (ctx.deadline === undefined) return next(req);
    if (ctx.deadline <= Date.now()) return Promise.reject(deadlineExceeded("deadline exceeded before the call was sent", true));
    return ctx.race(next(req));
  };
}
