import { afterEach, describe, expect, it } from "vitest";
import { Code, RpcError, createContextKey, type Middleware } from "meridian-rpc";
import { Bed } from "./helpers.js";

const bed = new Bed();
afterEach(() => bed.close());

/** A middleware that logs its name on the way in and on the way out. */
function tracer(name: string, log: string[]): Middleware {
  return (next) => async (req) => {
    log.push(`${req.ctx.side}:${name}>`);
    try {
      return await next(req);
    } finally {
      log.push(`${req.ctx.side}:<${name}`);
    }
  };
}

describe("middleware", () => {
  it("middleware - the first in the list is the outermost, on client and server", async () => {
    const log: string[] = [];
    const { address } = await bed.echo(
      { middleware: [tracer("s1", log), tracer("s2", log)] },
      {
        echo: () => {
          log.push("handler");
          return {};
        },
      },
    );
    await bed.client(address, { middleware: [tracer("c1", log), tracer("c2", log)] }).echo();
    expect(log).toEqual(["client:c1>", "client:c2>", "server:s1>", "server:s2>", "handler", "server:<s2", "server:<s1", "client:<c2", "client:<c1"]);
  });

  it("middleware - client middleware sees the built-in governance below it (timeout errors pass through it)", async () => {
    const seen: (Code | "ok")[] = [];
    const observe: Middleware = (next) => async (req) => {
      try {
        const res = await next(req);
        seen.push("ok");
        return res;
      } catch (e) {
        seen.push((e as RpcError).code);
        throw e;
      }
    };
    const { address } = await bed.echo();
    const client = bed.client(address, { middleware: [observe], timeoutMs: 10 });
    await expect(client.echo({ delayMs: 200 })).rejects.toMatchObject({ code: Code.DEADLINE_EXCEEDED });
    await client.echo();
    expect(seen).toEqual([Code.DEADLINE_EXCEEDED, "ok"]);
  });

  it("middleware - can add request headers on the client and response headers on the server", async () => {
    const { address, calls } = await bed.echo({
      middleware: [
        (next) => async (req) => {
          req.ctx.responseHeaders["x-handled-by"] = "mw";
          return next(req);
        },
      ],
    });
    let back: string | undefined;
    const client = bed.client(address, {
      middleware: [
        (next) => (req) => {
          req.headers["x-tenant"] = "acme";
          return next(req);
        },
      ],
    });
    await client.echo({}, { onHeaders: (h) => (back = h["x-handled-by"]) });
    expect(calls[0]?.ctx.headers["x-tenant"]).toBe("acme");
    expect(back).toBe("mw");
  });

  it("middleware - a server middleware can refuse a call before the handler", async () => {
    const { address, calls } = await bed.echo({
      middleware: [
        () => () => {
          throw new RpcError(Code.PERMISSION_DENIED, "no token");
        },
      ],
    });
    await expect(bed.client(address).echo()).rejects.toMatchObject({ code: Code.PERMISSION_DENIED, message: "no token" });
    expect(calls).toHaveLength(0);
  });

  it("middleware - handlers that answer at once, through a thenable or after awaiting, or throw, under middleware that chains on next", async () => {
    const nexts: string[] = [];
    const codes: string[] = [];
    const chained: Middleware = (next) => (req) => {
      const p = next(req);
      nexts.push(p instanceof Promise ? "promise" : "not a promise");
      return p.then((res) => {
        req.ctx.responseHeaders["x-seen"] = "yes";
        return res;
      });
    };
    const stats = { finish: (_ctx: unknown, s: { code: Code }) => codes.push(Code[s.code]) };
    const { address } = await bed.echo(
      { middleware: [chained], stats: [stats] },
      {
        echo: (req) => {
          if (req.text === "throw") throw new RpcError(Code.FAILED_PRECONDITION, "thrown at once");
          if (req.text === "thenable") return { then: (ok: (v: { text: string }) => void) => ok({ text: "from a thenable" }) } as unknown as { text: string };
          if (req.text === "await") return new Promise((resolve) => setTimeout(() => resolve({ text: "later" }), 5));
          return { text: `at once: ${req.text}` };
        },
      },
    );
    const client = bed.client(address);
    let seen: string | undefined;
    expect((await client.echo({ text: "x" }, { onHeaders: (h) => (seen = h["x-seen"]) })).text).toBe("at once: x");
    expect(seen).toBe("yes");
    expect((await client.echo({ text: "thenable" })).text).toBe("from a thenable");
    expect((await client.echo({ text: "await" })).text).toBe("later");
    await expect(client.echo({ text: "throw" })).rejects.toMatchObject({ code: Code.FAILED_PRECONDITION, message: "thrown at once" });
    expect(nexts).toEqual(["promise", "promise", "promise", "promise"]);
    expect(codes).toEqual(["OK", "OK", "OK", "FAILED_PRECONDITION"]);
  });
});

describe("context", () => {
  const tenant = createContextKey<string>("none", { description: "tenant" });
  const traceId = createContextKey<number | undefined>(undefined);

  it("context - typed keys read their default until set, then what was set", async () => {
    const seen: [string, number | undefined, boolean][] = [];
    const { address } = await bed.echo({
      middleware: [
        (next) => (req) => {
          seen.push([req.ctx.values.get(tenant), req.ctx.values.get(traceId), req.ctx.values.has(tenant)]);
          if (req.headers["x-tenant"] !== undefined) req.ctx.values.set(tenant, req.headers["x-tenant"]);
          return next(req);
        },
      ],
    }, {
      echo: (_req, ctx) => ({ text: ctx.values.get(tenant) }),
    });
    const client = bed.client(address);
    expect((await client.echo({}, { headers: { "x-tenant": "acme" } })).text).toBe("acme");
    expect((await client.echo()).text, "values do not leak between calls").toBe("none");
    expect(seen).toEqual([
      ["none", undefined, false],
      ["none", undefined, false],
    ]);
  });

  it("context - a nested call reads the server call's values through; its own stay its own", async () => {
    const { address: inner } = await bed.echo();
    const seenByChild: string[] = [];
    const innerClient = bed.client(inner, {
      middleware: [
        (next) => (req) => {
          seenByChild.push(req.ctx.values.get(tenant));
          req.ctx.values.set(traceId, 42);
          return next(req);
        },
      ],
    });
    let after: number | undefined = -1;
    const { address: outer } = await bed.echo({}, {
      echo: async (_req, ctx) => {
        ctx.values.set(tenant, "from-outer");
        await innerClient.echo();
        await innerClient.echo({}, { parent: ctx });
        await innerClient.echo({}, { parent: null });
        after = ctx.values.get(traceId);
        return {};
      },
    });
    await bed.client(outer).echo();
    expect(seenByChild).toEqual(["from-outer", "from-outer", "none"]);
    expect(after, "a child's value does not flow up").toBeUndefined();
  });
});
