/**
 * What the doctor reads off a node's samples: its id, role, master, replication link and
 * offsets as Kvrocks' INFO and CLUSTER NODES give them. Missing fields are null ("unknown"),
 * never an error.
 */
import { addrText, intField } from "../client/index.ts";
import type { ClusterNodesEntry } from "../cluster/index.ts";
import type { Sample } from "./probe.ts";
import type { NodeRecord } from "./survey.ts";

/** The last sample of a node, or null when it was never looked at. */
export function lastSample(n: NodeRecord): Sample | null {
  return n.samples.length ? n.samples[n.samples.length - 1] : null;
}

/** The node's id from its own CLUSTER NODES (the myself line). */
export function nodeIdOf(n: NodeRecord): string | null {
  return lastSample(n)?.clusterNodes?.myself?.id ?? n.samples[0]?.clusterNodes?.myself?.id ?? null;
}

/** INFO role: "master", "slave", or null. */
export function roleOf(s: Sample): string | null {
  return s.replication.role ?? null;
}

/** "host:port" of the master a replica's INFO names, or null. */
export function infoMasterOf(s: Sample): string | null {
  const port = intField(s.replication.master_port);
  if (roleOf(s) !== "slave" || !s.replication.master_host || port === null) return null;
  return addrText({ host: s.replication.master_host, port });
}

/** One INFO replication field of each sample (null where missing). */
export function series(n: NodeRecord, field: string): Array<string | null> {
  return n.samples.map((s) => s.replication[field] ?? null);
}

/** One field of each sample as numbers (null where missing or not a number). */
export function numSeries(n: NodeRecord, field: string, section: "replication" | "stats" = "replication"): Array<number | null> {
  return n.samples.map((s) => intField(s[section][field]));
}

/** kvrocks_version and git sha from INFO server ("unknown" when missing). */
export function versionOf(s: Sample): string {
  const v = s.server.kvrocks_version ?? s.server.version ?? "unknown";
  const sha = s.server.kvrocks_git_sha1 ?? s.server.git_sha1;
  return sha ? `${v} (${sha})` : v;
}

/** The topology version a node reports: CLUSTERX VERSION, else its CLUSTER NODES epoch, -1 when uninitialized. */
export function topologyVersionOf(s: Sample): number | null {
  if (s.version !== null) return s.version;
  if (s.clusterNodes) return s.clusterNodes.version;
  return s.clusterNote?.startsWith("-CLUSTERDOWN") ? -1 : null;
}

/** Index of the records by address and by node id, to find a replica's master. */
export class Index {
  private readonly byAddr = new Map<string, NodeRecord>();
  private readonly byId = new Map<string, NodeRecord>();
  constructor(readonly nodes: NodeRecord[]) {
    for (const n of nodes) {
      this.byAddr.set(n.address, n);
      const id = nodeIdOf(n);
      if (id) this.byId.set(id, n);
    }
  }

  /** The record listening at "host:port", or with this id. */
  find(address: string | null, id: string | null = null): NodeRecord | null {
    return (id ? this.byId.get(id) : undefined) ?? (address ? this.byAddr.get(address) : undefined) ?? null;
  }

  /**
   * The record of `n`'s master: by its own topology (the myself line's master id) in cluster
   * mode, else by the master INFO names.
   */
  masterOf(n: NodeRecord): NodeRecord | null {
    const s = lastSample(n);
    if (!s) return null;
    const me = s.clusterNodes?.myself;
    if (me?.role === "slave") {
      const m = s.clusterNodes!.entries.find((e) => e.id === me.masterId);
      const viaTopology = this.find(m ? entryAddress(m) : null, me.masterId);
      if (viaTopology) return viaTopology;
    }
    return this.find(infoMasterOf(s));
  }
}

/** "host:port" of a CLUSTER NODES entry. */
export function entryAddress(e: ClusterNodesEntry): string {
  return addrText({ host: e.host, port: e.port });
}

/**
 * The replication lag of replica `r` in sample k: its master's master_repl_offset minus its
 * slave_repl_offset, at least 0 — the two are read at slightly different moments, so a streaming
 * replica read after its master can be ahead of what the master's sample shows.
 */
export function lagSeries(r: NodeRecord, m: NodeRecord): Array<number | null> {
  const mo = numSeries(m, "master_repl_offset");
  return numSeries(r, "slave_repl_offset").map((o, k) => (o === null || mo[k] === null || mo[k] === undefined ? null : Math.max(0, mo[k]! - o)));
}
