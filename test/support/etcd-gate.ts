import { ETCD_MISSING, findEtcd } from "./etcd-cluster.js";
import { describeWithBinary } from "./gate.js";

/** The etcd binary, or undefined when it is not installed. */
export const etcdBin = findEtcd();

/**
 * `describe` for suites that need a real etcd: run when etcd is installed; without it, skipped
 * with a message locally, and failing under CI=true (a CI machine without etcd is a broken set-up,
 * not a reason to pass).
 */
export function describeWithEtcd(name: string, fn: () => void): void {
  describeWithBinary("etcd", etcdBin, ETCD_MISSING, name, fn);
}
