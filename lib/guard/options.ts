/** The guard's options, parsed and checked (UsageError → exit 2 before anything starts). */
import { addrText, type NodeAddr } from "../client/index.ts";
import { list, parseDuration, parseHostPort, single, UsageError } from "../ui/units.ts";

export interface GuardConfig {
  /** The nodes to watch (each must run on this host). */
  nodes: NodeAddr[];
  /** INFO poll period. */
  intervalMs: number;
  /** A socket to the node's master that received nothing for this long is destroyed. */
  readTimeoutMs: number;
  /** Connect and reply deadline of each INFO; a node that misses it is unresponsive. */
  timeoutMs: number;
  auth: string | undefined;
  /** Report what would be destroyed; destroy nothing. */
  dryRun: boolean;
  /** Act only once a node stops answering (a stop waiting on its fetch), never merely because it syncs. */
  onlyUnresponsive: boolean;
}

function duration(o: Record<string, unknown>, key: string, flag: string, dflt: string, minMs: number): number {
  const ms = parseDuration(flag, single(flag, o[key]) ?? dflt);
  if (ms < minMs) throw new UsageError(`--${flag}: must be at least ${minMs} ms`);
  return ms;
}

/** Parse the cac options of `kvr guard`. */
export function parseGuardOptions(o: Record<string, unknown>): GuardConfig {
  const raw = list(o.node);
  if (raw.length === 0) throw new UsageError("--node: give at least one node to watch (host:port of a Kvrocks node on this host)");
  const nodes: NodeAddr[] = [];
  for (const r of raw) {
    const a = parseHostPort("node", r);
    if (nodes.some((n) => n.host === a.host && n.port === a.port)) throw new UsageError(`--node: ${addrText(a)} was given twice`);
    nodes.push(a);
  }
  const intervalMs = duration(o, "interval", "interval", "250ms", 10);
  const readTimeoutMs = duration(o, "readTimeout", "read-timeout", "3s", 100);
  const timeoutMs = duration(o, "timeout", "timeout", "1s", 10);
  const auth = single("auth", o.auth) ?? (process.env.KVR_AUTH || undefined);
  return { nodes, intervalMs, readTimeoutMs, timeoutMs, auth, dryRun: !!o.dryRun, onlyUnresponsive: !!o.onlyUnresponsive };
}
