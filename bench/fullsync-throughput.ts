/**
 * fullsync-throughput: `kvr replica --once` from `kvr master --dir` (1 GiB as 64 × 16 MiB by
 * default, 127.0.0.1) against a reference replica written outside Bun (support/refreplica.c,
 * compiled at bench time; Python's stdlib version when no C compiler is found) that does the same
 * work on the same master and bytes: `_fetch_meta`, 4 parallel `_fetch_file` workers, recv into a
 * reused buffer, write, fsync, rename, CURRENT last after a directory fsync — and nothing else.
 * Goal: kvr's sync time ≤ the reference's (ratio = reference ms / kvr ms ≥ 1.0), the median of
 * the per-round ratios over 5 rounds that alternate which of the two goes first.
 * Also measured, as context: a plain fsync'd copy of the files (the disk limit), the CPU time
 * (user + system) of each replica process, and the master's CPU per GiB served to each.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { GiB, MiB, mbps, median, removeTempDir, runStandalone, type BenchContext, type Row } from "./support/harness.ts";
import { materialize, plainCopy } from "./support/data.ts";
import { replicaOnce, startMaster } from "./support/kvr.ts";
import { prepareReference, runReference } from "./support/reference.ts";

export const NAME = "fullsync-throughput";
const GOAL = "≥ 1.0 × the reference replica";

interface Sync {
  ms: number;
  /** Replica process CPU, ms. */
  cpuMs: number;
  /** Master CPU spent during this sync, ms. */
  masterCpuMs: number;
  rss: number | null;
}

export async function bench(ctx: BenchContext): Promise<Row[]> {
  // The scale changes the number of 16 MiB files (64 at scale 1 = 1 GiB).
  const spec = `${Math.max(4, Math.round(64 * ctx.scale))}x16MiB`;
  const rounds = Number(process.env.KVR_BENCH_ROUNDS ?? 5);
  const ref = prepareReference(ctx.tmp);
  const src = join(ctx.tmp, "src");
  mkdirSync(src);
  ctx.log(`writing the source checkpoint ${spec}; reference replica: ${ref.label}`);
  const { bytes, files } = materialize(spec, src);
  const master = await startMaster(ctx.bin, ["--dir", src, "--seq", "100"]);
  const kvr: Sync[] = [];
  const refs: Sync[] = [];
  const copy: number[] = [];
  const measured = async (run: () => Promise<Omit<Sync, "masterCpuMs">>): Promise<Sync> => {
    const m0 = master.cpuMs();
    const r = await run();
    return { ...r, masterCpuMs: master.cpuMs() - m0 };
  };
  try {
    for (let i = 0; i < rounds; i++) {
      const dst = join(ctx.tmp, `copy${i}`);
      mkdirSync(dst);
      copy.push(plainCopy(src, dst));
      rmSync(dst, { recursive: true, force: true });
      const one = async (who: "kvr" | "ref") => {
        const dir = join(ctx.tmp, `${who}${i}`);
        mkdirSync(dir);
        try {
          if (who === "ref") {
            const s = await measured(async () => {
              const r = await runReference(ref, master.port, dir);
              if (r.bytes !== bytes) throw new Error(`reference replica synced ${r.bytes} of ${bytes} bytes`);
              return { ms: r.ms, cpuMs: r.cpuMs, rss: r.maxRss };
            });
            refs.push(s);
          } else {
            const s = await measured(async () => {
              const r = await replicaOnce(ctx.bin, dir, master.port);
              if (r.bytes !== bytes) throw new Error(`replica synced ${r.bytes} of ${bytes} bytes`);
              return { ms: r.syncMs, cpuMs: r.cpuMs, rss: r.maxRss };
            });
            kvr.push(s);
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      };
      // Alternate who goes first, so drift on a shared machine favours neither.
      for (const who of i % 2 === 0 ? (["ref", "kvr"] as const) : (["kvr", "ref"] as const)) await one(who);
      ctx.log(`round ${i + 1}: copy ${mbps((bytes / copy[i]) * 1000)}, reference ${mbps((bytes / refs[i].ms) * 1000)} (CPU ${refs[i].cpuMs.toFixed(0)} ms), kvr ${mbps((bytes / kvr[i].ms) * 1000)} (CPU ${kvr[i].cpuMs.toFixed(0)} ms)`);
    }
  } finally {
    await master.stop();
    removeTempDir(ctx.tmp);
  }
  const rate = (ms: number) => (bytes / ms) * 1000;
  const perGiB = (ms: number) => (ms / 1000) * (GiB / bytes);
  const kvrRate = rate(median(kvr.map((k) => k.ms)));
  const refRate = rate(median(refs.map((r) => r.ms)));
  const disk = rate(median(copy));
  const ratios = kvr.map((k, i) => refs[i].ms / k.ms);
  const ratio = median(ratios);
  const cpu = (xs: Sync[]) => perGiB(median(xs.map((x) => x.cpuMs)));
  const masterCpu = (xs: Sync[]) => perGiB(median(xs.map((x) => x.masterCpuMs)));
  return [
    {
      name: NAME,
      figure: `${mbps(kvrRate)} (CPU ${cpu(kvr).toFixed(2)} s/GiB)`,
      value: kvrRate / 1e6,
      unit: "MB/s",
      reference: `${ref.label} ${mbps(refRate)} (CPU ${cpu(refs).toFixed(2)} s/GiB); disk ${mbps(disk)}`,
      ratio,
      goal: GOAL,
      met: ratio >= 1.0,
      note:
        `${files} files, ${(bytes / MiB).toFixed(0)} MiB (--generate ${spec} written to disk, served by one kvr master --dir), ${rounds} rounds alternating which replica goes first; ` +
        `ratio = median of per-round reference ms / kvr ms (min ${Math.min(...ratios).toFixed(2)}, max ${Math.max(...ratios).toFixed(2)}); both figures are the replica's own sync time (first connect → last fsync); ` +
        `CPU = user + system of the replica process; kvr master CPU per GiB served: ${masterCpu(kvr).toFixed(2)} s to kvr, ${masterCpu(refs).toFixed(2)} s to the reference; disk = plain fsync'd copy of the same files`,
      details: {
        bytes,
        reference: ref.label,
        ratios: ratios.map((r) => Math.round(r * 100) / 100),
        kvrSyncMs: kvr.map((k) => Math.round(k.ms)),
        referenceSyncMs: refs.map((r) => Math.round(r.ms)),
        kvrCpuMs: kvr.map((k) => Math.round(k.cpuMs)),
        referenceCpuMs: refs.map((r) => Math.round(r.cpuMs)),
        masterCpuMsServingKvr: kvr.map((k) => Math.round(k.masterCpuMs)),
        masterCpuMsServingReference: refs.map((r) => Math.round(r.masterCpuMs)),
        replicaPeakRssMB: kvr.map((k) => (k.rss === null ? null : Math.round(k.rss / 1e6))),
        referencePeakRssMB: refs.map((r) => (r.rss === null ? null : Math.round(r.rss / 1e6))),
        copyMs: copy.map(Math.round),
        kvrMBps: kvr.map((k) => Math.round(rate(k.ms) / 1e6)),
        referenceMBps: refs.map((r) => Math.round(rate(r.ms) / 1e6)),
        diskMBps: copy.map((m) => Math.round(rate(m) / 1e6)),
      },
    },
  ];
}

if (import.meta.main) await runStandalone(NAME, bench);
