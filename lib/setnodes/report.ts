/**
 * How `kvr setnodes` reports: a table per target (colour on a TTY) and a summary line, or with
 * --json one object per target and a summary object; and the exit code the results imply.
 */
import type { Topology } from "../cluster/index.ts";
import { EXIT, tableLines, type Output } from "../ui/output.ts";
import type { Plan } from "./plan.ts";
import type { ResultKind, TargetResult } from "./push.ts";
import { count } from "../ui/units.ts";

/** 0 every target OK; 1 any target failed otherwise than by a deadline; 3 only deadlines failed. */
export function exitCodeFor(results: TargetResult[]): number {
  if (results.some((r) => r.result !== "ok" && r.result !== "timeout")) return EXIT.FAIL;
  if (results.some((r) => r.result === "timeout")) return EXIT.DEADLINE;
  return EXIT.OK;
}

export interface Summary {
  version: number | null;
  targets: number;
  counts: Record<ResultKind, number>;
  ms: number;
  exit: number;
}

/** Count results by kind. */
export function summarize(results: TargetResult[], version: number | null, ms: number): Summary {
  const counts: Record<ResultKind, number> = { ok: 0, error: 0, timeout: 0, refused: 0, failed: 0, diverged: 0 };
  for (const r of results) counts[r.result]++;
  return { version, targets: results.length, counts, ms: Math.round(ms), exit: exitCodeFor(results) };
}

function colourFor(out: Output, kind: ResultKind): (s: string) => string {
  const c = out.c;
  switch (kind) {
    case "ok":
      return c.green;
    case "timeout":
      return c.yellow;
    case "diverged":
      return c.magenta;
    default:
      return c.red;
  }
}

/** The per-target table and summary (human), or NDJSON objects (--json). */
export function printResults(out: Output, results: TargetResult[], summary: Summary): void {
  if (out.json) {
    for (const r of results) out.event("target", { ...r });
    out.event("summary", { ...summary });
    return;
  }
  const rows = results.map((r) => ({
    r,
    cells: [
      r.address,
      r.nodeId ? r.nodeId.slice(0, 12) : "-",
      r.role ?? "-",
      r.result,
      // Only a reply has a latency; the wall time of a failed push is in --json (elapsedMs).
      r.latencyMs !== null ? r.latencyMs.toFixed(1) : "-",
      r.result === "ok" ? (r.version !== undefined ? `version ${r.version}` : "") : `${r.phase}: ${r.detail}`,
    ],
  }));
  const head = ["ADDRESS", "NODE ID", "ROLE", "RESULT", "LATENCY ms", "DETAIL"];
  // The RESULT column in the colour of its result.
  const [headLine, ...lines] = tableLines(
    head,
    rows.map((x) => x.cells),
    (cell, row, column) => (row >= 0 && column === 3 ? colourFor(out, rows[row].r.result)(cell) : cell),
  );
  out.print(out.c.bold(headLine));
  for (const l of lines) out.print(l);
  const parts = (Object.entries(summary.counts) as Array<[ResultKind, number]>)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => colourFor(out, k)(`${n} ${k}`));
  const v = summary.version === null ? "" : `version ${summary.version}, `;
  out.print(`${v}${count(summary.targets, "target")}: ${parts.join(", ")} in ${summary.ms} ms`);
}

/** Counts that help check a topology at a glance. */
export function topologyFacts(t: Topology): { nodes: number; masters: number; slaves: number; slotsAssigned: number } {
  let masters = 0;
  let slots = 0;
  for (const n of t.nodes) {
    if (n.role !== "master") continue;
    masters++;
    for (const [a, b] of n.slots) slots += b - a + 1;
  }
  return { nodes: t.nodes.length, masters, slaves: t.nodes.length - masters, slotsAssigned: slots };
}

/** --dry-run: the canonical topology and what would be sent (nothing is). */
export function printDryRun(out: Output, plan: Plan): void {
  const facts = topologyFacts(plan.topology);
  const version = plan.version !== null ? String(plan.version) : plan.bump ? "bump (targets' highest + 1)" : "(none given)";
  const targets = plan.targets.map((t) => t.address);
  if (out.json) {
    out.event("topology", { dryRun: true, text: plan.nodesText, ...facts, version: plan.version, bump: plan.bump, force: plan.force, targets });
    return;
  }
  for (const l of plan.nodesText.split("\n")) out.print(l);
  out.info(
    `valid topology: ${count(facts.nodes, "node")} (${count(facts.masters, "master")}, ${count(facts.slaves, "slave")}), ${facts.slotsAssigned}/16384 slots assigned`,
  );
  out.info(
    `dry run: would send CLUSTERX SETNODES with version ${version}${plan.force ? " FORCE" : ""} to ${targets.length ? targets.join(", ") : "no target"}; nothing sent`,
  );
}
