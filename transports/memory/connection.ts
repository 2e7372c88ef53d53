import { Code, RpcError, type Headers } from "../../runtime/api.js";
import { type OutgoingReply, ServerCall } from "../../runtime/transport.js";
import type { MemoryStreamCall } from "./stream.js";

/**
 * How in-process clients reach servers: the network they share (addresses, binding) and the
 * unary call as it crosses from one to the other. A MemoryServerTransport is a MemoryListener.
 */

/** What listens on a name of a MemoryNetwork: a MemoryServerTransport. */
export interface MemoryListener {
  /** Serves one unary call; rejects once the call is aborted. */
  serve(call: MemoryCall): Promise<OutgoingReply>;
  /** Serves one streaming call; its outcome settles the call. */
  serveStream(call: MemoryStreamCall): void;
}

/** The URL scheme of in-process addresses: `memory://<name>`. */
export const MEMORY_SCHEME = "memory://";

/**
 * An in-process "network": servers bind names in it and clients find them by address. The user
 * creates one and hands it to the servers and clients that should see each other; there is no
 * process-wide default, so two tests (or two parts of a program) never meet by accident.
 */
export class MemoryNetwork {
  private readonly servers = new Map<string, MemoryListener>();

  /** The server listening at `address` (`memory://name` or just `name`), if any. */
  lookup(address: string): MemoryListener | undefined {
    return this.servers.get(address.startsWith(MEMORY_SCHEME) ? address.slice(MEMORY_SCHEME.length) : address);
  }

  /** Binds `name` to `server`; fails when another server holds it. */
  bind(name: string, server: MemoryListener): void {
    const holder = this.servers.get(name);
    if (holder !== undefined && holder !== server) {
      throw new RpcError(Code.ALREADY_EXISTS, `${MEMORY_SCHEME}${name} is already bound by another server; pick another name`);
    }
    this.servers.set(name, server);
  }

  /** Releases `name` if `server` holds it. */
  unbind(name: string, server: MemoryListener): void {
    if (this.servers.get(name) === server) this.servers.delete(name);
  }
}

function ignore(): void {}

/**
 * One unary call of the in-process transport: the runtime's ServerCall, and `cut`, which rejects
 * once the call is aborted (the client cancelled it, the server closed before answering) and so
 * ends the client's wait at once, whatever the handler does.
 */
export class MemoryCall extends ServerCall {
  readonly cut: Promise<never>;
  private rejectCut!: (reason: RpcError) => void;

  constructor(
    service: string,
    method: string,
    headers: Headers,
    readonly payload: Uint8Array,
    deadline: number | undefined,
    readonly peer: string,
  ) {
    super(service, method, headers, deadline);
    this.cut = new Promise<never>((_, reject) => (this.rejectCut = reject));
    this.cut.catch(ignore);
  }

  override abort(reason: RpcError): void {
    super.abort(reason);
    this.rejectCut(reason);
  }
}

