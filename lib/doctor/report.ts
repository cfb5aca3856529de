/**
 * How `kvr doctor` reports: a per-node table and the findings (crit first, coloured on a
 * terminal), or with --json one `node` event per node, one `finding` event per finding and a
 * `summary`; and the exit code the run implies.
 */
import { intField } from "../client/index.ts";
import { EXIT, tableLines, type Output } from "../ui/output.ts";
import { countBySeverity, type Finding, type Severity } from "./findings.ts";
import type { NodeRecord } from "./survey.ts";
import { Index, infoMasterOf, lagSeries, lastSample, nodeIdOf, roleOf, versionOf } from "./view.ts";

/** One node as the table and the `node` event show it (values of its last sample; null = unknown). */
export interface NodeRow {
  address: string;
  id: string | null;
  /** ok, or why it could not be looked at: unreachable, unresponsive, protocol, error. */
  status: "ok" | "unreachable" | "unresponsive" | "protocol" | "error";
  detail: string | null;
  seed: boolean;
  discoveredFrom: string | null;
  samples: number;
  role: string | null;
  master: string | null;
  link: string | null;
  sync: boolean | null;
  lastIoSeconds: number | null;
  offset: number | null;
  lag: number | null;
  version: string | null;
  clusterVersion: number | null;
  pingMs: number | null;
}

/** The rows, in discovery order. */
export function nodeRows(nodes: NodeRecord[]): NodeRow[] {
  const idx = new Index(nodes);
  return nodes.map((n) => {
    const s = lastSample(n);
    const r = s?.replication ?? {};
    const role = s ? roleOf(s) : null;
    const m = role === "slave" ? idx.masterOf(n) : null;
    const lag = m ? lagSeries(n, m) : [];
    return {
      address: n.address,
      id: nodeIdOf(n),
      status: n.failure ? n.failure.status : "ok",
      detail: n.failure ? `${n.failure.phase}: ${n.failure.detail}` : null,
      seed: n.seed,
      discoveredFrom: n.discoveredFrom,
      samples: n.samples.length,
      role,
      master: s ? infoMasterOf(s) : null,
      link: role === "slave" ? (r.master_link_status ?? null) : null,
      sync: role === "slave" && r.master_sync_in_progress !== undefined ? r.master_sync_in_progress === "1" : null,
      lastIoSeconds: role === "slave" ? intField(r.master_last_io_seconds_ago) : null,
      offset: role === "slave" ? intField(r.slave_repl_offset) : intField(r.master_repl_offset),
      lag: lag.length ? (lag[lag.length - 1] ?? null) : null,
      version: s ? versionOf(s) : null,
      clusterVersion: s?.version ?? null,
      pingMs: s ? s.pingMs : null,
    };
  });
}

export interface Summary {
  mode: "cluster" | "standalone" | "unknown";
  nodes: number;
  answered: number;
  seeds: number;
  seedsAnswered: number;
  samples: number;
  intervalMs: number;
  counts: Record<Severity, number>;
  /** Nodes listed but not probed (the survey's cap). */
  skipped: number;
  ms: number;
  exit: number;
}

/**
 * The exit code, highest precedence first: 4 no seed answered (nothing could be discovered);
 * 3 a node unreachable or unresponsive; 1 a warn or crit finding; 0 otherwise (info only).
 * (2, usage or invalid input, is decided before anything is sent.)
 */
export function exitCodeFor(nodes: NodeRecord[], findings: Finding[]): number {
  if (!nodes.some((n) => n.seed && n.samples.length > 0)) return EXIT.DRILL_ERROR;
  if (nodes.some((n) => n.failure?.status === "unreachable" || n.failure?.status === "unresponsive")) return EXIT.DEADLINE;
  if (findings.some((f) => f.severity !== "info")) return EXIT.FAIL;
  return EXIT.OK;
}

/** The run's summary. */
export function summarize(nodes: NodeRecord[], findings: Finding[], o: { samples: number; intervalMs: number; skipped: number; ms: number }): Summary {
  const answered = nodes.filter((n) => n.samples.length > 0);
  const mode = answered.some((n) => lastSample(n)?.clusterNodes) ? "cluster" : answered.length ? "standalone" : "unknown";
  const seeds = nodes.filter((n) => n.seed);
  return {
    mode,
    nodes: nodes.length,
    answered: answered.length,
    seeds: seeds.length,
    seedsAnswered: seeds.filter((n) => n.samples.length > 0).length,
    samples: o.samples,
    intervalMs: o.intervalMs,
    counts: countBySeverity(findings),
    skipped: o.skipped,
    ms: o.ms,
    exit: exitCodeFor(nodes, findings),
  };
}

const dash = (v: unknown) => (v === null || v === undefined || v === "" ? "-" : String(v));

function tableCells(r: NodeRow): string[] {
  if (r.status !== "ok" && r.samples === 0) return [r.address, dash(r.id?.slice(0, 12)), r.status, "-", "-", "-", "-", "-", "-", "-", "-"];
  return [
    r.address,
    dash(r.id?.slice(0, 12)),
    r.status === "ok" ? dash(r.role) : `${dash(r.role)}/${r.status}`,
    dash(r.master),
    dash(r.link),
    r.sync === null ? "-" : r.sync ? "yes" : "no",
    r.lastIoSeconds === null ? "-" : `${r.lastIoSeconds}s`,
    dash(r.offset),
    dash(r.lag),
    dash(r.version),
    r.pingMs === null ? "-" : r.pingMs.toFixed(1),
  ];
}

function colour(out: Output, sev: Severity): (s: string) => string {
  return sev === "crit" ? out.c.red : sev === "warn" ? out.c.yellow : out.c.cyan;
}

/** Print the table, the findings and the summary (human), or the NDJSON events (--json). */
export function printReport(out: Output, rows: NodeRow[], findings: Finding[], summary: Summary): void {
  if (out.json) {
    for (const r of rows) out.event("node", { ...r });
    for (const f of findings) out.event("finding", { ...f });
    out.event("summary", { ...summary });
    return;
  }
  const head = ["ADDRESS", "ID", "ROLE", "MASTER", "LINK", "SYNC", "LAST IO", "OFFSET", "LAG", "VERSION", "PING ms"];
  const [headLine, ...lines] = tableLines(head, rows.map(tableCells));
  out.print(out.c.bold(headLine));
  rows.forEach((r, i) => out.print(r.status === "ok" ? lines[i] : out.c.red(lines[i])));
  if (findings.length) out.print("");
  for (const f of findings) {
    out.print(`${colour(out, f.severity)(f.severity.toUpperCase().padEnd(4))}  ${out.c.bold(f.code)}${f.node ? ` ${f.node}` : ""}: ${f.message}`);
    for (const e of f.evidence) out.print(`      ${out.c.dim(`${e.node ? `${e.node} ` : ""}${e.field}:`)} ${e.values.map(dash).join(e.list ? "; " : " → ")}`);
    f.next.forEach((n, i) => out.print(`      ${i === 0 ? "next:" : "     "} ${n}`));
  }
  const c = summary.counts;
  const counts = [c.crit ? colour(out, "crit")(`${c.crit} crit`) : "0 crit", c.warn ? colour(out, "warn")(`${c.warn} warn`) : "0 warn", `${c.info} info`].join(", ");
  const samples = summary.samples > 1 ? `${summary.samples} samples ${summary.intervalMs} ms apart` : "1 sample";
  out.print(
    `\n${summary.nodes} node${summary.nodes === 1 ? "" : "s"} (${summary.mode}, ${summary.answered} answered), ${samples}, ${summary.ms} ms: ${counts}` +
      (summary.skipped ? `; ${summary.skipped} more listed but not probed (limit)` : ""),
  );
}
