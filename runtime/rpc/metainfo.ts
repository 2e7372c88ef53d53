import type { Headers } from "./transport.js";

/**
 * Header prefixes of metainfo on the wire, with Kitex's casing so that Kitex peers on TTHeader
 * read them: `RPC_TRANSIT_<key>` (transient), `RPC_PERSIST_<key>` (persistent) and
 * `RPC_BACKWARD_<key>` (backward). Readers match the prefix case-insensitively, because some
 * wires lower-case header names (HTTP/2 metadata); the key after the prefix is kept as it arrives.
 */
export const MetainfoPrefix = {
  transient: "RPC_TRANSIT_",
  persistent: "RPC_PERSIST_",
  backward: "RPC_BACKWARD_",
} as const;

/** Which of the three kinds of metainfo a value is. */
export type MetainfoKind = keyof typeof MetainfoPrefix;

const EMPTY: ReadonlyMap<string, string> = new Map();

/**
 * Key/value strings that travel with calls, like Kitex's metainfo:
 *
 * - transient: sent with one request, readable by the server it reaches, not forwarded further;
 * - persistent: sent with the request and forwarded by every call made while serving it, so it
 *   reaches the whole chain below;
 * - backward: set by a server while handling a call, sent back with the response, received by
 *   the client that made the call.
 *
 * On a client call, pass one in the call options (`metainfo`): its transient and persistent
 * values are sent, and the backward values of the response are stored into it. On the server
 * the call context has one holding what arrived (transient and persistent); what the handler
 * sets with `setBackward` goes back with the response, and what it sets with `setPersistent`
 * is forwarded by the calls it makes, together with what arrived.
 */
export class Metainfo {
  // A field per kind, each made on its first value: most calls carry none, and a call costs a
  // Metainfo on each side (a keyed load by kind, from an object of maps, was 2% of a client's).
  private transient: Map<string, string> | undefined = undefined;
  private persistent: Map<string, string> | undefined = undefined;
  private backward: Map<string, string> | undefined = undefined;

  /** A transient value: one hop, request direction. */
  getTransient(key: string): string | undefined {
    return this.transient?.get(key);
  }
  /** Sets a transient value; returns this, for chaining. */
  setTransient(key: string, value: string): this {
    return this.set("transient", key, value);
  }
  /** A persistent value: the whole chain, request direction. */
  getPersistent(key: string): string | undefined {
    return this.persistent?.get(key);
  }
  /** Sets a persistent value; returns this, for chaining. */
  setPersistent(key: string, value: string): this {
    return this.set("persistent", key, value);
  }
  /** A backward value: response direction. */
  getBackward(key: string): string | undefined {
    return this.backward?.get(key);
  }
  /** Sets a backward value (on the server, to send it back); returns this, for chaining. */
  setBackward(key: string, value: string): this {
    return this.set("backward", key, value);
  }

  /** All values of one kind. */
  all(kind: MetainfoKind): ReadonlyMap<string, string> {
    return this.map(kind) ?? EMPTY;
  }

  /** Copies every value of `kind` from `other` into this one (later values win). */
  copyFrom(other: Metainfo, kind: MetainfoKind): this {
    const src = other.map(kind);
    if (src !== undefined) for (const [k, v] of src) this.set(kind, k, v);
    return this;
  }

  /** Writes the values of the given kinds into `headers` under their prefixes. */
  writeHeaders(headers: Headers, ...kinds: MetainfoKind[]): Headers {
    if (this.transient === undefined && this.persistent === undefined && this.backward === undefined) return headers;
    for (const kind of kinds) {
      const m = this.map(kind);
      if (m === undefined) continue;
      const prefix = MetainfoPrefix[kind];
      for (const [k, v] of m) headers[prefix + k] = v;
    }
    return headers;
  }

  /** Reads the values of the given kinds out of `headers` (prefix matched in any case). */
  readHeaders(headers: Headers, ...kinds: MetainfoKind[]): this {
    for (const name in headers) {
      // Cheap filter first: every prefix starts with "RPC_".
      if (name.length < 13 || (name.charCodeAt(0) | 32) !== 114 || name.charCodeAt(3) !== 95) continue;
      for (const kind of kinds) {
        const prefix = MetainfoPrefix[kind];
        if (name.length > prefix.length && name.slice(0, prefix.length).toUpperCase() === prefix) {
          this.set(kind, name.slice(prefix.length), headers[name] as string);
          break;
        }
      }
    }
    return this;
  }

  private map(kind: MetainfoKind): Map<string, string> | undefined {
    switch (kind) {
      case "transient":
        return this.transient;
      case "persistent":
        return this.persistent;
      case "backward":
        return this.backward;
      default:
        return undefined;
    }
  }

  private set(kind: MetainfoKind, key: string, value: string): this {
    switch (kind) {
      case "transient":
        (this.transient ??= new Map()).set(key, value);
        break;
      case "persistent":
        (this.persistent ??= new Map()).set(key, value);
        break;
      case "backward":
        (this.backward ??= new Map()).set(key, value);
        break;
    }
    return this;
  }
}
