/**
 * doctor-fanout: `kvr doctor --samples 1` on a 200-node cluster discovered from one seed, 20 of
 * whose nodes accept and read but never reply (frozen). Goals: wall ≤ 1.3 × the reply deadline
 * (a frozen node costs one deadline, all of them at once) and peak RSS of the doctor < 100 MB.
 * One row per deadline: 1 s (as setnodes-fanout) and kvr doctor's default 3 s; the work around
 * the deadline is the same, so the 1 s row is the strict one. Reference, same run: the same survey
 * with no node frozen — the frozen nodes' cost is the difference. The nodes are RESP servers in
 * this process answering as Kvrocks does (lib/cluster's INFO and CLUSTER NODES text): node 0 a
 * master with every slot, the rest its replicas.
 */
import { clusterSection, formatClusterNodes, newServerStats, parseNodes, serverSection, statsSection, type Topology } from "../lib/cluster/index.ts";
import type { Server } from "../lib/net/index.ts";
import { bulk, error, simple } from "../lib/resp/index.ts";
import { runStandalone, summary, type BenchContext, type Row } from "./support/harness.ts";
import { spawnKvr } from "./support/kvr.ts";
import { respTarget } from "./support/targets.ts";

export const NAME = "doctor-fanout";
const NODES = 200;
const FROZEN = 20;
const DEADLINES_MS = [1000, 3000];
const RSS_LIMIT = 100e6;

const nodeId = (i: number) => (i + 1).toString(16).padStart(40, "0");
const frozen = (i: number) => i % (NODES / FROZEN) === NODES / FROZEN - 1;

/** Every reply of node i, encoded once. */
function replies(i: number, t: Topology, masterPort: number, port: number): Map<string, Buffer> {
  const replication =
    i === 0
      ? `# Replication\r\nrole:master\r\nconnected_slaves:${NODES - 1}\r\nmaster_repl_offset:1000\r\n`
      : `# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:${masterPort}\r\nmaster_link_status:up\r\nmaster_sync_unrecoverable_error:no\r\n` +
        "master_sync_in_progress:0\r\nmaster_last_io_seconds_ago:0\r\nslave_repl_offset:1000\r\nslave_priority:100\r\nconnected_slaves:0\r\nmaster_repl_offset:1000\r\n";
  const now = Date.now();
  return new Map([
    ["PING", simple("PONG")],
    ["INFO server", bulk(serverSection({ cluster: true, port, startedMs: now }))],
    ["INFO replication", bulk(replication)],
    ["INFO stats", bulk(statsSection(newServerStats()))],
    ["INFO cluster", bulk(clusterSection(true))],
    ["CLUSTER NODES", bulk(formatClusterNodes(t, nodeId(i), 1, now))],
    ["CLUSTER INFO", bulk(`cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_known_nodes:${NODES}\r\ncluster_current_epoch:1\r\n`)],
    ["CLUSTERX VERSION", bulk("1")],
  ]);
}

export async function bench(ctx: BenchContext): Promise<Row[]> {
  const runs = Number(process.env.KVR_BENCH_DOCTOR_RUNS ?? 5);
  const servers: Server[] = [];
  const answers: Array<Map<string, Buffer>> = [];
  const unknown = error("ERR unknown command");
  let freeze = true;
  try {
    for (let i = 0; i < NODES; i++) servers.push(await respTarget((args) => (freeze && frozen(i) ? null : (answers[i].get(args.join(" ")) ?? unknown))));
    const lines = servers.map((s, i) => (i === 0 ? `${nodeId(0)} 127.0.0.1 ${s.port} master - 0-16383` : `${nodeId(i)} 127.0.0.1 ${s.port} slave ${nodeId(0)}`));
    const t = parseNodes(lines.join("\n"));
    for (let i = 0; i < NODES; i++) answers.push(replies(i, t, servers[0].port, servers[i].port));

    const rows: Row[] = [];
    for (const deadline of DEADLINES_MS) {
      freeze = false;
      const healthy = await walls(ctx, servers[0].port, deadline, runs, 0);
      freeze = true;
      const frozenRuns = await walls(ctx, servers[0].port, deadline, runs, FROZEN);
      rows.push(row(deadline, healthy, frozenRuns));
    }
    return rows;
  } finally {
    await Promise.all(servers.map((s) => s.close(20)));
  }
}

interface Runs {
  walls: number[];
  rss: number[];
  /** Every run found all nodes, and `want` of them unresponsive. */
  allFound: boolean;
}

/** `runs` doctor runs at one reply deadline. */
async function walls(ctx: BenchContext, seedPort: number, deadline: number, runs: number, want: number): Promise<Runs> {
  const out: Runs = { walls: [], rss: [], allFound: true };
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const child = spawnKvr(ctx.bin, ["doctor", "--seed", `127.0.0.1:${seedPort}`, "--samples", "1", "--timeout", `${deadline}ms`, "--connect-timeout", `${deadline}ms`]);
    const kill = setTimeout(() => child.proc.kill("SIGKILL"), 30_000);
    await child.exited;
    clearTimeout(kill);
    const wall = performance.now() - t0;
    await child.drained;
    const rss = child.maxRss() ?? NaN;
    const nodes = child.lines.filter((l) => l.event === "node");
    const unresponsive = nodes.filter((n) => n.status === "unresponsive").length;
    out.walls.push(wall);
    out.rss.push(rss);
    if (nodes.length !== NODES || unresponsive !== want) out.allFound = false;
    ctx.log(`deadline ${deadline} ms, ${want} frozen, run ${r + 1}: wall ${wall.toFixed(0)} ms, peak RSS ${(rss / 1e6).toFixed(1)} MB, ${nodes.length} nodes, ${unresponsive} unresponsive, exit ${child.proc.exitCode}`);
  }
  return out;
}

function row(deadline: number, healthy: Runs, frozenRuns: Runs): Row {
  const w = summary(frozenRuns.walls);
  const h = summary(healthy.walls);
  const m = summary([...frozenRuns.rss, ...healthy.rss].map((x) => x / 1e6));
  const ratio = w.max / deadline;
  return {
    name: deadline === 1000 ? NAME : `${NAME} (${deadline / 1000} s)`,
    figure: `wall median ${w.median} ms, max ${w.max} ms; peak RSS max ${m.max} MB`,
    value: w.max,
    unit: "ms",
    reference: `deadline ${deadline} ms; no node frozen: median ${h.median} ms, max ${h.max} ms`,
    ratio,
    goal: "wall ≤ 1.3 × deadline, peak RSS < 100 MB",
    met: ratio <= 1.3 && m.max * 1e6 < RSS_LIMIT && frozenRuns.allFound && healthy.allFound,
    note:
      `${frozenRuns.walls.length} runs each (ratio from the slowest; median ${(w.median / deadline).toFixed(2)}); the ${FROZEN} frozen nodes (accept, read, never reply) cost ` +
      `${(w.median - h.median).toFixed(0)} ms over the all-healthy median (${((w.median - h.median) / deadline).toFixed(2)} deadline); peak RSS ${(m.max / (RSS_LIMIT / 1e6)).toFixed(2)} of the 100 MB limit; ` +
      `${NODES} nodes discovered from one seed's CLUSTER NODES, --samples 1, --timeout ${deadline / 1000}s; wall = spawn → exit of the compiled binary`,
    details: { deadlineMs: deadline, wallMs: w, healthyWallMs: h, rssMB: m },
  };
}

if (import.meta.main) await runStandalone(NAME, bench);
