/**
 * The benchmark suite: runs every benchmark (or those named on the command line), prints a
 * markdown table (name, figure, reference measured in the same run, ratio, goal, met?) and
 * writes bench/results.json. Benchmarks never fail: one that cannot complete becomes a row
 * saying why. Children are killed and temp dirs removed on every path.
 *
 *   npm run bench                      # builds dist/kvr first
 *   bun bench/run.ts [name...]         # KVR_BIN=<binary>, KVR_BENCH_SCALE=<factor, default 1>
 */
import { renameSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";
import { join } from "node:path";
import {
  benchScale,
  errorRow,
  installCleanup,
  killAll,
  kvrBin,
  makeTempDir,
  markdownTable,
  removeTempDir,
  removeTempDirs,
  type Bench,
  type Row,
} from "./support/harness.ts";
import * as startup from "./startup.ts";
import * as socketApi from "./socket-api.ts";
import * as setnodesFanout from "./setnodes-fanout.ts";
import * as stopLatency from "./stop-latency.ts";
import * as deadMaster from "./dead-master-detection.ts";
import * as fullsync from "./fullsync-throughput.ts";
import * as memoryFlat from "./memory-flat.ts";
import * as masterFanout from "./master-fanout.ts";
import * as doctorFanout from "./doctor-fanout.ts";
import * as guard from "./guard.ts";

/** In run order (the table, then the socket API choice, then kvr guard). */
const ALL: Array<{ NAME: string; bench: Bench; goal: string }> = [
  { ...fullsync, goal: "≥ 1.0 × the reference replica" },
  { ...stopLatency, goal: "p99 < 50 ms" },
  { ...deadMaster, goal: "p99 ≤ deadline + 50 ms, never before it" },
  { ...memoryFlat, goal: "ratio ≤ 1.2 and < 150 MB" },
  { ...masterFanout, goal: "aggregate ≥ 0.8 × alone; slowest ≥ 0.5 × mean" },
  { ...setnodesFanout, goal: "wall ≤ 1.3 × deadline, all 200 reported" },
  { ...doctorFanout, goal: "wall ≤ 1.3 × deadline, peak RSS < 100 MB" },
  { ...startup, goal: "≤ 1.2 × Bun's own start" },
  { ...socketApi, goal: "Conn ≥ 0.9 × best raw API" },
  { ...guard, goal: "CPU < 2% of one core watching 20 nodes; destroy p99 ≤ interval + 100 ms" },
];

installCleanup();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !ALL.some((b) => b.NAME === w));
if (unknown.length) {
  process.stderr.write(`bench: unknown benchmark ${unknown.join(", ")} (known: ${ALL.map((b) => b.NAME).join(", ")})\n`);
  process.exit(2);
}
const selected = wanted.length ? ALL.filter((b) => wanted.includes(b.NAME)) : ALL;
const bin = kvrBin();
const scale = benchScale();
if (!(await Bun.file(bin).exists())) {
  process.stderr.write(`bench: no kvr binary at ${bin}: run 'npm run bench' (builds dist/kvr) or set KVR_BIN\n`);
  process.exit(2);
}
process.stderr.write(`bench: ${bin}, scale ${scale}, ${availableParallelism()} CPUs\n`);

const rows: Row[] = [];
const timings: Record<string, number> = {};
const t0 = performance.now();
for (const b of selected) {
  const tb = performance.now();
  const tmp = makeTempDir(`kvr-bench-${b.NAME}-`);
  process.stderr.write(`bench: ${b.NAME} ...\n`);
  try {
    rows.push(...(await b.bench({ bin, scale, tmp, log: (m) => process.stderr.write(`  [${b.NAME}] ${m}\n`) })));
  } catch (e) {
    process.stderr.write(`  [${b.NAME}] did not complete: ${(e as Error)?.stack ?? e}\n`);
    rows.push(errorRow(b.NAME, b.goal, e));
  } finally {
    await killAll();
    removeTempDir(tmp);
  }
  timings[b.NAME] = Math.round(performance.now() - tb);
  process.stderr.write(`bench: ${b.NAME} done in ${(timings[b.NAME] / 1000).toFixed(1)} s\n`);
}
removeTempDirs();
const totalMs = Math.round(performance.now() - t0);

const table = markdownTable(rows);
console.log(table);
console.log(`\n${rows.filter((r) => r.met === true).length} of ${rows.length} goals met; ${(totalMs / 1000).toFixed(0)} s in all (scale ${scale}).`);

const results = {
  date: new Date().toISOString(),
  bun: Bun.version,
  binary: process.env.KVR_BIN ? "KVR_BIN (a private build of this tree)" : "dist/kvr",
  scale,
  machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? "?", memoryMB: Math.round(totalmem() / 1e6) },
  totalMs,
  timingsMs: timings,
  rows,
  table,
};
// A partial run (named benchmarks) does not replace the full results.
if (wanted.length === 0) {
  const out = join(import.meta.dir, "results.json");
  writeFileSync(out + ".tmp", JSON.stringify(results, null, 2) + "\n");
  renameSync(out + ".tmp", out);
  process.stderr.write(`bench: wrote ${out}\n`);
} else process.stderr.write("bench: partial run: bench/results.json left as it was\n");
