import { createServer, type Server, type ServerOptions } from "../../rpc/server.js";
import { Code, RpcError } from "../../rpc/errors.js";
import type { Handlers } from "../../rpc/server.js";
import type { CallContext } from "../../rpc/context.js";
import { CompactedError, FencedError, LeaseNotFoundError, StoreError, type Fence, type KeyValue as StoreKeyValue, type WatchEvent } from "../store.js";
import { Event_Type, Registry, type Event, type KeyValue } from "./gen/registry.js";
import { EmbeddedNode, type EmbeddedNodeOptions } from "./node.js";
import { statusToWire } from "./status.js";
import { RegistryAuthorizer, type RegistryAuth } from "../auth.js";

/**
 * The registry server's admission control unless its options set one: a registry's calls are
 * small and its callers (lease renewals, registrations, watches) wait seconds, so it sheds only a
 * queue that stands above 200 ms for a second, not the RPC default's 5 ms for 100 ms; shedding a
 * renewal because the loop was briefly busy would cost an instance its registration.
 */
export const REGISTRY_ADMISSION = Object.freeze({ targetMs: 200, intervalMs: 1000 });

/** Longest long poll a Watch call may ask for, ms. */
const MAX_WAIT_MS = 30_000;

/** A store KeyValue as the wire message. */
export function kvToWire(kv: StoreKeyValue): KeyValue {
  return {
    key: kv.key,
    value: kv.value,
    modRevision: kv.modRevision,
    createRevision: kv.createRevision,
    version: kv.version,
    lease: kv.lease ?? "",
    writeId: kv.writeId,
  };
}

function eventToWire(e: WatchEvent): Event {
  return e.type === "put"
    ? { type: Event_Type.PUT, key: e.key, kv: kvToWire(e.kv), revision: e.revision }
    : { type: Event_Type.DELETE, key: e.key, kv: undefined, revision: e.revision };
}

/** The response header of a fenced write's refusal: the fence key's current mod revision. */
export const FENCE_REVISION_HEADER = "x-fence-revision";

/** The fence of a write request ("" key: none). */
function fenceOf(req: { fenceKey: string; fenceModRevision: number }): Fence | undefined {
  return req.fenceKey === "" ? undefined : { key: req.fenceKey, modRevision: req.fenceModRevision };
}

/**
 * Store errors as RpcErrors: a missing lease is NOT_FOUND (and only that), a refused fence
 * FAILED_PRECONDITION (and only that), bad input INVALID_ARGUMENT.
 */
function toRpcError(e: unknown): unknown {
  if (e instanceof LeaseNotFoundError) return new RpcError(Code.NOT_FOUND, e.message);
  if (e instanceof FencedError) return new RpcError(Code.FAILED_PRECONDITION, e.message);
  if (e instanceof StoreError && e.code === "INVALID_ARGUMENT") return new RpcError(Code.INVALID_ARGUMENT, e.message);
  if (e instanceof StoreError && e.code === "RESOURCE_EXHAUSTED") return new RpcError(Code.RESOURCE_EXHAUSTED, e.message);
  if (e instanceof StoreError && e.code === "CLOSED") return new RpcError(Code.UNAVAILABLE, "the registry is shutting down");
  return e;
}

/** Runs a handler's store operation; a refused fence's current revision goes in the error's headers. */
async function answer<T>(op: () => Promise<T>, ctx?: CallContext): Promise<T> {
  try {
    return await op();
  } catch (e) {
    if (e instanceof FencedError && ctx) ctx.responseHeaders[FENCE_REVISION_HEADER] = String(e.currentRevision);
    throw toRpcError(e);
  }
}

/** The handlers of the Registry service over one embedded node. */
export function registryHandlers(node: EmbeddedNode): Handlers<typeof Registry> {
  return {
    get: (req) => answer(async () => {
      const r = await node.get(req.key);
      return { kv: r.kv ? kvToWire(r.kv) : undefined, revision: r.revision };
    }),
    list: (req) => answer(async () => {
      const r = await node.list(req.prefix);
      return { kvs: r.kvs.map(kvToWire), revision: r.revision };
    }),
    compareAndSet: (req, ctx) => answer(async () => {
      const r = await node.compareAndSet(req.key, req.value, req.expectedModRevision, req.writeId, req.lease === "" ? undefined : req.lease, fenceOf(req));
      return r.ok
        ? { ok: true, revision: r.revision, writeId: r.writeId, current: undefined }
        : { ok: false, revision: r.revision, writeId: "", current: r.current ? kvToWire(r.current) : undefined };
    }, ctx),
    delete: (req, ctx) => answer(async () => {
      const r = await node.delete(req.key, req.expectedModRevision, req.writeId, fenceOf(req));
      return r.ok
        ? { ok: true, revision: r.revision, writeId: r.writeId, current: undefined }
        : { ok: false, revision: r.revision, writeId: "", current: r.current ? kvToWire(r.current) : undefined };
    }, ctx),
    grantLease: (req) => answer(async () => {
      const lease = await node.grantLease(req.ttlMs);
      return { id: lease.id, ttlMs: lease.ttlMs };
    }),
    keepAlive: (req) => answer(async () => ({ ttlMs: (await node.keepAlive(req.lease)).ttlMs })),
    revokeLease: (req) => answer(async () => {
      await node.revokeLease(req.lease);
      return {};
    }),
    resolveWrite: (req) => answer(async () => {
      const r = await node.resolveWrite(req.writeId);
      return r.status === "applied" ? { applied: true, revision: r.revision } : { applied: false, revision: 0 };
    }),
    watch: (req, ctx) => answer(async () => {
      // Answer a little before the caller's deadline so the long poll never times out.
      const left = ctx.timeLeft();
      const wait = Math.min(req.waitMs, MAX_WAIT_MS, left === undefined ? MAX_WAIT_MS : Math.max(0, left - 200));
      try {
        const batch = await node.waitForChanges(req.prefix, req.fromRevision, wait, ctx.signal, req.limit === 0 ? undefined : req.limit, req.session);
        return { events: batch.events.map(eventToWire), revision: batch.revision, compactRevision: 0 };
      } catch (e) {
        if (e instanceof CompactedError) return { events: [], revision: node.machine.revision, compactRevision: e.compactRevision };
        throw e;
      }
    }),
    // Answered without the node's refusal of a failed log: that is what it reports.
    status: async () => statusToWire(node.status()),
  };
}

/** Options of serveRegistry. */
export interface RegistryServerOptions extends Omit<ServerOptions, "transport">, EmbeddedNodeOptions {
  /** Where to listen: a ServerTransport (the TCP transport for processes on one machine). */
  readonly transport: ServerOptions["transport"];
  /** Serve this node instead of opening one (an in-process store can share it; in-process calls are not checked). */
  readonly node?: EmbeddedNode;
  /**
   * Who may do what (identities from mTLS client certificates or bearer tokens, roles, quotas),
   * enforced on every call; see runtime/registry/auth.ts and docs/security.md. One of `auth` and
   * `insecure` is required.
   */
  readonly auth?: RegistryAuth;
  /**
   * Serve without any authentication: anyone who reaches the port may read, register, delete and
   * move primaries. For tests and a loopback-only single-user setup; an explicit choice.
   */
  readonly insecure?: boolean;
}

/** A running embedded registry server. */
export interface RegistryServer {
  /** The address the transport bound (`host:port` for TCP). */
  readonly address: string;
  readonly node: EmbeddedNode;
  readonly server: Server;
  /** Stops serving (graceful) and closes the node unless it was passed in. */
  close(): Promise<void>;
}

/**
 * Serves an embedded registry with Meridian itself (the Registry service of registry.proto), so
 * several processes share one registry: start it once (the demo does), point every process's
 * `createRemoteStore` at its address.
 */
export async function serveRegistry(options: RegistryServerOptions): Promise<RegistryServer> {
  if ((options.auth === undefined) === (options.insecure !== true)) {
    throw new TypeError(
      options.auth === undefined
        ? "serveRegistry: choose how calls are authenticated: auth: { certificates, tokens } (see docs/security.md), or insecure: true to let anyone who reaches the port read and change the registry"
        : "serveRegistry: auth and insecure: true exclude each other; drop insecure to enforce auth",
    );
  }
  const owned = options.node === undefined;
  const node = options.node ?? (await EmbeddedNode.open(options));
  let authorizer: RegistryAuthorizer | undefined;
  try {
    authorizer = options.auth === undefined ? undefined : new RegistryAuthorizer(options.auth, node.machine);
  } catch (e) {
    if (owned) await node.close();
    throw e;
  }
  // Authorization runs first, before the user's middleware: a refused call costs nothing more.
  const middleware = authorizer === undefined ? options.middleware : [authorizer.middleware(), ...(options.middleware ?? [])];
  const server = createServer({
    ...options,
    metrics: options.metrics ?? false,
    admission: options.admission ?? REGISTRY_ADMISSION,
    ...(middleware === undefined ? {} : { middleware }),
  }).register(
    Registry,
    registryHandlers(node),
  );
  let address: string;
  try {
    ({ address } = await server.listen());
  } catch (e) {
    authorizer?.close();
    if (owned) await node.close();
    throw e;
  }
  return {
    address,
    node,
    server,
    async close() {
      authorizer?.close();
      // Wake long polls first so the graceful close does not wait for them.
      if (owned) await node.close();
      await server.close({ graceMs: 1000 });
    },
  };
}
