/**
 * The INFO sections and CLUSTER replies every kvr server answers (kvr master and kvr replica's
 * admin port), with Kvrocks' field names and layout (docs/protocol.md §7–§8; Kvrocks' Server::GetInfo
 * and Cluster::GetClusterInfo): `# Section` headers, `key:value` lines ending in CRLF, sections
 * joined by an empty line. Pure: each server passes in its own facts.
 */
import { machine, release, type } from "node:os";
import pkg from "../../package.json" with { type: "json" };
import { formatClusterNodes } from "./topology.ts";
import type { ClusterState, Reply } from "./clusterx.ts";

/** What a kvr server answers as `kvrocks_version` (and `version`): says it is kvr, and which. */
export const KVR_SERVER_VERSION = `kvr-${pkg.version}`;
/** `kvrocks_git_sha1` of a kvr server: kvr is not a Kvrocks build (as Redis prints outside git). */
export const KVR_GIT_SHA1 = "00000000";
/** The Redis version Kvrocks claims compatibility with (its REDIS_VERSION), kept for clients that check it. */
const REDIS_VERSION = "4.0.0";
/** `os` of INFO server: asked of the system once (three uname calls), not at every INFO. */
let osText: string | null = null;

/** The process facts of `# Server`. */
export interface ServerFacts {
  /** Cluster mode (redis_mode:cluster) or standalone. */
  cluster: boolean;
  /** The port the server listens on (tcp_port). */
  port: number;
  /** When the server started (ms since the epoch), for uptime_in_seconds. */
  startedMs: number;
}

/** The `# Server` section. */
export function serverSection(f: ServerFacts, nowMs = Date.now()): string {
  const uptime = Math.max(0, Math.floor((nowMs - f.startedMs) / 1000));
  const mode = f.cluster ? "cluster" : "standalone";
  return lines("Server", [
    ["version", KVR_SERVER_VERSION],
    ["kvrocks_version", KVR_SERVER_VERSION],
    ["redis_version", REDIS_VERSION],
    ["git_sha1", KVR_GIT_SHA1],
    ["kvrocks_git_sha1", KVR_GIT_SHA1],
    ["redis_mode", mode],
    ["kvrocks_mode", mode],
    ["os", (osText ??= `${type()} ${release()} ${machine()}`)],
    ["arch_bits", 64],
    ["process_id", process.pid],
    ["tcp_port", f.port],
    ["uptime_in_seconds", uptime],
    ["uptime_in_days", Math.floor(uptime / 86400)],
  ]);
}

/** Counters of `# Stats`: connections and commands, and the syncs this server served as a master. */
export interface ServerStats {
  connectionsReceived: number;
  commandsProcessed: number;
  /** `_fetch_meta` requests served (a full sync each). */
  syncFull: number;
  /** PSYNC accepted (+OK). */
  syncPartialOk: number;
  /** PSYNC refused as out of range (the replica must full-sync). */
  syncPartialErr: number;
}

/** Fresh zeroed counters. */
export function newServerStats(): ServerStats {
  return { connectionsReceived: 0, commandsProcessed: 0, syncFull: 0, syncPartialOk: 0, syncPartialErr: 0 };
}

/** The `# Stats` section (only counters kvr keeps; Kvrocks' rates and byte totals are left out). */
export function statsSection(s: ServerStats): string {
  return lines("Stats", [
    ["total_connections_received", s.connectionsReceived],
    ["total_commands_processed", s.commandsProcessed],
    ["sync_full", s.syncFull],
    ["sync_partial_ok", s.syncPartialOk],
    ["sync_partial_err", s.syncPartialErr],
  ]);
}

/** The `# Cluster` section of INFO. */
export function clusterSection(enabled: boolean): string {
  return lines("Cluster", [["cluster_enabled", enabled ? 1 : 0]]);
}

/** Section builders, in Kvrocks' order of INFO output. */
export interface InfoSections {
  server: () => string;
  stats: () => string;
  replication: () => string;
  cluster: () => string;
}

/**
 * The INFO reply for `section` (any case; undefined = every section, as Kvrocks' bare INFO):
 * one section, or all of them joined by an empty line; an unknown section gives "".
 */
export function infoReply(section: string | undefined, s: InfoSections): string {
  const sec = (section ?? "all").toLowerCase();
  const all = sec === "all" || sec === "default" || sec === "everything";
  const order: Array<keyof InfoSections> = ["server", "stats", "replication", "cluster"];
  return order
    .filter((k) => all || sec === k)
    .map((k) => s[k]())
    .join("\r\n");
}

/** Kvrocks' reply when the cluster has no topology yet. */
const NOT_INITIALIZED: Reply = { type: "error", message: "CLUSTERDOWN The cluster is not initialized" };

/** `CLUSTER INFO` text as Kvrocks prints it (cluster_state is always ok once a topology is set). */
export function clusterInfoText(state: ClusterState): string {
  const t = state.topology!;
  let assigned = 0;
  let size = 0;
  for (const n of t.nodes) {
    if (n.role !== "master") continue;
    let own = 0;
    for (const [a, b] of n.slots) own += b - a + 1;
    assigned += own;
    if (own > 0) size++;
  }
  const known = new Set(t.nodes.map((n) => n.id)).size;
  return [
    "cluster_state:ok",
    `cluster_slots_assigned:${assigned}`,
    `cluster_slots_ok:${assigned}`,
    "cluster_slots_pfail:0",
    "cluster_slots_fail:0",
    `cluster_known_nodes:${known}`,
    `cluster_size:${size}`,
    `cluster_current_epoch:${state.version}`,
    `cluster_my_epoch:${state.version}`,
  ]
    .map((l) => l + "\r\n")
    .join("");
}

/** Kvrocks' usage error for an unknown CLUSTER subcommand. */
export const CLUSTER_USAGE = "ERR CLUSTER command, CLUSTER INFO|NODES|SLOTS|KEYSLOT|RESET|REPLICAS";

/**
 * Answer `CLUSTER <args>` (NODES, INFO) from a node's cluster state; null state = not in cluster
 * mode. Before any SETNODES both reply CLUSTERDOWN, as Kvrocks does.
 */
export function clusterCommand(state: ClusterState | null, args: string[], nowMs = Date.now()): Reply {
  if (!state) return { type: "error", message: "ERR Cluster mode is not enabled" };
  const sub = (args[0] ?? "").toLowerCase();
  if (args.length === 1 && (sub === "nodes" || sub === "info")) {
    if (state.version < 0 || !state.topology) return NOT_INITIALIZED;
    return { type: "bulk", value: sub === "nodes" ? formatClusterNodes(state.topology, state.nodeId, state.version, nowMs) : clusterInfoText(state) };
  }
  return { type: "error", message: CLUSTER_USAGE };
}

function lines(title: string, fields: Array<[string, string | number]>): string {
  return `# ${title}\r\n` + fields.map(([k, v]) => `${k}:${v}\r\n`).join("");
}
