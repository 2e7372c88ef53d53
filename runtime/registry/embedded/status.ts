/**
 * The Status call's answer: a node's status as the wire message, and as the text
 * `meridian registry status` prints.
 */
import type { StatusResponse } from "./gen/registry.js";
import type { NodeStatus } from "./node.js";

/** A node's status as the Status call answers it. */
export function statusToWire(status: NodeStatus): StatusResponse {
  const s = status.storage;
  return {
    health: status.health,
    revision: status.revision,
    keys: status.keys,
    leases: status.leases,
    writeIds: status.writeIds,
    uptimeMs: Math.round(status.uptimeMs),
    storage: s && {
      dataDir: s.dir,
      fsync: s.fsync,
      logBytes: s.logBytes,
      logSegments: s.segments,
      lastLsn: s.lastLsn,
      snapshotLsn: s.snapshotLsn,
      lastCompactionAtMs: s.lastCompaction?.at ?? 0,
      lastCompactionDurationMs: Math.round(s.lastCompaction?.durationMs ?? 0),
      lastCompactionError: s.lastCompactionError ?? "",
      recoveredRecords: s.recovery.replayed,
      truncatedBytes: s.recovery.truncatedBytes,
    },
  };
}

/** A Status answer as lines of text for an operator. */
export function describeStatus(address: string, r: StatusResponse): string {
  const lines = [
    `registry ${address}: ${r.health}`,
    `  revision ${r.revision}, ${r.keys} keys, ${r.leases} leases, ${r.writeIds} write ids, up ${formatDuration(r.uptimeMs)}`,
  ];
  const s = r.storage;
  if (!s) lines.push("  storage: memory only (no data directory: nothing survives a restart)");
  else {
    lines.push(`  data directory ${s.dataDir}, fsync ${s.fsync}`);
    lines.push(`  log: ${formatBytes(s.logBytes)} in ${s.logSegments} segment(s), records ${s.snapshotLsn + 1}..${s.lastLsn} after the snapshot`);
    const last = s.lastCompactionAtMs === 0 ? "none since start" : `${new Date(s.lastCompactionAtMs).toISOString()} (took ${s.lastCompactionDurationMs} ms)`;
    lines.push(`  last compaction: ${last}${s.lastCompactionError ? `; the last attempt failed: ${s.lastCompactionError}` : ""}`);
    lines.push(`  recovery at start: ${s.recoveredRecords} record(s) replayed${s.truncatedBytes > 0 ? `, a torn last record of ${s.truncatedBytes} bytes cut off` : ""}`);
  }
  return `${lines.join("\n")}\n`;
}

function formatBytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
