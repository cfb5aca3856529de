/**
 * One look at one node: a fresh connection under the connect deadline, AUTH when a password is
 * given, then only read-only commands, each under the reply deadline. Never throws: a node that
 * cannot be looked at is a ProbeFailure saying why.
 */
import { clusterVersion, NodeFailure, openSession, parseInfo, type NodeAddr, type Session } from "../client/index.ts";
import { ClusterNodesError, type ClusterNodesView } from "../cluster/index.ts";
import { topologyReader, type TopologyReader } from "./topology.ts";
import { replyText, RespError, type RespValue } from "../resp/index.ts";

/**
 * Every command kvr doctor sends, in order (AUTH first when a password is given; the CLUSTER
 * commands only to a node in cluster mode). Nothing else is ever sent: the doctor is read-only.
 */
export const PROBE_COMMANDS: readonly string[][] = [
  ["PING"],
  ["INFO", "server"],
  ["INFO", "replication"],
  ["INFO", "stats"],
  ["INFO", "cluster"],
  ["CLUSTER", "NODES"],
  ["CLUSTER", "INFO"],
  ["CLUSTERX", "VERSION"],
];

/** What one look at a node saw. */
export interface Sample {
  /** When the look began, in ms since the run started. */
  atMs: number;
  /** PING send → reply (PING goes first, with the INFO commands right behind it). */
  pingMs: number;
  server: Record<string, string>;
  replication: Record<string, string>;
  stats: Record<string, string>;
  /** INFO server redis_mode:cluster, or INFO cluster cluster_enabled:1. */
  clusterMode: boolean;
  /**
   * The node's CLUSTER NODES; null when not in cluster mode, not initialized or unreadable (see
   * clusterNote). Its entries may be shared with other samples holding the same topology (see
   * survey.ts): only `myself` and `version` are this node's own.
   */
  clusterNodes: ClusterNodesView | null;
  /** The topology's content as sorted nodes-string lines joined by "\n" (equal strings = same topology). */
  topologyKey: string | null;
  /** Why clusterNodes is null in cluster mode: the error reply ("CLUSTERDOWN …") or what could not be read. */
  clusterNote: string | null;
  clusterInfo: Record<string, string> | null;
  /** CLUSTERX VERSION; -1 before any SETNODES; null when unknown. */
  version: number | null;
}

/** Why a node could not be looked at. */
export interface ProbeFailure {
  /**
   * unreachable: refused, connect deadline, unknown host; unresponsive: connected, no reply
   * within the reply deadline; protocol: a reply that is not RESP, too large, or cut off;
   * error: an error reply to AUTH or PING (a wrong or missing password, say).
   */
  status: "unreachable" | "unresponsive" | "protocol" | "error";
  /** The command that failed ("connect", "auth", "PING", "INFO server", …). */
  phase: string;
  detail: string;
  /** How long the failed look took, connect included. */
  ms: number;
}

export type ProbeResult = { ok: true; sample: Sample } | { ok: false; failure: ProbeFailure };

export interface ProbeOptions {
  connectMs: number;
  timeoutMs: number;
  auth: string | null;
}

function classify(e: unknown, ms: number): ProbeFailure {
  if (!(e instanceof NodeFailure)) return { status: "protocol", phase: "?", detail: e instanceof Error ? e.message : String(e), ms };
  if (e.phase === "connect") return { status: "unreachable", phase: "connect", detail: e.message, ms };
  if (e.kind === "timeout") return { status: "unresponsive", phase: e.phase, detail: e.message, ms };
  if (e.kind === "error") return { status: "error", phase: e.phase, detail: `replied ${e.message}`, ms };
  return { status: "protocol", phase: e.phase, detail: e.message, ms };
}

const text = (v: RespValue): string | null => (Buffer.isBuffer(v) ? v.toString("utf8") : null);
const infoOf = (v: RespValue): Record<string, string> => parseInfo(text(v) ?? "");

/** PING and the four INFO sections: one round trip. */
const FIRST = PROBE_COMMANDS.slice(0, 5) as string[][];
/** The cluster commands: a second round trip, to a node in cluster mode only. */
const CLUSTER_COMMANDS = PROBE_COMMANDS.slice(5) as string[][];

/** The CLUSTER NODES reply read into the sample (or why it could not be). */
function readClusterNodes(sample: Sample, reply: RespValue, read: TopologyReader): void {
  if (!Buffer.isBuffer(reply)) {
    sample.clusterNote = reply instanceof RespError ? `-${reply.message}` : `CLUSTER NODES replied ${replyText(reply).slice(0, 80)}`;
    return;
  }
  try {
    const t = read(reply);
    sample.clusterNodes = t.view;
    sample.topologyKey = t.key;
  } catch (e) {
    if (!(e instanceof ClusterNodesError)) throw e;
    sample.clusterNote = `CLUSTER NODES unreadable: ${e.message}`;
  }
}

/**
 * Look at one node once. `t0` is the run's start (performance.now()); `read` parses CLUSTER
 * NODES (a survey shares one reader between its probes).
 */
export async function probe(addr: NodeAddr, o: ProbeOptions, t0: number, read: TopologyReader = topologyReader()): Promise<ProbeResult> {
  const start = performance.now();
  let s: Session | null = null;
  try {
    s = await openSession(addr, { connectMs: o.connectMs, timeoutMs: o.timeoutMs, auth: o.auth });
    const first = await s.pipeline("PING", FIRST);
    if (first.replies[0] instanceof RespError) throw new NodeFailure("error", "PING", `-${first.replies[0].message}`);
    const [server, replication, stats, cluster] = first.replies.slice(1).map(infoOf);
    const sample: Sample = {
      atMs: Math.round(start - t0),
      pingMs: Math.round(first.ms[0] * 100) / 100,
      server,
      replication,
      stats,
      clusterMode: server.redis_mode === "cluster" || cluster.cluster_enabled === "1",
      clusterNodes: null,
      topologyKey: null,
      clusterNote: null,
      clusterInfo: null,
      version: null,
    };
    if (sample.clusterMode) {
      const [nodes, info, version] = (await s.pipeline("CLUSTER", CLUSTER_COMMANDS)).replies;
      readClusterNodes(sample, nodes, read);
      sample.clusterInfo = info instanceof RespError ? null : infoOf(info);
      sample.version = clusterVersion(version);
    }
    return { ok: true, sample };
  } catch (e) {
    return { ok: false, failure: classify(e, Math.round(performance.now() - start)) };
  } finally {
    s?.close();
  }
}
