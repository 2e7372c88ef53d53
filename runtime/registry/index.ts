/**
 * Meridian's registry: the Store interface and its implementations (embedded, remote embedded,
 * etcd), the registry client (instances under leases, a watch-fed cache, primary regions with
 * epochs) and consistency routing with fallback and fencing. See docs/registry.md.
 *
 * The etcd store is imported from "./etcd.js" on its own (or through openRegistryStore, which
 * loads it only for an etcd:// URL), so that processes on the embedded store never load the
 * etcd client.
 */
export * from "./store.js";
export { createEmbeddedStore, type EmbeddedStore, type EmbeddedStoreOptions } from "./embedded/store.js";
export { EmbeddedNode, type EmbeddedNodeOptions, type NodeStatus } from "./embedded/node.js";
export { DataDirError, type DataDirErrorCode, type FsyncPolicy } from "./embedded/log.js";
export type { DataDirOptions, DataDirStatus, RecoveryReport } from "./embedded/data-dir.js";
export { StateMachine, type StateMachineOptions, type StateSnapshot } from "./embedded/state-machine.js";
export {
  AUTHORIZATION_HEADER,
  DEFAULT_REGISTRY_QUOTAS,
  RegistryAuthorizer,
  readRegistryAuth,
  type RegistryAuth,
  type RegistryPrincipal,
  type RegistryQuotas,
  type RegistryRole,
} from "./auth.js";
export { serveRegistry, registryHandlers, type RegistryServer, type RegistryServerOptions } from "./embedded/server.js";
export { Registry as RegistryService } from "./embedded/gen/registry.js";
export { createRemoteStore, type RemoteStoreOptions } from "./remote.js";
export {
  createRegistry,
  PrimaryConflictError,
  type Instance,
  type InstanceInfo,
  type PrimaryInfo,
  type PrimaryRecord,
  type Registration,
  type Registry,
  type RegistryHealth,
  type RegistryKv,
  type RegistryOptions,
  type ServiceSnapshot,
} from "./client.js";
export {
  consistencyMiddleware,
  fencingMiddleware,
  listenAndRegister,
  NOT_ADMITTED_HEADER,
  PRIMARY_IN_HEADER,
  routingOptions,
  type ConsistencyOptions,
  type FencingOptions,
  type RegisterServerOptions,
  type RegisteredServer,
} from "./routing.js";
export { decideRoute, hasSideEffects, registryResolver, routeKey, type ResolverOptions, type Route, type RouteDecision } from "./resolver.js";
export { ReplicaClock } from "./staleness.js";
export { Replica, type ReplicaOptions, type ReplicaSource } from "./replica.js";
export { openRegistryStore, parseRegistryUrl, type OpenRegistryStoreOptions, type RegistryUrl } from "./url.js";
export {
  WRITE_ID_HEADER,
  WRITE_OUTCOME_HEADER,
  StaleTokenError,
  admittedPrimary,
  admittedPrimaryKey,
  checkFencingToken,
  fencedKv,
  fencingToken,
  storeErrorToRpc,
  type AdmittedPrimary,
  type FencedKv,
} from "./fenced.js";
