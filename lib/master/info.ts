/** The INFO reply of kvr master: Kvrocks' sections (lib/cluster), its replication fields plus kvr's own counters. */
import { clusterSection, infoReply, serverSection, statsSection, type ServerFacts, type ServerStats } from "../cluster/index.ts";

export interface InfoState {
  seq: number;
  slaves: Array<{ ip: string; port: number; offset: number }>;
  files: number;
  bytes: number;
  bytesSent: number;
  filesServed: number;
  fetchConnections: number;
  activeFaults: number;
  /** First sequence PSYNC can still stream from, batches retained, batches produced. */
  walFirst?: number;
  walBatches?: number;
  batchesProduced?: number;
  /** INFO server facts and INFO stats counters. */
  server: ServerFacts;
  stats: ServerStats;
}

/** INFO [section] text (`\r\n` lines; no section = all); unknown sections give an empty string, as Kvrocks does. */
export function infoText(s: InfoState, section?: string): string {
  return infoReply(section, {
    server: () => serverSection(s.server),
    stats: () => statsSection(s.stats),
    replication: () => replicationSection(s),
    cluster: () => clusterSection(s.server.cluster),
  });
}

/** The `# Replication` section. */
function replicationSection(s: InfoState): string {
  const lines = ["# Replication", "role:master", `connected_slaves:${s.slaves.length}`];
  s.slaves.forEach((r, i) => lines.push(`slave${i}:ip=${r.ip},port=${r.port},offset=${r.offset},lag=${Math.max(0, s.seq - r.offset)}`));
  lines.push(
    `master_repl_offset:${s.seq}`,
    `kvr_checkpoint_files:${s.files}`,
    `kvr_checkpoint_bytes:${s.bytes}`,
    `kvr_bytes_sent:${s.bytesSent}`,
    `kvr_files_served:${s.filesServed}`,
    `kvr_fetch_connections:${s.fetchConnections}`,
    `kvr_active_faults:${s.activeFaults}`,
  );
  if (s.walFirst !== undefined) lines.push(`kvr_wal_first_seq:${s.walFirst}`, `kvr_wal_batches:${s.walBatches ?? 0}`, `kvr_batches_produced:${s.batchesProduced ?? 0}`);
  return lines.join("\r\n") + "\r\n";
}
