/**
 * memory-flat: peak RSS (VmHWM from /proc, sampled while it runs: the exit status' maxrss counts
 * this process's own RSS, see watchPeakRss) of `kvr replica --once` syncing 256 MiB against syncing 4 GiB
 * held in ONE 4 GiB file. Goal: ratio ≤ 1.2 and the big run < 150 MB.
 * KVR_BENCH_SCALE < 1 shrinks the big run (said in the output); the small run stays 256 MiB.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { GiB, MiB, mbps, runStandalone, summary, type BenchContext, type Row } from "./support/harness.ts";
import { replicaOnce, startMaster } from "./support/kvr.ts";

export const NAME = "memory-flat";

async function peakRss(ctx: BenchContext, spec: string, runs: number, label: string): Promise<{ rss: number[]; rate: number[] }> {
  const m = await startMaster(ctx.bin, ["--generate", spec]);
  const rss: number[] = [];
  const rate: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const dir = join(ctx.tmp, `${label}${i}`);
      mkdirSync(dir);
      try {
        const r = await replicaOnce(ctx.bin, dir, m.port);
        if (r.maxRss === null) throw new Error("no resource usage for the replica process");
        rss.push(r.maxRss);
        rate.push((r.bytes / r.syncMs) * 1000);
        ctx.log(`${label} ${spec} run ${i + 1}: peak RSS ${(r.maxRss / 1e6).toFixed(1)} MB, ${mbps(rate[i])}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await m.stop();
  }
  return { rss, rate };
}

export async function bench(ctx: BenchContext): Promise<Row[]> {
  const runs = Number(process.env.KVR_BENCH_MEMORY_RUNS ?? 3);
  const bigBytes = Math.max(512 * MiB, Math.round((4 * GiB * Math.min(1, ctx.scale)) / MiB) * MiB);
  const bigSpec = `1x${bigBytes / MiB}MiB`;
  const small = await peakRss(ctx, "16x16MiB", runs, "small");
  const big = await peakRss(ctx, bigSpec, runs, "big");
  const s = summary(small.rss.map((b) => b / 1e6));
  const b = summary(big.rss.map((x) => x / 1e6));
  const ratio = b.median / s.median;
  const scaled = bigBytes < 4 * GiB;
  return [
    {
      name: NAME,
      figure: `4 GiB run: ${b.median} MB (min ${b.min}, max ${b.max})`.replace("4 GiB", scaled ? `${bigBytes / MiB} MiB` : "4 GiB"),
      value: b.median,
      unit: "MB",
      reference: `256 MiB run: ${s.median} MB (min ${s.min}, max ${s.max})`,
      ratio,
      goal: "ratio ≤ 1.2 and < 150 MB",
      met: ratio <= 1.2 && b.max < 150,
      note:
        `peak RSS of the replica process (MB = 10^6 bytes), median of ${runs} runs each; small = --generate 16x16MiB, big = --generate ${bigSpec} (one file)` +
        (scaled ? `; SCALED DOWN by KVR_BENCH_SCALE=${ctx.scale}: the big run is ${bigBytes / MiB} MiB, not 4 GiB` : ""),
      details: { smallMB: s, bigMB: b, smallMBps: small.rate.map((r) => Math.round(r / 1e6)), bigMBps: big.rate.map((r) => Math.round(r / 1e6)) },
    },
  ];
}

if (import.meta.main) await runStandalone(NAME, bench);
