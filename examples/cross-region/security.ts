/**
 * The demo's identities, made fresh at every start (tools/certs, Debian's openssl): one CA, one
 * certificate per region (it serves the region's instances and NATS server, and is the region's
 * identity when it calls other regions or the registry), one for the registry server and one for
 * the operator (the coordinator's registry client). Every link is mutual TLS: a server asks each
 * caller for a certificate of the demo's CA, and a caller checks the server's. The registry maps
 * the certificates to roles: every region is an `instance` of the KeyValue service only, the
 * operator is `operator`; the rogue move of the scenario is a region trying what only an
 * operator may.
 */
import type { RegistryAuth } from "meridian-rpc/registry";
import type { ClientTls, ServerTls } from "meridian-rpc";
import { makeCerts } from "../../tools/certs/index.js";
import { KeyValue } from "./gen/kv.js";
import { REGIONS, type Identity, type Region } from "./protocol.js";

export type { Identity };

/** Who the demo's processes are. */
export interface DemoIdentities {
  readonly regions: Readonly<Record<Region, Identity>>;
  readonly registry: Identity;
  readonly operator: Identity;
}

/** The name every demo certificate carries in its URI SAN. */
export function spiffeId(name: string): string {
  return `spiffe://meridian.test/${name}`;
}

/** Makes the demo's CA and certificates; undefined without openssl. */
export function makeIdentities(): DemoIdentities | undefined {
  const certs = makeCerts({ clients: ["operator"], peers: [...REGIONS, "registry"] });
  if (certs === undefined) return undefined;
  const ca = certs.ca.toString();
  const identity = (c: { cert: Buffer; key: Buffer }): Identity => ({ ca, cert: c.cert.toString(), key: c.key.toString() });
  return {
    regions: Object.fromEntries(REGIONS.map((r) => [r, identity(certs.peers[r]!)])) as Record<Region, Identity>,
    registry: identity(certs.peers.registry!),
    operator: identity(certs.clients.operator!),
  };
}

/** A caller's TLS: present this identity, trust only the demo's CA. */
export function clientTls(id: Identity): ClientTls {
  return { ca: id.ca, cert: id.cert, key: id.key };
}

/** A server's TLS: this identity's certificate, and callers must present one of the demo's CA. */
export function serverTls(id: Identity): ServerTls {
  return { cert: id.cert, key: id.key, ca: id.ca, requireClientCert: true };
}

/** The registry's authorization: every region registers KeyValue instances only; the operator moves primaries. */
export function registryAuth(): RegistryAuth {
  return {
    certificates: {
      ...Object.fromEntries(REGIONS.map((r) => [spiffeId(r), { roles: ["instance" as const], services: [KeyValue.typeName] }])),
      [spiffeId("operator")]: { roles: ["operator"] },
    },
  };
}
