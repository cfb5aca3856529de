/**
 * One look at one node: a fresh connection under the connect deadline, AUTH when a password is
 * given, then only read-only commands, each under the reply deadline. Never throws: a node that
 * cannot be looked at is a ProbeFailure saying why.
 */
import { NodeFailure, openSession, parseInfo, type NodeAddr, type Session } from "../client/index.ts";
import { ClusterNodesError, parseClusterNodes, type ClusterNodesView } from "../cluster/index.ts";
import { replyText, type RespValue } from "../resp/index.ts";

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
  /** PING send → reply. */
  pingMs: number;
  server: Record<string, string>;
  replication: Record<string, string>;
  stats: Record<string, string>;
  /** INFO server redis_mode:cluster, or INFO cluster cluster_enabled:1. */
  clusterMode: boolean;
  /** The node's CLUSTER NODES; null when not in cluster mode, not initialized or unreadable (see clusterNote). */
  clusterNodes: ClusterNodesView | null;
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

/** Send one command; an error reply is returned as null with its text, anything else that fails throws NodeFailure. */
async function ask(s: Session, args: string[]): Promise<{ reply: RespValue | null; error: string | null }> {
  try {
    return { reply: await s.command(args.join(" "), args), error: null };
  } catch (e) {
    if (e instanceof NodeFailure && e.kind === "error") return { reply: null, error: e.message };
    throw e;
  }
}

const text = (v: RespValue | null): string | null => (Buffer.isBuffer(v) ? v.toString("utf8") : null);
const infoOf = (v: RespValue | null): Record<string, string> => parseInfo(text(v) ?? "");

/** Look at one node once. `t0` is the run's start (performance.now()). */
export async function probe(addr: NodeAddr, o: ProbeOptions, t0: number): Promise<ProbeResult> {
  const start = performance.now();
  let s: Session | null = null;
  try {
    s = await openSession(addr, { connectMs: o.connectMs, timeoutMs: o.timeoutMs, auth: o.auth });
    const ping = await s.timed("PING", ["PING"]);
    const infos: Array<Record<string, string>> = [];
    for (const section of ["server", "replication", "stats", "cluster"]) infos.push(infoOf((await ask(s, ["INFO", section])).reply));
    const sample: Sample = {
      atMs: Math.round(start - t0),
      pingMs: Math.round(ping.ms * 100) / 100,
      server: infos[0],
      replication: infos[1],
      stats: infos[2],
      clusterMode: infos[0].redis_mode === "cluster" || infos[3].cluster_enabled === "1",
      clusterNodes: null,
      clusterNote: null,
      clusterInfo: null,
      version: null,
    };
    if (sample.clusterMode) {
      const nodes = await ask(s, ["CLUSTER", "NODES"]);
      const nodesText = text(nodes.reply);
      if (nodesText !== null) {
        try {
          sample.clusterNodes = parseClusterNodes(nodesText);
        } catch (e) {
          if (!(e instanceof ClusterNodesError)) throw e;
          sample.clusterNote = `CLUSTER NODES unreadable: ${e.message}`;
        }
      } else sample.clusterNote = nodes.error ?? `CLUSTER NODES replied ${replyText(nodes.reply!).slice(0, 80)}`;
      const ci = await ask(s, ["CLUSTER", "INFO"]);
      sample.clusterInfo = ci.reply === null ? null : infoOf(ci.reply);
      const vr = (await ask(s, ["CLUSTERX", "VERSION"])).reply;
      const v = typeof vr === "number" ? String(vr) : (text(vr) ?? "");
      sample.version = /^-?\d{1,18}$/.test(v.trim()) ? Number(v.trim()) : null;
    }
    return { ok: true, sample };
  } catch (e) {
    return { ok: false, failure: classify(e, Math.round(performance.now() - start)) };
  } finally {
    s?.close();
  }
}
