/** INFO and ROLE replies of the admin port: Kvrocks' replication fields plus kvr's own. */
import type { ReplicaNode } from "./node.ts";

/** The `# Replication` section (PROTOCOL.md §7 plus kvr_* fields), CRLF-separated. */
export function replicationInfo(node: ReplicaNode): string {
  const s = node.status;
  const m = s.master;
  const lines = ["# Replication"];
  if (m) {
    lines.push(
      "role:slave",
      `master_host:${m.host}`,
      `master_port:${m.port}`,
      `master_link_status:${s.state === "connected" ? "up" : "down"}`,
      `master_sync_unrecoverable_error:no`,
      `master_sync_in_progress:${s.syncInProgress ? 1 : 0}`,
      `master_last_io_seconds_ago:${Math.floor((Date.now() - s.lastIoMs) / 1000)}`,
      `slave_repl_offset:${s.replOffset}`,
      "slave_priority:100",
    );
  } else lines.push("role:master");
  lines.push(
    "connected_slaves:0",
    `master_repl_offset:${s.replOffset}`,
    `kvr_state:${s.state}`,
    `kvr_files_done:${s.filesDone}`,
    `kvr_files_total:${s.filesTotal}`,
    `kvr_bytes_done:${s.bytesDone}`,
    `kvr_bytes_total:${s.bytesTotal}`,
    `kvr_current_file:${s.currentFile}`,
    `kvr_attempt:${s.attempt}`,
    `kvr_last_error:${s.lastError.replace(/[\r\n]+/g, " ")}`,
    `kvr_fetch_connections:${s.openConns}`,
  );
  if (s.masterReplOffset !== null) lines.push(`kvr_master_repl_offset:${s.masterReplOffset}`, `kvr_lag:${Math.max(0, s.masterReplOffset - s.replOffset)}`);
  return lines.join("\r\n") + "\r\n";
}

/** The `# Server` section: the node's process id (what `kvr guard` matches sockets by). */
export function serverInfo(): string {
  return `# Server\r\nprocess_id:${process.pid}\r\n`;
}

/** The `# Cluster` section. */
export function clusterInfo(node: ReplicaNode): string {
  return `# Cluster\r\ncluster_enabled:1\r\ncluster_version:${node.cluster.version}\r\n`;
}

/** ROLE as Redis/Kvrocks answer it: ["slave", host, port, link state, offset] or ["master", offset, []]. */
export function roleReply(node: ReplicaNode): Array<string | number | unknown[]> {
  const s = node.status;
  if (!s.master) return ["master", s.replOffset, []];
  const link = s.state === "connected" ? "connected" : s.syncInProgress ? "sync" : "connecting";
  return ["slave", s.master.host, s.master.port, link, s.replOffset];
}
