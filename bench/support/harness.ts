/**
 * Shared pieces of the benchmark suite: the result row every benchmark returns, the run
 * context (scale, binary, temp root), a registry of child processes and temp dirs that are
 * cleaned up on every path, and small statistics helpers.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const MiB = 1 << 20;
export const GiB = 1 << 30;

/** One line of the results table. */
export interface Row {
  name: string;
  /** The figure, human-readable (e.g. "402 MB/s", "p99 3.1 ms"). */
  figure: string;
  /** The figure as a number (in `unit`). */
  value: number | null;
  unit: string;
  /** The reference measured in the same run, human-readable. */
  reference: string;
  /** value / reference as the goal reads it (null when the goal is not a ratio). */
  ratio: number | null;
  goal: string;
  /** Whether the goal was met (null: not measurable in this run). */
  met: boolean | null;
  /** Scaling, caveats, anything a reader must know to trust the figure. */
  note?: string;
  /** Raw measurements (distributions, per-run figures). */
  details?: Record<string, unknown>;
}

export interface BenchContext {
  /** The kvr binary under test (KVR_BIN, else dist/kvr). */
  bin: string;
  /** Size multiplier (KVR_BENCH_SCALE, default 1 = the sizes). */
  scale: number;
  /** A fresh directory for this benchmark, removed after it. */
  tmp: string;
  log(msg: string): void;
}

export type Bench = (ctx: BenchContext) => Promise<Row[]>;

// ---- children and temp dirs: killed / removed on every path ----

const children = new Set<Bun.Subprocess>();
const tempDirs = new Set<string>();

/** Spawn a child that is killed at the end of the run, whatever happens. */
export function spawnTracked<T extends Bun.Subprocess>(make: () => T): T {
  const p = make();
  children.add(p);
  p.exited.finally(() => children.delete(p));
  return p;
}

/** Kill every child still running (SIGKILL) and wait for them. */
export async function killAll(): Promise<void> {
  const live = [...children];
  for (const p of live) {
    try {
      p.kill("SIGKILL");
    } catch {}
  }
  await Promise.race([Promise.all(live.map((p) => p.exited)), Bun.sleep(3000)]);
}

/** Synchronous variant for process exit handlers. */
export function killAllSync(): void {
  for (const p of children) {
    try {
      p.kill("SIGKILL");
    } catch {}
  }
}

/**
 * Peak RSS in bytes of a child, from /proc/<pid>/status (VmHWM) read every `everyMs` until it
 * exits; null when never read. Not the exit's ru_maxrss (Bun's resourceUsage().maxRSS): a child
 * spawned by this process reports at least this process's own RSS at the spawn, the high-water
 * mark surviving exec (a 5 MB C program showed 76 MB after a few benchmarks had run).
 */
export function watchPeakRss(proc: Bun.Subprocess, everyMs = 20): () => number | null {
  let peak: number | null = null;
  const timer = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, "latin1"));
      if (m && proc.exitCode === null && proc.signalCode === null) peak = Math.max(peak ?? 0, Number(m[1]) * 1024);
    } catch {
      // Gone between two reads.
    }
  }, everyMs);
  proc.exited.finally(() => clearInterval(timer));
  return () => peak;
}

/** A fresh temp dir, removed by removeTempDirs() or at exit. */
export function makeTempDir(prefix = "kvr-bench-"): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

/** Remove one temp dir now. */
export function removeTempDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
  tempDirs.delete(d);
}

/** Remove every temp dir made so far. */
export function removeTempDirs(): void {
  for (const d of [...tempDirs]) removeTempDir(d);
}

let hooked = false;
/** Kill children and remove temp dirs on exit and on SIGINT/SIGTERM/SIGHUP. */
export function installCleanup(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    killAllSync();
    removeTempDirs();
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}: killing children and removing temp dirs\n`);
      killAllSync();
      removeTempDirs();
      process.exit(130);
    });
  }
}

/** The kvr binary: KVR_BIN, else dist/kvr next to this checkout. */
export function kvrBin(): string {
  return process.env.KVR_BIN ?? resolve(import.meta.dir, "../../dist/kvr");
}

/** KVR_BENCH_SCALE (default 1). */
export function benchScale(): number {
  const s = Number(process.env.KVR_BENCH_SCALE ?? "1");
  return Number.isFinite(s) && s > 0 ? s : 1;
}

/** Run one benchmark standalone (`bun bench/<name>.ts`): prints its rows. */
export async function runStandalone(name: string, bench: Bench): Promise<void> {
  installCleanup();
  const tmp = makeTempDir(`kvr-bench-${name}-`);
  try {
    const rows = await bench({ bin: kvrBin(), scale: benchScale(), tmp, log: (m) => process.stderr.write(`[${name}] ${m}\n`) });
    console.log(markdownTable(rows));
    for (const r of rows) if (r.details) console.log(`\n${r.name}: ${JSON.stringify(r.details)}`);
  } finally {
    await killAll();
    removeTempDirs();
  }
}

// ---- statistics and formatting ----

/** Sorted copy. */
export function sorted(xs: number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** Nearest-rank percentile (p in 0..100) of a sample. */
export function percentile(xs: number[], p: number): number {
  const s = sorted(xs);
  if (s.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))];
}

export function median(xs: number[]): number {
  const s = sorted(xs);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** min / median / p99 / max of a sample, rounded to 0.1. */
export function summary(xs: number[]): { n: number; min: number; median: number; p99: number; max: number } {
  const r = (v: number) => Math.round(v * 10) / 10;
  const s = sorted(xs);
  return { n: s.length, min: r(s[0]), median: r(median(s)), p99: r(percentile(s, 99)), max: r(s[s.length - 1]) };
}

/** Bytes per second as "123 MB/s" (MB = 10^6). */
export function mbps(bytesPerSec: number): string {
  return `${(bytesPerSec / 1e6).toFixed(0)} MB/s`;
}

export function fmtRatio(r: number | null): string {
  return r === null || !Number.isFinite(r) ? "—" : r.toFixed(2);
}

/** The results as a markdown table. */
export function markdownTable(rows: Row[]): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const lines = ["| name | figure | reference (same run) | ratio | goal | met? |", "| --- | --- | --- | --- | --- | --- |"];
  for (const r of rows) {
    const met = r.met === null ? "n/a" : r.met ? "yes" : "**no**";
    lines.push(`| ${esc(r.name)} | ${esc(r.figure)} | ${esc(r.reference)} | ${fmtRatio(r.ratio)} | ${esc(r.goal)} | ${met} |`);
  }
  const notes = rows.filter((r) => r.note).map((r) => `- ${r.name}: ${r.note}`);
  return notes.length ? `${lines.join("\n")}\n\n${notes.join("\n")}` : lines.join("\n");
}

/** A row for a benchmark that could not run (benchmarks never fail the suite). */
export function errorRow(name: string, goal: string, e: unknown): Row {
  const msg = e instanceof Error ? e.message : String(e);
  return { name, figure: "error", value: null, unit: "", reference: "—", ratio: null, goal, met: null, note: `did not complete: ${msg.split("\n")[0].slice(0, 300)}` };
}
