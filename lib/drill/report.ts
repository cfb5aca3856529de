/** The drill's report: latency statistics, the human text, and the --json result object, for every scenario. */
import type { Output } from "../ui/output.ts";
import { formatMs } from "../ui/units.ts";
import type { DrillConfig } from "./options.ts";
import type { Phase } from "./phases.ts";
import { latencyOf, passNoteOf, printScenarioRun, timingsOf, type RunResult } from "./scenarios/index.ts";

export interface LatencyStats {
  /** What was timed: the SETNODES reply (fetch-hang) or the stuck replica's drop (slow-replica). */
  of: "setnodes" | "drop";
  n: number;
  min: number;
  median: number;
  p99: number;
  max: number;
  /** Runs that hung (SETNODES with no reply, a connection still held): their latency counts as the --give-up time. */
  hung: number;
}

/** Nearest-rank percentile of sorted values (p in 0..100). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1];
}

/** min / median / p99 / max of the runs' latencies (those that reached the timed step). */
export function latencyStats(runs: RunResult[]): LatencyStats | null {
  const reached = runs.map(latencyOf).filter((x) => x !== null);
  if (reached.length === 0) return null;
  const v = reached.map((x) => x.ms).sort((a, b) => a - b);
  return {
    of: runs[0].scenario === "fetch-hang" ? "setnodes" : "drop",
    n: v.length,
    min: v[0],
    median: percentile(v, 50),
    p99: percentile(v, 99),
    max: v[v.length - 1],
    hung: reached.filter((x) => x.hung).length,
  };
}

/** A phase as one human line. */
export function phaseLine(out: Output, p: Phase): string {
  const at = `+${(p.atMs / 1000).toFixed(3)}s`.padStart(9);
  return `${out.c.dim(at)}  ${p.name.padEnd(14)} ${p.detail} ${out.c.dim(`(${formatMs(p.ms)})`)}`;
}

/** The human summary of one run (phases were printed live); with --repeat, the run's own verdict. */
export function printRun(out: Output, cfg: DrillConfig, r: RunResult): void {
  printScenarioRun(out, cfg, r);
  // A single run's verdict is the drill's last line (verdictLine); --repeat gives each run its own.
  if (cfg.repeat > 1) {
    const c = out.c;
    const v = r.verdict === "PASS" ? c.bold(c.green("PASS")) : c.bold(c.red("FAIL"));
    out.print(`  verdict:          ${v}${passNoteOf(r)}${r.reasons.length ? ` — ${r.reasons.join("; ")}` : ""}`);
  }
}

/** The drill's last line: PASS, or FAIL with why (a single run's reasons; with --repeat, which runs failed). */
export function verdictLine(out: Output, runs: RunResult[], pass: boolean): string {
  const c = out.c;
  if (pass) return c.bold(c.green("PASS")) + (runs.length === 1 ? passNoteOf(runs[0]) : "");
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
  const what = s.of === "setnodes" ? "SETNODES latency" : "drop of the stuck replica (after its window closed)";
  out.print(
    `${what} over ${s.n} run(s): min ${formatMs(s.min)}, median ${formatMs(s.median)}, p99 ${formatMs(s.p99)}, max ${formatMs(s.max)}` +
      (s.hung ? `, ${s.hung} ${s.of === "setnodes" ? "hung" : "held"}` : "") +
      `; ${pass}/${runs.length} passed; longest PING gap ${formatMs(Math.max(...runs.map((r) => r.ping.longestGapMs)))}`,
  );
}

/** The --json result object. */
export function resultObject(cfg: DrillConfig, runs: RunResult[], verdict: "PASS" | "FAIL" | "ERROR", exitCode: number, error: string | null) {
  const last = runs[runs.length - 1] ?? null;
  const common = {
    scenario: cfg.scenario,
    budgetMs: cfg.budgetMs,
    giveUpMs: cfg.giveUpMs,
    // Whether a password is used, never the password.
    auth: cfg.auth !== undefined,
    repeat: cfg.repeat,
  };
  const config =
    cfg.scenario === "fetch-hang"
      ? {
          ...common,
          cut: cfg.cut,
          cutAt: cfg.cutAt,
          switchTo: cfg.switchTo,
          newMaster: cfg.newMaster,
          replica: cfg.replica ? `${cfg.replica.host}:${cfg.replica.port}` : "kvr",
          mastersAuth: cfg.mastersAuth !== undefined,
          aPsync: cfg.aPsync,
          keep: cfg.keep,
          advertiseHost: cfg.advertiseHost,
          files: cfg.files,
          fileSize: cfg.fileSize,
          rateMBps: cfg.rateMBps,
          readTimeoutMs: cfg.readTimeoutMs,
          guard: cfg.guard,
          recover: cfg.recover,
          recoverTimeoutMs: cfg.recoverTimeoutMs,
        }
      : {
          ...common,
          master: cfg.master ? `${cfg.master.host}:${cfg.master.port}` : "kvr",
          sendTimeoutMs: cfg.sendTimeoutMs,
          writeRate: cfg.writeRate,
        };
  return {
    command: "drill",
    verdict,
    exitCode,
    error,
    config,
    latency: latencyStats(runs),
    longestPingGapMs: runs.length ? Math.max(...runs.map((r) => r.ping.longestGapMs)) : null,
    // The last run's details at the top level; every run in `runs`.
    phases: last?.phases ?? [],
    timings: last ? timingsOf(last) : null,
    infoBefore: last?.infoBefore ?? null,
    infoAfter: last?.infoAfter ?? null,
    restore: last?.scenario === "fetch-hang" ? last.restore : null,
    reasons: runs.flatMap((r) => r.reasons.map((x) => (runs.length > 1 ? `run ${r.run}: ${x}` : x))),
    runs,
  };
}
