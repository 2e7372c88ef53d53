import { decodeResponse, messageWriter, type ClientStream, type TransportStreamRequest } from "meridian-rpc/transport";
import type { ClientTransport, Headers } from "meridian-rpc";

/**
 * Calls straight on a ClientTransport with messages rather than bytes, for transport tests: the
 * request encoded and the response decoded as the runtime does it (`messageWriter`,
 * `decodeResponse`), so such a test exercises the transport alone and the same seam as
 * createClient.
 */

/** A unary request with its message (what createClient's chain has before it reaches the transport). */
export interface MessageRequest extends TransportStreamRequest {
  readonly message: unknown;
}

/** A unary response with its message decoded. */
export interface MessageResponse {
  readonly message: unknown;
  readonly headers: Headers;
}

/** One unary call on `transport`, the message encoded and the response decoded by the runtime's helpers. */
export async function unaryCall(transport: ClientTransport, req: MessageRequest): Promise<MessageResponse> {
  const { message, ...rest } = req;
  const res = await transport.unary({ ...rest, encode: messageWriter(req.method.input, message) });
  return { message: decodeResponse(req.method, req.service, res.payload, res.headers), headers: res.headers };
}

/** A ClientStream that takes and yields messages. */
export interface MessageStream extends Omit<ClientStream, "send" | "responses"> {
  send(message: unknown): Promise<void>;
  readonly responses: AsyncIterable<unknown>;
  /** The transport's stream underneath (bytes). */
  readonly raw: ClientStream;
}

/** Opens a stream on `transport` whose messages are encoded and decoded as the runtime does. */
export function openStream(transport: ClientTransport, req: TransportStreamRequest): MessageStream {
  const raw = transport.stream!(req);
  const { method, service } = req;
  return {
    raw,
    headers: raw.headers,
    trailers: raw.trailers,
    send: (message) => raw.send(messageWriter(method.input, message, false)),
    closeSend: () => raw.closeSend(),
    cancel: (reason) => raw.cancel(reason),
    responses: {
      [Symbol.asyncIterator]() {
        const it = raw.responses[Symbol.asyncIterator]();
        return {
          async next(): Promise<IteratorResult<unknown>> {
            const r = await it.next();
            if (r.done === true) return r;
            try {
              return { done: false, value: decodeResponse(method, service, r.value) };
            } catch (e) {
              raw.cancel(e);
              throw e;
            }
          },
          async return(): Promise<IteratorResult<unknown>> {
            await it.return?.();
            return { done: true, value: undefined };
          },
        };
      },
    },
  };
}
