/**
 * master-fanout: 16 replicas full-syncing 256 MiB each (16 × 16 MiB, served with --dir) from
 * one master at once, against one replica alone from the same master in the same run.
 * Goal: aggregate ≥ 0.8 × alone, and the slowest replica ≥ 0.5 × the mean replica.
 * Sync windows are measured on our clock from each replica's `meta` event to its `done` event.
 * Also measured: the disk limit for the fan-out's volume (16 plain fsync'd copies of the source,
 * one after the other) and the master's CPU time (per GiB served during the fan-out, from /proc),
 * to tell a disk bound from a master bound.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { GiB, MiB, mbps, median, runStandalone, type BenchContext, type Row } from "./support/harness.ts";
import { materialize, plainCopy } from "./support/data.ts";
import { spawnKvr, startMaster, type Child } from "./support/kvr.ts";

export const NAME = "master-fanout";

interface Sync {
  bytes: number;
  start: number;
  end: number;
}

async function syncAll(ctx: BenchContext, port: number, n: number, tag: string): Promise<Sync[]> {
  const dirs: string[] = [];
  const kids: Child[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const dir = join(ctx.tmp, `${tag}-${i}`);
      mkdirSync(dir);
      dirs.push(dir);
      kids.push(spawnKvr(ctx.bin, ["replica", "--port", "0", "--log-level", "warn", "--dir", dir, "--master", `127.0.0.1:${port}`, "--once"]));
    }
    const timer = setTimeout(() => kids.forEach((k) => k.proc.kill("SIGKILL")), 600_000);
    const codes = await Promise.all(kids.map((k) => k.exited));
    clearTimeout(timer);
    await Promise.all(kids.map((k) => k.drained));
    return kids.map((k, i) => {
      const meta = k.lines.find((l) => l.event === "meta");
      const done = k.lines.find((l) => l.event === "done");
      if (codes[i] !== 0 || !meta || !done) throw new Error(`replica ${i} exited ${codes[i]} without a completed sync: ${k.stderr().slice(-300)}`);
      return { bytes: Number(done.bytes), start: meta.at, end: done.at };
    });
  } finally {
    for (const k of kids) await k.stop("SIGKILL", 100);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

export async function bench(ctx: BenchContext): Promise<Row[]> {
  const n = 16;
  const files = Math.max(2, Math.round(16 * Math.min(1, ctx.scale)));
  const src = join(ctx.tmp, "src");
  mkdirSync(src);
  const { bytes } = materialize(`${files}x16MiB`, src);
  const m = await startMaster(ctx.bin, ["--dir", src, "--seq", "100"]);
  const alone: number[] = [];
  let fan: Sync[];
  let masterCpuMs = 0;
  let fanCpuMs = 0;
  try {
    for (let i = 0; i < 3; i++) {
      const [s] = await syncAll(ctx, m.port, 1, `alone${i}`);
      alone.push((s.bytes / (s.end - s.start)) * 1000);
      ctx.log(`alone run ${i + 1}: ${mbps(alone[i])}`);
    }
    const c0 = m.cpuMs();
    fan = await syncAll(ctx, m.port, n, "fan");
    fanCpuMs = m.cpuMs() - c0;
  } finally {
    await m.stop();
    masterCpuMs = Number(m.child.proc.resourceUsage()?.cpuTime.total ?? 0) / 1000;
  }
  let copyMs = 0;
  for (let i = 0; i < n; i++) {
    const dst = join(ctx.tmp, `copy${i}`);
    mkdirSync(dst);
    copyMs += plainCopy(src, dst);
    rmSync(dst, { recursive: true, force: true });
  }
  const disk = ((bytes * n) / copyMs) * 1000;
  const aloneRate = median(alone);
  const window = Math.max(...fan.map((s) => s.end)) - Math.min(...fan.map((s) => s.start));
  const aggregate = (fan.reduce((a, s) => a + s.bytes, 0) / window) * 1000;
  const each = fan.map((s) => (s.bytes / (s.end - s.start)) * 1000);
  const mean = each.reduce((a, b) => a + b, 0) / each.length;
  const slowest = Math.min(...each);
  const ratio = aggregate / aloneRate;
  const served = fan.reduce((a, s) => a + s.bytes, 0);
  const cpuPerGiB = fanCpuMs / 1000 / (served / GiB);
  ctx.log(`16 at once: aggregate ${mbps(aggregate)}, per replica ${each.map((e) => Math.round(e / 1e6)).join(" ")}`);
  return [
    {
      name: NAME,
      figure: `aggregate ${mbps(aggregate)}; slowest ${mbps(slowest)} = ${(slowest / mean).toFixed(2)} × mean ${mbps(mean)}`,
      value: aggregate / 1e6,
      unit: "MB/s",
      reference: `one replica alone ${mbps(aloneRate)}; disk limit for ${n}× the bytes ${mbps(disk)}`,
      ratio,
      goal: "aggregate ≥ 0.8 × alone; slowest ≥ 0.5 × mean",
      met: ratio >= 0.8 && slowest >= 0.5 * mean,
      note: `${n} replicas × ${((bytes * 1) / MiB).toFixed(0)} MiB (${files}x16MiB + 3 small files, --dir), alone = median of 3 runs; aggregate = all bytes / (first meta → last done) = ${(aggregate / disk).toFixed(2)} × the disk limit; master CPU (user + system) ${cpuPerGiB.toFixed(2)} s per GiB served during the fan-out, ${(masterCpuMs / 1000).toFixed(1)} s over the whole benchmark`,
      details: { diskMBps: Math.round(disk / 1e6), masterCpuMs: Math.round(masterCpuMs), masterCpuSecPerGiBServed: Math.round(cpuPerGiB * 100) / 100, aloneMBps: alone.map((a) => Math.round(a / 1e6)), perReplicaMBps: each.map((e) => Math.round(e / 1e6)), windowMs: Math.round(window) },
    },
  ];
}

if (import.meta.main) await runStandalone(NAME, bench);
