/**
 * The diagnosis: from what the survey saw, the findings — each with a severity, the node(s), the
 * evidence (the fields and their values per sample) and the next step. Pure: no I/O.
 */
import { canonicalLine, CLUSTER_SLOTS, formatSlotRange, topologyKey, type ClusterNodesEntry, type ClusterNodesView } from "../cluster/index.ts";
import type { Sample } from "./probe.ts";
import type { NodeRecord } from "./survey.ts";
import { entryAddress, Index, infoMasterOf, lagSeries, lastSample, numSeries, roleOf, series, topologyVersionOf, versionOf } from "./view.ts";

export type Severity = "crit" | "warn" | "info";

export type FindingCode =
  | "unreachable"
  | "unresponsive"
  | "probe-error"
  | "stuck-full-sync"
  | "link-down"
  | "full-sync-loop"
  | "topology-split"
  | "role-mismatch"
  | "slot-coverage"
  | "no-replica"
  | "lag"
  | "mixed-versions";

/** A field's values, one per sample (or, with `list`, a list such as topology lines or slot ranges). */
export interface Evidence {
  /** The node the values come from; null for the cluster as a whole. */
  node: string | null;
  field: string;
  values: Array<string | number | null>;
  /** The values are a list, not one per sample. */
  list?: true;
}

export interface Finding {
  code: FindingCode;
  severity: Severity;
  /** The node the finding is about ("host:port"), or null for the cluster as a whole. */
  node: string | null;
  /** Every node involved. */
  nodes: string[];
  /** One line: what is wrong. */
  message: string;
  evidence: Evidence[];
  /** What to do, in order; a runnable kvr command where one exists. */
  next: string[];
}

export interface Thresholds {
  stuckAfterMs: number;
  maxLag: number;
  timeoutMs: number;
}

const RANK: Record<Severity, number> = { crit: 0, warn: 1, info: 2 };

const short = (id: string | null) => (id ? id.slice(0, 12) : "?");

/**
 * The next steps for a replica stuck in a full sync: one line each, so a remedy (a guard for
 * unpatched builds, say) is one more line here.
 */
export function stuckSyncNext(node: string, master: string | null): string[] {
  return [
    "do not push topology to this node now: on builds without the fetch read deadline a SETNODES freezes it; bring its master back or restart the node first",
    master ? `kvr doctor --seed ${master} --samples 1    # is its master alive?` : "find its master (INFO replication master_host:master_port) and check it",
    `kvr guard --node ${node}    # on the node's host, for builds without the fetch read deadline: cuts the hung fetch so a SETNODES cannot freeze it (prove it first on a staging node running the same build: kvr drill --replica <staging node> --guard)`,
    `kvr doctor --seed ${node} --samples 3 --interval 5s    # after the fix: master_last_io_seconds_ago stays small`,
  ];
}

/** Every finding, crit first, then warn, then info (stable within a severity). */
export function diagnose(nodes: NodeRecord[], th: Thresholds): Finding[] {
  const idx = new Index(nodes);
  const out: Finding[] = [
    ...nodes.flatMap((n) => failureFindings(n, th)),
    ...nodes.flatMap((n) => replicationFindings(n, idx, th)),
    ...fullSyncLoops(nodes, idx),
    ...topologyFindings(nodes),
    ...roleMismatches(nodes),
    ...coverage(nodes, idx),
    ...mixedVersions(nodes),
  ];
  return out.map((f, i) => ({ f, i })).sort((a, b) => RANK[a.f.severity] - RANK[b.f.severity] || a.i - b.i).map((x) => x.f);
}

function failureFindings(n: NodeRecord, th: Thresholds): Finding[] {
  const f = n.failure;
  if (!f) return [];
  const when = n.samples.length ? ` (after ${n.samples.length} good sample${n.samples.length > 1 ? "s" : ""})` : "";
  const evidence: Evidence[] = [{ node: n.address, field: f.phase, values: [f.detail] }, { node: n.address, field: "ms", values: [f.ms] }];
  if (f.status === "unreachable") {
    return [
      {
        code: "unreachable",
        severity: "crit",
        node: n.address,
        nodes: [n.address],
        message: `unreachable${when}: ${f.detail}`,
        evidence,
        next: [
          `check that a node runs and listens on ${n.address}: refused = nothing listens there; a connect deadline = a dead host, a firewall or a dropped route`,
          `kvr doctor --seed ${n.address} --samples 1    # again once it is back`,
        ],
      },
    ];
  }
  if (f.status === "unresponsive") {
    return [
      {
        code: "unresponsive",
        severity: "crit",
        node: n.address,
        nodes: [n.address],
        message:
          `unresponsive${when}: connected, no reply to ${f.phase} within ${th.timeoutMs} ms — the frozen-node signature ` +
          "(a CLUSTERX SETNODES or SLAVEOF blocked behind a hung SST fetch is the usual cause on builds without the fetch read deadline)",
        evidence,
        next: [
          "do not push topology to it: every command waits behind the blocked one, a SETNODES too",
          "restart the node: a blocked fetch ends only when its socket errors (TCP keepalive: hours)",
          `kvr doctor --seed ${n.address} --samples 1 --timeout 10s    # confirm with a longer deadline`,
        ],
      },
    ];
  }
  return [
    {
      code: "probe-error",
      severity: "crit",
      node: n.address,
      nodes: [n.address],
      message: `${f.status === "protocol" ? "protocol error" : "error reply"}${when} to ${f.phase}: ${f.detail}`,
      evidence,
      next: [
        f.status === "error"
          ? "check the password (--auth or KVR_AUTH) and that this is the node's client port"
          : `check that ${n.address} is a Kvrocks port (not a proxy or another service); the other nodes were still diagnosed`,
      ],
    },
  ];
}

/** Stuck full sync, link down, lag: a replica against its own samples and its master's. */
function replicationFindings(n: NodeRecord, idx: Index, th: Thresholds): Finding[] {
  const s = lastSample(n);
  if (!s || roleOf(s) !== "slave") return [];
  const out: Finding[] = [];
  const infoMaster = infoMasterOf(s);
  const sync = series(n, "master_sync_in_progress");
  const link = series(n, "master_link_status");
  const lastIo = numSeries(n, "master_last_io_seconds_ago");
  const ev = (field: string): Evidence => ({ node: n.address, field, values: series(n, field) });
  const io = lastIo[lastIo.length - 1];

  if (sync[sync.length - 1] === "1") {
    const overLimit = io !== null && io * 1000 >= th.stuckAfterMs;
    if (overLimit || noProgress(n)) {
      out.push({
        code: "stuck-full-sync",
        severity: "crit",
        node: n.address,
        nodes: infoMaster ? [n.address, infoMaster] : [n.address],
        message: `stuck full sync: syncing from ${infoMaster ?? "its master"} with no I/O for ${io ?? "?"} s${overLimit ? ` (≥ --stuck-after ${th.stuckAfterMs / 1000} s)` : ", growing across samples with no progress"}`,
        evidence: [ev("master_sync_in_progress"), ev("master_last_io_seconds_ago"), ev("master_link_status"), ev("slave_repl_offset"), ...(s.replication.kvr_bytes_done !== undefined ? [ev("kvr_bytes_done")] : [])],
        next: stuckSyncNext(n.address, infoMaster),
      });
    }
    return out;
  }

  if (link[link.length - 1] === "down") {
    out.push({
      code: "link-down",
      severity: "warn",
      node: n.address,
      nodes: infoMaster ? [n.address, infoMaster] : [n.address],
      message: `replication link down${io !== null ? ` for ${io} s` : ""} and not syncing (master ${infoMaster ?? "unknown"})`,
      evidence: [ev("master_link_status"), ev("master_sync_in_progress"), ev("master_last_io_seconds_ago")],
      next: [
        infoMaster ? `kvr doctor --seed ${infoMaster} --samples 1    # is its master up?` : "find out which master it should follow",
        "it retries on its own; if its master is gone for good, push a topology naming a live master: kvr setnodes --nodes-file <topology> --bump --all --verify",
      ],
    });
    return out;
  }

  const m = idx.masterOf(n);
  if (!m || m.samples.length === 0) return out;
  const lag = lagSeries(n, m);
  const known = lag.filter((x): x is number => x !== null);
  const last = lag[lag.length - 1];
  if (last === null || last === undefined) return out;
  // Growing: more behind in every sample, by over a tenth of what the master wrote meanwhile (so
  // the few sequences written between the two probes of a sample cannot look like growth).
  const mo = numSeries(m, "master_repl_offset");
  const wrote = (mo[lag.length - 1] ?? 0) - (mo[0] ?? 0);
  const growing =
    known.length >= 2 && known.length === lag.length && known.every((x, i) => i === 0 || x > known[i - 1]) && known[known.length - 1] - known[0] > wrote / 10;
  if (last > th.maxLag || growing) {
    out.push({
      code: "lag",
      severity: "warn",
      node: n.address,
      nodes: [n.address, m.address],
      message: `${last} sequences behind its master ${m.address}${last > th.maxLag ? ` (above --max-lag ${th.maxLag})` : ""}${growing ? `, growing: ${known.join(" → ")}` : ""}`,
      evidence: [
        { node: m.address, field: "master_repl_offset", values: series(m, "master_repl_offset") },
        ev("slave_repl_offset"),
        { node: n.address, field: "lag", values: lag },
      ],
      next: [
        "a replica that keeps falling behind needs a full sync once its master's WAL moves past it: check the network between them and the replica's disk and CPU",
        `kvr doctor --seed ${n.address} --samples 5 --interval 2s    # watch the trend`,
      ],
    });
  }
  return out;
}

/**
 * A full sync with no progress between the first and the last sample: syncing in every sample,
 * master_last_io_seconds_ago never falling and grown by about the time between the samples
 * (some I/O in between would have reset it), the offset and the bytes fetched unchanged.
 */
function noProgress(n: NodeRecord): boolean {
  if (n.samples.length < 2) return false;
  const io = numSeries(n, "master_last_io_seconds_ago");
  if (series(n, "master_sync_in_progress").some((v) => v !== "1") || io.some((v) => v === null)) return false;
  const v = io as number[];
  if (v.some((x, i) => i > 0 && x < v[i - 1])) return false;
  const elapsedS = (n.samples[n.samples.length - 1].atMs - n.samples[0].atMs) / 1000;
  if (v[v.length - 1] - v[0] < Math.max(1, Math.floor(elapsedS) - 1)) return false;
  const same = (field: string) => new Set(series(n, field)).size === 1;
  return same("slave_repl_offset") && same("kvr_bytes_done");
}

/** A master whose sync_full grows while a replica of it stays link-down (Kvrocks #1319 class). */
function fullSyncLoops(nodes: NodeRecord[], idx: Index): Finding[] {
  const out: Finding[] = [];
  for (const m of nodes) {
    const s = lastSample(m);
    if (!s || m.samples.length < 2 || roleOf(s) !== "master") continue;
    const full = numSeries(m, "sync_full", "stats");
    const first = full[0];
    const last = full[full.length - 1];
    if (first === null || last === null || last <= first) continue;
    const looping = nodes.filter((r) => r !== m && r.samples.length >= 2 && idx.masterOf(r) === m && series(r, "master_link_status").every((l) => l === "down"));
    if (looping.length === 0) continue;
    out.push({
      code: "full-sync-loop",
      severity: "crit",
      node: m.address,
      nodes: [m.address, ...looping.map((r) => r.address)],
      message: `full-sync loop: ${m.address} served ${last - first} more full sync(s) during the run while ${looping.map((r) => r.address).join(", ")} never came up`,
      evidence: [{ node: m.address, field: "sync_full", values: full }, ...looping.map((r) => ({ node: r.address, field: "master_link_status", values: series(r, "master_link_status") }))],
      next: [
        "each attempt makes the master build and send a checkpoint: find why the replica's full sync fails (its log: disk space, a fetch deadline shorter than a file takes, the WAL rotating past the checkpoint before it is restored)",
        `kvr doctor --seed ${m.address} --samples 5 --interval 5s    # watch sync_full`,
      ],
    });
  }
  return out;
}

/** Cluster-mode nodes that answered, with their last sample. */
function clusterNodesOf(nodes: NodeRecord[]) {
  return nodes.flatMap((n) => {
    const s = lastSample(n);
    return s && s.clusterMode ? [{ n, s }] : [];
  });
}

/** Group by key, in first-seen order. */
function groupBy<T>(xs: T[], key: (x: T) => string): Array<{ key: string; items: T[] }> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const g = m.get(k);
    if (g) g.push(x);
    else m.set(k, [x]);
  }
  return [...m].map(([k, items]) => ({ key: k, items }));
}

/** The topology's content key (sorted canonical lines), computed when the survey did not. */
const keyOf = (s: Sample) => s.topologyKey ?? topologyKey(s.clusterNodes!.entries);

function topologyFindings(nodes: NodeRecord[]): Finding[] {
  const cn = clusterNodesOf(nodes);
  if (!cn.some(({ s }) => s.clusterNodes)) return [];
  const out: Finding[] = [];
  const next = [
    "push the intended topology to every node with a version above all of theirs: kvr setnodes --nodes-file <topology> --bump --all --verify",
    "first make sure no node is stuck in a full sync (see above): on builds without the fetch read deadline a SETNODES freezes such a node",
  ];
  const versions = groupBy(cn, ({ s }) => String(topologyVersionOf(s) ?? "unknown"));
  if (versions.length > 1) {
    out.push({
      code: "topology-split",
      severity: "crit",
      node: null,
      nodes: cn.map(({ n }) => n.address),
      message: `nodes disagree on CLUSTERX VERSION: ${versions.map((g) => `${g.key} on ${g.items.map(({ n }) => n.address).join(", ")}`).join("; ")}`,
      evidence: cn.map(({ n }) => ({ node: n.address, field: "CLUSTERX VERSION", values: n.samples.map(topologyVersionOf) })),
      next,
    });
  }
  const withView = cn.filter(({ s }) => s.clusterNodes);
  const contents = groupBy(withView, ({ s }) => keyOf(s));
  if (contents.length > 1) {
    const sets = contents.map((g) => new Set(g.key.split("\n")));
    const all = new Set(sets.flatMap((x) => [...x]));
    const differing = [...all].filter((l) => !sets.every((x) => x.has(l)));
    out.push({
      code: "topology-split",
      severity: "crit",
      node: null,
      nodes: withView.map(({ n }) => n.address),
      message: `nodes disagree on the topology (CLUSTER NODES): ${contents.length} versions of it, ${differing.length} differing line(s); ${contents.map((g) => g.items.map(({ n }) => n.address).join(", ")).join(" | ")}`,
      evidence: contents.flatMap((g, i) =>
        g.items.map(({ n }) => ({ node: n.address, field: "CLUSTER NODES (lines not on every node)", values: differing.filter((l) => sets[i].has(l)), list: true as const })),
      ),
      next,
    });
  }
  return out;
}

/** INFO role / master against the node's own topology. */
function roleMismatches(nodes: NodeRecord[]): Finding[] {
  const out: Finding[] = [];
  for (const { n, s } of clusterNodesOf(nodes)) {
    const me = s.clusterNodes?.myself;
    const role = roleOf(s);
    if (!me || !role || me.role === "unknown") continue;
    const infoMaster = infoMasterOf(s);
    const topoMaster = me.role === "slave" ? (s.clusterNodes!.entries.find((e) => e.id === me.masterId) ?? null) : null;
    const topoMasterText = topoMaster ? `${short(topoMaster.id)} (${entryAddress(topoMaster)})` : short(me.masterId);
    let what: string | null = null;
    if (me.role === "master" && role === "slave") what = `the topology makes it a master, INFO says role:slave of ${infoMaster ?? "?"}`;
    else if (me.role === "slave" && role === "master") what = `the topology makes it a slave of ${topoMasterText}, INFO says role:master (it replicates from nobody)`;
    else if (me.role === "slave" && role === "slave" && topoMaster && infoMaster !== entryAddress(topoMaster)) {
      what = `it replicates from ${infoMaster ?? "?"}, the topology's master is ${topoMasterText}`;
    }
    if (!what) continue;
    out.push({
      code: "role-mismatch",
      severity: "crit",
      node: n.address,
      nodes: [n.address],
      message: `role mismatch: ${what}`,
      evidence: [
        { node: n.address, field: "role", values: series(n, "role") },
        { node: n.address, field: "master_host", values: series(n, "master_host") },
        { node: n.address, field: "master_port", values: series(n, "master_port") },
        { node: n.address, field: "CLUSTER NODES myself", values: [canonicalLine(me)], list: true },
      ],
      next: [
        `kvr setnodes --nodes-file <topology> --bump --target ${n.address} --verify    # re-apply the topology to this node`,
        "if INFO is right and the topology wrong, fix the topology and push it to every node (--all)",
      ],
    });
  }
  return out;
}

/** The topology most nodes hold (ties: the higher version), as its view and the nodes holding it. */
function referenceView(nodes: NodeRecord[]): { view: ClusterNodesView; holders: string[] } | null {
  const withView = clusterNodesOf(nodes).filter(({ s }) => s.clusterNodes);
  if (withView.length === 0) return null;
  const groups = groupBy(withView, ({ s }) => keyOf(s));
  groups.sort((a, b) => b.items.length - a.items.length || (topologyVersionOf(b.items[0].s) ?? -1) - (topologyVersionOf(a.items[0].s) ?? -1));
  return { view: groups[0].items[0].s.clusterNodes!, holders: groups[0].items.map(({ n }) => n.address) };
}

/** Slot ranges no master serves. */
export function unassignedRanges(entries: ClusterNodesEntry[]): Array<[number, number]> {
  const owned = new Uint8Array(CLUSTER_SLOTS);
  for (const e of entries) if (e.role === "master") for (const [a, b] of e.slots) owned.fill(1, a, b + 1);
  const out: Array<[number, number]> = [];
  for (let s = 0; s < CLUSTER_SLOTS; s++) {
    if (owned[s]) continue;
    let e = s;
    while (e + 1 < CLUSTER_SLOTS && !owned[e + 1]) e++;
    out.push([s, e]);
    s = e;
  }
  return out;
}

function coverage(nodes: NodeRecord[], idx: Index): Finding[] {
  const ref = referenceView(nodes);
  if (!ref) return [];
  const out: Finding[] = [];
  const holders = `the topology of ${ref.holders.join(", ")}`;
  const free = unassignedRanges(ref.view.entries);
  if (free.length > 0) {
    const count = free.reduce((a, [x, y]) => a + y - x + 1, 0);
    const text = free.map(formatSlotRange);
    out.push({
      code: "slot-coverage",
      severity: "crit",
      node: null,
      nodes: ref.holders,
      message: `${count} slot(s) served by no master in ${holders}: ${text.join(" ")}`,
      evidence: [{ node: null, field: "unassigned slots", values: text, list: true }],
      next: ["assign every slot to a master in the topology and push it: kvr setnodes --nodes-file <topology> --bump --all --verify"],
    });
  }
  for (const m of ref.view.entries.filter((e) => e.role === "master")) {
    if (ref.view.entries.some((e) => e.role === "slave" && e.masterId === m.id)) continue;
    const addr = idx.find(entryAddress(m), m.id)?.address ?? entryAddress(m);
    out.push({
      code: "no-replica",
      severity: "warn",
      node: addr,
      nodes: [addr],
      message: `master ${short(m.id)} (${entryAddress(m)}) has no replica in ${holders}: losing it loses its slots`,
      evidence: [{ node: addr, field: "CLUSTER NODES", values: [canonicalLine(m)], list: true }],
      next: [`add a node '<id> <host> <port> slave ${m.id}' to the topology and push it: kvr setnodes --nodes-file <topology> --bump --all --verify`],
    });
  }
  return out;
}

function mixedVersions(nodes: NodeRecord[]): Finding[] {
  const answered = nodes.flatMap((n) => {
    const s = lastSample(n);
    return s ? [{ n, v: versionOf(s) }] : [];
  });
  const groups = groupBy(answered, (x) => x.v);
  if (groups.length < 2) return [];
  return [
    {
      code: "mixed-versions",
      severity: "info",
      node: null,
      nodes: answered.map(({ n }) => n.address),
      message: `nodes run different builds: ${groups.map((g) => `${g.key} on ${g.items.map(({ n }) => n.address).join(", ")}`).join("; ")}`,
      evidence: answered.map(({ n }) => ({ node: n.address, field: "kvrocks_version (kvrocks_git_sha1)", values: n.samples.map(versionOf) })),
      next: [
        "expected during a rolling upgrade; otherwise upgrade the stragglers",
        "builds before Kvrocks PR #2662 (Nov 2024) have no fetch read deadline: a topology push can freeze them while a full sync hangs",
      ],
    },
  ];
}

/** Severity counts. */
export function countBySeverity(fs: Finding[]): Record<Severity, number> {
  const c: Record<Severity, number> = { crit: 0, warn: 0, info: 0 };
  for (const f of fs) c[f.severity]++;
  return c;
}
