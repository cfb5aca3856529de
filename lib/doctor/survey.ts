/**
 * The survey: probe the seeds, follow what they list (CLUSTER NODES entries, a replica's master,
 * a master's slaveN lines) to every node, and look at each node --samples times, --interval
 * apart. Every node runs on its own schedule, at most --concurrency probes at once: a frozen or
 * unreachable node costs one deadline and is not probed again, so it never delays the others.
 */
import { addrText, intField, slaveLines, type NodeAddr } from "../client/index.ts";
import { limiter } from "../ui/limit.ts";
import { topologyReader } from "./topology.ts";
import { probe, type ProbeFailure, type Sample } from "./probe.ts";
import type { DoctorConfig } from "./options.ts";

/** Everything seen of one node. */
export interface NodeRecord {
  addr: NodeAddr;
  /** "host:port" ([v6]:port). */
  address: string;
  /** Given with --seed / --nodes-file / --node. */
  seed: boolean;
  /** The node whose reply listed it first (null for seeds). */
  discoveredFrom: string | null;
  samples: Sample[];
  /** Set when a look failed; no later look is made. */
  failure: ProbeFailure | null;
}

export interface SurveyResult {
  nodes: NodeRecord[];
  ms: number;
  /** Nodes listed but not probed because the survey reached MAX_NODES. */
  skipped: number;
}

/** The most nodes one run probes (a hostile CLUSTER NODES cannot make it probe without bound). */
export const MAX_NODES = 5000;

/** Addresses a sample points at: its CLUSTER NODES entries (unless `withTopology` is false), its master, its replicas. */
export function neighbours(s: Sample, withTopology = true): NodeAddr[] {
  const out: NodeAddr[] = [];
  if (withTopology) for (const e of s.clusterNodes?.entries ?? []) out.push({ host: e.host, port: e.port });
  const r = s.replication;
  const port = intField(r.master_port);
  if (r.role === "slave" && r.master_host && port !== null && port > 0 && port < 65536) out.push({ host: r.master_host, port });
  for (const sl of slaveLines(r)) out.push({ host: sl.ip, port: sl.port });
  return out;
}

/** Run the survey; `onProgress(done, known)` after each look (for a terminal progress line). */
export async function survey(cfg: DoctorConfig, onProgress: (looks: number, nodes: number) => void = () => {}): Promise<SurveyResult> {
  const t0 = performance.now();
  const inFlight = limiter(cfg.concurrency);
  const readTopology = topologyReader();
  // Topologies (shared entry arrays) whose nodes were already added: most nodes hold the same one.
  const expanded = new Set<unknown>();
  const byAddress = new Map<string, NodeRecord>();
  const tasks: Promise<void>[] = [];
  let looks = 0;
  let skipped = 0;

  const add = (addr: NodeAddr, seed: boolean, from: string | null) => {
    const address = addrText(addr);
    if (byAddress.has(address)) return;
    if (byAddress.size >= MAX_NODES) {
      skipped++;
      return;
    }
    const rec: NodeRecord = { addr, address, seed, discoveredFrom: from, samples: [], failure: null };
    byAddress.set(address, rec);
    tasks.push(watch(rec));
  };

  async function watch(rec: NodeRecord): Promise<void> {
    let start = 0;
    for (let k = 0; k < cfg.samples; k++) {
      if (k > 0) {
        const wait = start + k * cfg.intervalMs - performance.now();
        if (wait > 0) await Bun.sleep(wait);
      }
      const r = await inFlight(async () => {
        if (k === 0) start = performance.now();
        return probe(rec.addr, cfg, t0, readTopology);
      });
      looks++;
      onProgress(looks, byAddress.size);
      if (!r.ok) {
        rec.failure = r.failure;
        return;
      }
      rec.samples.push(r.sample);
      if (k === 0) {
        const entries = r.sample.clusterNodes?.entries;
        const fresh = !!entries && !expanded.has(entries);
        if (entries) expanded.add(entries);
        for (const n of neighbours(r.sample, fresh)) add(n, false, rec.address);
      }
    }
  }

  for (const s of cfg.seeds) add(s, true, null);
  // Discovery adds tasks while earlier ones run: wait until no new one appeared.
  for (let seen = 0; seen < tasks.length; ) {
    const batch = tasks.slice(seen);
    seen = tasks.length;
    await Promise.all(batch);
  }
  return { nodes: dedupe([...byAddress.values()]), ms: Math.round(performance.now() - t0), skipped };
}

/**
 * One record per cluster node: when two addresses answered as the same node id (a seed given as
 * a name, listed by address elsewhere), the first one (seeds come first) stays.
 */
function dedupe(nodes: NodeRecord[]): NodeRecord[] {
  const ids = new Set<string>();
  return nodes.filter((n) => {
    const id = n.samples[0]?.clusterNodes?.myself?.id;
    if (!id) return true;
    if (ids.has(id)) return false;
    ids.add(id);
    return true;
  });
}
