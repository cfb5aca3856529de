/** The diagnosis as a pure function of what the survey saw: edge cases of the findings and the exit code. */
import { describe, expect, test } from "bun:test";
import { diagnose, stuckSyncNext, unassignedRanges, type Thresholds } from "../../lib/doctor/findings.ts";
import type { Sample } from "../../lib/doctor/probe.ts";
import { exitCodeFor, nodeRows } from "../../lib/doctor/report.ts";
import type { NodeRecord } from "../../lib/doctor/survey.ts";
import { parseClusterNodes } from "../../lib/cluster/index.ts";

const TH: Thresholds = { stuckAfterMs: 10_000, maxLag: 100_000, timeoutMs: 3000 };

function sample(atMs: number, replication: Record<string, string>, stats: Record<string, string> = {}): Sample {
  return { atMs, pingMs: 1, server: { kvrocks_version: "2.10.1" }, replication, stats, clusterMode: false, clusterNodes: null, topologyKey: null, clusterNote: null, clusterInfo: null, version: null };
}
function rec(port: number, samples: Sample[], extra: Partial<NodeRecord> = {}): NodeRecord {
  return { addr: { host: "127.0.0.1", port }, address: `127.0.0.1:${port}`, seed: true, discoveredFrom: null, samples, failure: null, ...extra };
}
const syncing = (io: number, extra: Record<string, string> = {}) => ({
  role: "slave",
  master_host: "127.0.0.1",
  master_port: "1",
  master_link_status: "down",
  master_sync_in_progress: "1",
  master_last_io_seconds_ago: String(io),
  slave_repl_offset: "0",
  ...extra,
});
const codes = (nodes: NodeRecord[], th = TH) => diagnose(nodes, th).map((f) => f.code);

describe("stuck full sync", () => {
  test("one look: master_last_io_seconds_ago at or above --stuck-after", () => {
    expect(codes([rec(2, [sample(0, syncing(10))])])).toEqual(["stuck-full-sync"]);
    expect(codes([rec(2, [sample(0, syncing(9))])])).toEqual([]);
  });

  test("growing across samples with no progress; not when I/O happened in between or bytes moved", () => {
    expect(codes([rec(2, [sample(0, syncing(0)), sample(2000, syncing(2))])])).toEqual(["stuck-full-sync"]);
    expect(codes([rec(2, [sample(0, syncing(3)), sample(2000, syncing(0))])])).toEqual([]);
    expect(codes([rec(2, [sample(0, syncing(3)), sample(2000, syncing(3))])])).toEqual([]);
    expect(codes([rec(2, [sample(0, syncing(1, { kvr_bytes_done: "10" })), sample(2000, syncing(3, { kvr_bytes_done: "20" }))])])).toEqual([]);
    // Grown by 1 over 6 s: some I/O reset it in between.
    expect(codes([rec(2, [sample(0, syncing(1)), sample(6000, syncing(2))])])).toEqual([]);
    // A sample not syncing in between: the sync restarted.
    expect(codes([rec(2, [sample(0, syncing(0)), sample(2000, syncing(1, { master_sync_in_progress: "0" })), sample(4000, syncing(4))])])).toEqual([]);
  });

  test("the next steps: the do-not-push warning first, one line each", () => {
    const next = stuckSyncNext("127.0.0.1:2", "127.0.0.1:1");
    expect(next[0]).toStartWith("do not push topology to this node now");
    // The remedy for builds without the fetch read deadline, proven first with the drill.
    expect(next.find((l) => l.startsWith("kvr guard --node 127.0.0.1:2"))).toContain("on a staging node running the same build: kvr drill --replica <staging node> --guard");
    expect(next.every((l) => !l.includes("\n"))).toBe(true);
  });
});

describe("replication", () => {
  test("link down and not syncing → link-down; missing fields never crash", () => {
    expect(codes([rec(2, [sample(0, { ...syncing(40), master_sync_in_progress: "0" })])])).toEqual(["link-down"]);
    expect(codes([rec(2, [sample(0, { role: "slave" })]), rec(3, [sample(0, {})])])).toEqual([]);
  });

  test("lag: above --max-lag, or growing by over a tenth of what the master wrote; probe-skew noise is not growth", () => {
    const m = (offsets: number[]) => rec(1, offsets.map((o, k) => sample(k * 1000, { role: "master", master_repl_offset: String(o) })));
    const r = (offsets: number[]) => rec(2, offsets.map((o, k) => sample(k * 1000, { role: "slave", master_host: "127.0.0.1", master_port: "1", master_link_status: "up", master_sync_in_progress: "0", slave_repl_offset: String(o) })));
    expect(codes([m([200_000]), r([50_000])])).toEqual(["lag"]);
    expect(codes([m([10_000, 20_000, 30_000]), r([9_990, 19_980, 29_970])])).toEqual([]);
    expect(codes([m([10_000, 20_000, 30_000]), r([9_000, 15_000, 21_000])])).toEqual(["lag"]);
    expect(codes([m([100, 100]), r([100, 100])])).toEqual([]);
  });

  test("lag is never negative: a streaming replica read just after its master can be ahead of the master's sample", () => {
    const m = rec(1, [0, 1].map((k) => sample(k * 1000, { role: "master", master_repl_offset: String(100 + k * 100) })));
    const r = rec(2, [0, 1].map((k) => sample(k * 1000 + 5, { role: "slave", master_host: "127.0.0.1", master_port: "1", master_link_status: "up", master_sync_in_progress: "0", slave_repl_offset: String(103 + k * 104) })));
    expect(nodeRows([m, r]).map((row) => row.lag)).toEqual([null, 0]);
    const [lag] = diagnose([m, r], { ...TH, maxLag: -1 }).filter((f) => f.code === "lag");
    expect(lag.evidence.find((e) => e.field === "lag")!.values).toEqual([0, 0]);
  });

  test("full-sync loop needs sync_full to grow while the replica stays down in every sample", () => {
    const master = (full: number[]) => rec(1, full.map((f, k) => sample(k * 1000, { role: "master" }, { sync_full: String(f) })));
    const down = rec(2, [sample(0, { ...syncing(0), master_sync_in_progress: "0" }), sample(1000, syncing(0))]);
    expect(codes([master([3, 5]), down])).toContain("full-sync-loop");
    expect(codes([master([3, 3]), down])).not.toContain("full-sync-loop");
  });
});

describe("cluster", () => {
  test("unassigned slot ranges", () => {
    const v = parseClusterNodes(`${"a".repeat(40)} h:1@1 master - 0 0 1 connected 0-99 200\n${"b".repeat(40)} h:2@2 master - 0 0 1 connected 201-16382`);
    expect(unassignedRanges(v.entries)).toEqual([[100, 199], [16383, 16383]]);
    expect(unassignedRanges([])).toEqual([[0, 16383]]);
  });
});

describe("exit code precedence", () => {
  const unreachable = (seed: boolean) => rec(9, [], { seed, failure: { status: "unreachable", phase: "connect", detail: "connection refused", ms: 1 } });
  const ok = (seed: boolean) => rec(1, [sample(0, { role: "master" })], { seed });
  const warn = rec(2, [sample(0, { ...syncing(40), master_sync_in_progress: "0" })], { seed: false });
  test("4 no seed answered > 3 unreachable or unresponsive > 1 warn or crit > 0", () => {
    const run = (nodes: NodeRecord[]) => exitCodeFor(nodes, diagnose(nodes, TH));
    expect(run([unreachable(true), ok(false)])).toBe(4);
    expect(run([ok(true), unreachable(false), warn])).toBe(3);
    expect(run([ok(true), warn])).toBe(1);
    expect(run([ok(true)])).toBe(0);
    const info = [ok(true), rec(3, [sample(0, { role: "master" })], { seed: false })];
    info[1].samples[0].server = { kvrocks_version: "2.8.0" };
    expect(diagnose(info, TH).map((f) => f.severity)).toEqual(["info"]);
    expect(run(info)).toBe(0);
  });

  test("findings come crit first, then warn, then info", () => {
    const nodes = [ok(true), warn, unreachable(false)];
    nodes[0].samples[0].server = { kvrocks_version: "2.8.0" };
    expect(diagnose(nodes, TH).map((f) => f.severity)).toEqual(["crit", "warn", "info"]);
  });
});
