/**
 * Shared pieces of the gRPC transport tests: the Interop service (test/grpc/proto/interop.proto)
 * implemented on the same behaviour by a Meridian server (createServer for unary calls, a seam
 * StreamDispatcher for streams) and by a plain @grpc/grpc-js server through @grpc/proto-loader,
 * plain grpc-js clients, test certificates, and what the servers observed.
 *
 * The behaviour, driven by the request: echo `text` and `id`; `size` payload bytes per reply;
 * wait `delay_ms` first (before each reply when streaming); fail with `fail_code` (after
 * `fail_after` replies when streaming); `text` "biz" fails with a business error. Replies list
 * the request headers the server saw in `seen`.
 */
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { BizError, Code, RpcError, createServer, type CallContext, type Server, type Headers, type ServerTransport } from "meridian-rpc";
import type { IncomingStream, StreamDispatcher } from "meridian-rpc/transport";
import { GrpcServerTransport, type GrpcServerOptions } from "meridian-rpc/transports/grpc";
import { Interop, Reply, Request } from "./gen/interop.js";

export const PROTO_DIR = fileURLToPath(new URL("./proto", import.meta.url));

/** Waits until `check` returns true, polling every 5 ms; fails after `ms`. */
export async function until(check: () => boolean, ms = 5000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** "key=value" lines of the headers a server saw, sorted, without transport noise. */
export function seenLines(headers: Headers): string[] {
  return Object.entries(headers)
    .map(([k, v]) => `${k}=${v}`)
    .sort();
}

/** A message of `n` bytes. */
export function payloadOf(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = i & 0xff;
  return b;
}

/** What a test server saw, for assertions about the server side. */
export class Observed {
  /** Request headers of the last call. */
  headers: Headers = {};
  /** Deadline of the last call (absolute ms), as the server read it. */
  deadline: number | undefined;
  /** Why calls were aborted on the server (RpcError codes or grpc-js "cancelled"). */
  aborts: (Code | "cancelled")[] = [];
  /** Replies handed to the transport by the last streaming call. */
  sent = 0;
  /** Requests the last client-streaming / bidi call has read. */
  received = 0;
  /** When set, streaming handlers wait for it before reading each request (a slow reader). */
  readGate: (() => Promise<void>) | undefined;

  reset(): void {
    this.headers = {};
    this.deadline = undefined;
    this.aborts = [];
    this.sent = 0;
    this.received = 0;
    this.readGate = undefined;
  }
}

function replyOf(req: Request, seq: number, seen: Headers): Reply {
  return Reply.create({ text: req.text, seq, id: req.id, payload: payloadOf(req.size), seen: seenLines(seen) });
}

/** The error a handler fails with for a request: `fail_code` as an RpcError, "biz" as a BizError. */
function failureOf(req: Request): RpcError | undefined {
  if (req.text === "biz") return new BizError(1001, "out of stock", { sku: "42" });
  if (req.failCode !== 0) return new RpcError(req.failCode as Code, `failed with ${Code[req.failCode]}`);
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Meridian server

/** Unary handler of the Meridian server, through createServer. */
function meridianUnary(observed: Observed) {
  return async (req: Request, ctx: CallContext): Promise<Reply> => {
    observed.headers = { ...ctx.headers };
    observed.deadline = ctx.deadline;
    ctx.responseHeaders["x-served-by"] = "meridian";
    ctx.metainfo.setBackward("echo", req.text);
    if (req.delayMs > 0) {
      const signal = ctx.signal;
      try {
        await sleep(req.delayMs, undefined, { signal });
      } catch (e) {
        observed.aborts.push(signal.reason instanceof RpcError ? signal.reason.code : "cancelled");
        throw e;
      }
    }
    const failure = failureOf(req);
    if (failure !== undefined) throw failure;
    return replyOf(req, 0, ctx.headers);
  };
}

/** Waits `ms`, or rejects with the stream's abort reason. */
function pause(ms: number, s: IncomingStream): Promise<void> {
  if (s.signal.aborted) return Promise.reject(s.signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(t);
      reject(s.signal.reason);
    };
    const t = setTimeout(() => {
      s.signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    s.signal.addEventListener("abort", onAbort);
  });
}

/** Trailers of a failed stream, as the runtime would write them. */
function failed(err: RpcError): Headers {
  const h: Headers = { [`x-trailer`]: "failed", "rpc-status": String(err.code), "rpc-message": err.message };
  if (err instanceof BizError) {
    h["biz-status"] = String(err.bizCode);
    h["biz-message"] = err.bizMessage;
    h["biz-extra"] = JSON.stringify(err.extra);
  }
  return h;
}

/**
 * The streaming methods of the Meridian server, on the seam (a StreamDispatcher working the
 * IncomingStream directly), so that the tests observe exactly what the transport does.
 */
export function meridianStreams(observed: Observed): StreamDispatcher {
  return async (s) => {
    observed.headers = { ...s.headers };
    observed.deadline = s.deadline;
    observed.sent = 0;
    observed.received = 0;
    s.signal.addEventListener("abort", () => observed.aborts.push(s.signal.reason instanceof RpcError ? s.signal.reason.code : "cancelled"));
    try {
      s.sendHeaders({ "x-served-by": "meridian", "x-method": s.method });
      if (s.method === "ServerStream") {
        let req: Request | undefined;
        for await (const b of s.requests) {
          req = Request.decode(b);
          break;
        }
        if (req === undefined) throw new RpcError(Code.INVALID_ARGUMENT, "no request");
        for (let i = 0; i < req.count; i++) {
          if (req.failCode !== 0 && i === req.failAfter) throw failureOf(req);
          if (req.delayMs > 0) await pause(req.delayMs, s);
          const reply = replyOf(req, i, i === 0 ? s.headers : {});
          await s.send((w) => Reply.encodeTo(reply, w));
          observed.sent++;
        }
        if (req.failCode !== 0 && req.failAfter >= req.count) throw failureOf(req);
        return { "x-trailer": "done", "x-count": String(req.count) };
      }
      const texts: string[] = [];
      let first: Request | undefined;
      const it = s.requests[Symbol.asyncIterator]();
      for (;;) {
        if (observed.readGate !== undefined) await observed.readGate();
        const r = await it.next();
        if (r.done) break;
        const req = Request.decode(r.value);
        observed.received++;
        first ??= req;
        texts.push(req.text);
        if (s.method === "Bidi") {
          const failure = failureOf(req);
          if (failure !== undefined) throw failure;
          if (req.delayMs > 0) await pause(req.delayMs, s);
          const reply = replyOf(req, texts.length - 1, {});
          await s.send((w) => Reply.encodeTo(reply, w));
          observed.sent++;
        }
      }
      if (s.method === "ClientStream") {
        const failure = first === undefined ? undefined : failureOf(first);
        if (failure !== undefined) throw failure;
        const reply = Reply.create({ text: texts.join(","), seq: texts.length, id: first?.id ?? 0n });
        await s.send((w) => Reply.encodeTo(reply, w));
      }
      return { "x-trailer": "done" };
    } catch (e) {
      return failed(RpcError.from(e));
    }
  };
}

/**
 * A server transport that serves `streams` (a seam dispatcher) in place of createServer's own
 * stream dispatcher, next to createServer's unary calls.
 */
export function withStreams(transport: ServerTransport, streams: StreamDispatcher): ServerTransport {
  return {
    listen: (dispatch) => transport.listen(dispatch, streams),
    close: (graceMs) => transport.close(graceMs),
  };
}

/** Starts the Meridian Interop server: createServer + GrpcServerTransport on 127.0.0.1. */
export async function startMeridianServer(
  observed: Observed,
  options: Partial<GrpcServerOptions> = {},
  { streams = true }: { streams?: boolean } = {},
): Promise<{ server: Server; transport: GrpcServerTransport; address: string }> {
  const transport = new GrpcServerTransport({ services: [Interop], ...options });
  const server = createServer({
    transport: streams ? withStreams(transport, meridianStreams(observed)) : transport,
    region: "test-region",
    metrics: false,
    logger: { error: () => {} },
  }).register(Interop, { unary: meridianUnary(observed) });
  const { address } = await server.listen();
  return { server, transport, address };
}

// ---------------------------------------------------------------------------------------------
// Plain grpc-js (proto-loader) peers

/** The Interop service as @grpc/proto-loader loads it (int64 as strings, defaults filled in). */
export function plainService(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync("interop.proto", { includeDirs: [PROTO_DIR], longs: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpctest: { Interop: grpc.ServiceClientConstructor } };
  return pkg.grpctest.Interop;
}

/** A request or reply as proto-loader shows it. */
export interface PlainRequest {
  text?: string;
  count?: number;
  delayMs?: number;
  failCode?: number;
  failAfter?: number;
  size?: number;
  id?: string;
}
export interface PlainReply {
  text: string;
  seq: number;
  payload: Buffer;
  id: string;
  seen: string[];
}

/** A plain grpc-js client of Interop. */
export type PlainClient = grpc.Client & {
  Unary(req: PlainRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: PlainReply) => void): grpc.ClientUnaryCall;
  ServerStream(req: PlainRequest, md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientReadableStream<PlainReply>;
  ClientStream(
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: PlainReply) => void,
  ): grpc.ClientWritableStream<PlainRequest>;
  Bidi(md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientDuplexStream<PlainRequest, PlainReply>;
};

export function plainClient(address: string, credentials = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}): PlainClient {
  const Ctor = plainService();
  return new Ctor(address, credentials, options) as unknown as PlainClient;
}

/** A unary call of a plain client, as a promise with the response metadata and status. */
export function plainUnary(
  client: PlainClient,
  req: PlainRequest,
  md = new grpc.Metadata(),
  opts: grpc.CallOptions = {},
): Promise<{ err: grpc.ServiceError | null; res?: PlainReply; headers?: grpc.Metadata; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    let err: grpc.ServiceError | null = null;
    let res: PlainReply | undefined;
    let headers: grpc.Metadata | undefined;
    const call = client.Unary(req, md, opts, (e, r) => {
      err = e;
      res = r;
    });
    call.on("metadata", (m) => (headers = m));
    call.on("status", (status) => resolve({ err, res, headers, status }));
  });
}

/** Request metadata as a plain grpc-js server saw it, as "key=value" lines (transport keys left out). */
function plainSeen(md: grpc.Metadata): string[] {
  const out: Headers = {};
  for (const [k, v] of Object.entries(md.getMap())) {
    if (k === "user-agent" || k.startsWith("grpc-") || k === "content-type" || k === "te") continue;
    out[k] = Buffer.isBuffer(v) ? `bin:${v.toString("utf8")}` : v;
  }
  return seenLines(out);
}

function plainError(code: number, details: string, metadata = new grpc.Metadata()): grpc.ServerErrorResponse {
  return Object.assign(new Error(details), { code, details, metadata });
}

function plainFailure(req: PlainRequest): grpc.ServerErrorResponse | undefined {
  if (req.text === "biz") {
    const md = new grpc.Metadata();
    md.set("biz-status", "1001");
    md.set("biz-message", "out of stock");
    md.set("biz-extra", JSON.stringify({ sku: "42" }));
    return plainError(Code.UNKNOWN, "biz error 1001: out of stock", md);
  }
  if (req.failCode) return plainError(req.failCode, `failed with ${Code[req.failCode]}`);
  return undefined;
}

function plainReply(req: PlainRequest, seq: number, seen: string[] = []): PlainReply {
  return { text: req.text ?? "", seq, payload: Buffer.from(payloadOf(req.size ?? 0)), id: req.id ?? "0", seen };
}

/** Starts a plain @grpc/grpc-js Interop server (proto-loader) with the same behaviour. */
export async function startPlainServer(
  observed: Observed,
  credentials = grpc.ServerCredentials.createInsecure(),
): Promise<{ server: grpc.Server; address: string }> {
  const server = new grpc.Server();
  const note = (call: { metadata: grpc.Metadata; getDeadline(): grpc.Deadline; on(e: "cancelled", f: () => void): unknown }): void => {
    const h: Headers = {};
    for (const [k, v] of Object.entries(call.metadata.getMap())) h[k] = Buffer.isBuffer(v) ? `bin:${v.toString("utf8")}` : v;
    observed.headers = h;
    const d = call.getDeadline();
    observed.deadline = d instanceof Date ? d.getTime() : Number.isFinite(d) ? d : undefined;
    call.on("cancelled", () => observed.aborts.push("cancelled"));
  };
  server.addService(plainService().service, {
    Unary: (call: grpc.ServerUnaryCall<PlainRequest, PlainReply>, cb: grpc.sendUnaryData<PlainReply>) => {
      note(call);
      const req = call.request;
      const md = new grpc.Metadata();
      md.set("x-served-by", "plain");
      md.set("rpc-backward-echo", req.text ?? "");
      call.sendMetadata(md);
      setTimeout(() => {
        if (call.cancelled) return;
        const failure = plainFailure(req);
        const trailer = new grpc.Metadata();
        trailer.set("x-trailer", "done");
        if (failure !== undefined) cb(failure);
        else cb(null, plainReply(req, 0, plainSeen(call.metadata)), trailer);
      }, req.delayMs ?? 0);
    },
    ServerStream: async (call: grpc.ServerWritableStream<PlainRequest, PlainReply>) => {
      note(call);
      observed.sent = 0;
      const req = call.request;
      const md = new grpc.Metadata();
      md.set("x-served-by", "plain");
      call.sendMetadata(md);
      for (let i = 0; i < (req.count ?? 0); i++) {
        if (call.cancelled) return;
        if (req.failCode && i === req.failAfter) {
          call.emit("error", plainFailure(req));
          return;
        }
        if (req.delayMs) await sleep(req.delayMs);
        if (call.cancelled) return;
        // Respect backpressure as a careful grpc-js server does.
        if (!call.write(plainReply(req, i, i === 0 ? plainSeen(call.metadata) : []))) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              call.off("drain", done);
              call.off("cancelled", done);
              resolve();
            };
            call.on("drain", done);
            call.on("cancelled", done);
          });
        }
        observed.sent++;
      }
      if (call.cancelled) return;
      if (req.failCode && (req.failAfter ?? 0) >= (req.count ?? 0)) {
        call.emit("error", plainFailure(req));
        return;
      }
      const trailer = new grpc.Metadata();
      trailer.set("x-trailer", "done");
      call.end(trailer);
    },
    ClientStream: async (call: grpc.ServerReadableStream<PlainRequest, PlainReply>, cb: grpc.sendUnaryData<PlainReply>) => {
      note(call);
      observed.received = 0;
      const texts: string[] = [];
      let first: PlainRequest | undefined;
      try {
        // destroyOnReturn: false, or the end of the loop would destroy the call before its status.
        for await (const req of call.iterator({ destroyOnReturn: false }) as AsyncIterable<PlainRequest>) {
          if (observed.readGate !== undefined) await observed.readGate();
          observed.received++;
          first ??= req;
          texts.push(req.text ?? "");
        }
      } catch {
        return;
      }
      const failure = first === undefined ? undefined : plainFailure(first);
      if (failure !== undefined) return cb(failure);
      cb(null, { text: texts.join(","), seq: texts.length, payload: Buffer.alloc(0), id: first?.id ?? "0", seen: [] });
    },
    Bidi: async (call: grpc.ServerDuplexStream<PlainRequest, PlainReply>) => {
      note(call);
      observed.received = 0;
      let i = 0;
      let failure: grpc.ServerErrorResponse | undefined;
      try {
        for await (const req of call.iterator({ destroyOnReturn: false }) as AsyncIterable<PlainRequest>) {
          observed.received++;
          failure = plainFailure(req);
          if (failure !== undefined) break;
          call.write(plainReply(req, i++));
        }
      } catch {
        return;
      }
      // Emitted after the loop: an 'error' seen by the stream's iterator would destroy the call.
      if (failure !== undefined) call.emit("error", failure);
      else call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", credentials, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, address: `127.0.0.1:${port}` };
}

// ---------------------------------------------------------------------------------------------
// TLS

export { makeCerts, type TestCerts } from "../support/certs.js";

