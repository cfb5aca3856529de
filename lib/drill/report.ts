/** The drill's report: latency statistics, the human text, and the --json result object. */
import type { Output } from "../ui/output.ts";
import { formatBytes, formatMs } from "../ui/units.ts";
import type { DrillConfig } from "./options.ts";
import type { GuardReport } from "./guard.ts";
import type { Phase, RunResult } from "./scenario.ts";

export interface LatencyStats {
  n: number;
  min: number;
  median: number;
  p99: number;
  max: number;
  /** Runs whose SETNODES hung (their latency counts as the --give-up time). */
  hung: number;
}

/** Nearest-rank percentile of sorted values (p in 0..100). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1];
}

/** min / median / p99 / max of the SETNODES latencies of the runs that reached SETNODES. */
export function latencyStats(runs: RunResult[]): LatencyStats | null {
  const reached = runs.filter((r) => r.setnodes.hung || r.setnodes.reply !== null);
  if (reached.length === 0) return null;
  const v = reached.map((r) => r.setnodes.ms).sort((x, y) => x - y);
  return { n: v.length, min: v[0], median: percentile(v, 50), p99: percentile(v, 99), max: v[v.length - 1], hung: reached.filter((r) => r.setnodes.hung).length };
}

/** A phase as one human line. */
export function phaseLine(out: Output, p: Phase): string {
  const at = `+${(p.atMs / 1000).toFixed(3)}s`.padStart(9);
  return `${out.c.dim(at)}  ${p.name.padEnd(14)} ${p.detail} ${out.c.dim(`(${formatMs(p.ms)})`)}`;
}

/** The human summary of one run (phases were printed live). */
export function printRun(out: Output, cfg: DrillConfig, r: RunResult): void {
  const c = out.c;
  out.print(`  bytes at cut:     ${formatBytes(r.cut.bytesSent)} of ${formatBytes(r.cut.totalBytes)} (${Math.round(r.cut.fraction * 100)}%) — ${r.cut.method}`);
  if (r.setnodes.reply !== null || r.setnodes.hung) {
    const lat = r.setnodes.hung ? c.red(`no reply within ${formatMs(cfg.giveUpMs)} (hung)`) : `${formatMs(r.setnodes.ms)} → ${r.setnodes.reply}`;
    out.print(`  ${`SETNODES v${r.versions.v2}:`.padEnd(18)}${lat} (budget ${formatMs(cfg.budgetMs)})`);
    out.print(`  longest PING gap: ${formatMs(r.ping.longestGapMs)} (${r.ping.answered}/${r.ping.sent} answered, every 100 ms)`);
  }
  if (r.recovery) {
    out.print(
      `  after release:    ${r.recovery.answeredAfterMs === null ? c.red(`no answer within ${formatMs(cfg.giveUpMs)} after A was stopped`) : `the node answered again ${formatMs(r.recovery.answeredAfterMs)} after A was stopped`}`,
    );
  }
  if (r.role.expected) out.print(`  INFO after:       ${r.role.observed} ${r.role.ok ? c.green("✓") : c.red(`✗ expected ${r.role.expected}`)}`);
  if (r.fetchConnections.method !== "unchecked" || r.fetchConnections.open !== null) {
    out.print(`  fetch conns to A: ${r.fetchConnections.open ?? "?"} open (${r.fetchConnections.detail})`);
  }
  if (r.guard) out.print(`  kvr guard:        ${guardLine(r.guard)}`);
  if (r.restore) out.print(`  node topology:    ${r.restore.status === "failed" ? c.yellow(r.restore.detail) : r.restore.detail}`);
  // A single run's verdict is the drill's last line (verdictLine); --repeat gives each run its own.
  if (cfg.repeat > 1) {
    const v = r.verdict === "PASS" ? c.bold(c.green("PASS")) : c.bold(c.red("FAIL"));
    out.print(`  verdict:          ${v}${guarded(r)}${r.reasons.length ? ` — ${r.reasons.join("; ")}` : ""}`);
  }
}

/** " (with kvr guard: n socket(s) destroyed)" for a run with --guard, else "". */
function guarded(r: RunResult): string {
  return r.guard ? ` (with kvr guard: ${r.guard.actions.filter((a) => a.destroyed).length} socket(s) destroyed)` : "";
}

/** What kvr guard did in a run, in one line. */
export function guardLine(g: GuardReport): string {
  const done = g.actions.filter((a) => a.destroyed);
  if (g.actions.length === 0) return `destroyed nothing (read timeout ${formatMs(g.readTimeoutMs)})`;
  const each = g.actions.map((a) => `${a.local} → ${a.remote} at +${(a.atMs / 1000).toFixed(2)}s, idle ${formatMs(a.idleMs)}${a.destroyed ? "" : " (failed)"}`);
  const why = [...new Set(g.actions.map((a) => (a.why === "syncing" ? "node syncing" : "node not answering")))].join(", ");
  return `destroyed ${done.length} socket(s) of the node to its master (${why}): ${each.join("; ")}`;
}

/** The drill's last line: PASS, or FAIL with why (a single run's reasons; with --repeat, which runs failed). */
export function verdictLine(out: Output, runs: RunResult[], pass: boolean): string {
  const c = out.c;
  if (pass) return c.bold(c.green("PASS")) + (runs.length === 1 ? guarded(runs[0]) : "");
  const why =
    runs.length === 1
      ? runs[0].reasons.join("; ")
      : `${runs.filter((r) => r.verdict === "FAIL").length} of ${runs.length} runs failed (${runs
          .filter((r) => r.verdict === "FAIL")
          .map((r) => `run ${r.run}`)
          .join(", ")})`;
  return c.bold(c.red("FAIL")) + (why ? ` — ${why}` : "");
}

/** The human summary of --repeat. */
export function printStats(out: Output, s: LatencyStats, runs: RunResult[]): void {
  const pass = runs.filter((r) => r.verdict === "PASS").length;
  out.print(
    `SETNODES latency over ${s.n} run(s): min ${formatMs(s.min)}, median ${formatMs(s.median)}, p99 ${formatMs(s.p99)}, max ${formatMs(s.max)}` +
      (s.hung ? `, ${s.hung} hung` : "") +
      `; ${pass}/${runs.length} passed; longest PING gap ${formatMs(Math.max(...runs.map((r) => r.ping.longestGapMs)))}`,
  );
}

/** The --json result object. */
export function resultObject(cfg: DrillConfig, runs: RunResult[], verdict: "PASS" | "FAIL" | "ERROR", exitCode: number, error: string | null) {
  const last = runs[runs.length - 1] ?? null;
  return {
    command: "drill",
    verdict,
    exitCode,
    error,
    config: {
      cut: cfg.cut,
      cutAt: cfg.cutAt,
      switchTo: cfg.switchTo,
      newMaster: cfg.newMaster,
      budgetMs: cfg.budgetMs,
      giveUpMs: cfg.giveUpMs,
      replica: cfg.replica ? `${cfg.replica.host}:${cfg.replica.port}` : "kvr",
      // Whether a password is used, never the password.
      auth: cfg.auth !== undefined,
      mastersAuth: cfg.mastersAuth !== undefined,
      aPsync: cfg.aPsync,
      keep: cfg.keep,
      advertiseHost: cfg.advertiseHost,
      files: cfg.files,
      fileSize: cfg.fileSize,
      rateMBps: cfg.rateMBps,
      readTimeoutMs: cfg.readTimeoutMs,
      repeat: cfg.repeat,
      guard: cfg.guard,
    },
    latency: latencyStats(runs),
    longestPingGapMs: runs.length ? Math.max(...runs.map((r) => r.ping.longestGapMs)) : null,
    // The last run's details at the top level; every run in `runs`.
    phases: last?.phases ?? [],
    timings: last
      ? { setnodesMs: last.setnodes.ms, hung: last.setnodes.hung, longestPingGapMs: last.ping.longestGapMs, bytesAtCut: last.cut.bytesSent, recovery: last.recovery }
      : null,
    infoBefore: last?.infoBefore ?? null,
    infoAfter: last?.infoAfter ?? null,
    restore: last?.restore ?? null,
    reasons: runs.flatMap((r) => r.reasons.map((x) => (runs.length > 1 ? `run ${r.run}: ${x}` : x))),
    runs,
  };
}
