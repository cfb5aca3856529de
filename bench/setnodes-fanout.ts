/**
 * setnodes-fanout: `kvr setnodes --all` to 200 targets on 127.0.0.1, 20 of which accept and read
 * but never reply, with a 1 s reply deadline. Goal: wall ≤ 1.3 × deadline and all 200 reported.
 * The targets are minimal RESP servers in this process (lib/net + lib/resp) replying +OK.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Server } from "../lib/net/index.ts";
import { OK } from "../lib/resp/index.ts";
import { runStandalone, summary, type BenchContext, type Row } from "./support/harness.ts";
import { spawnKvr } from "./support/kvr.ts";
import { respTarget } from "./support/targets.ts";

export const NAME = "setnodes-fanout";
const TARGETS = 200;
const SILENT = 20;
const DEADLINE_MS = 1000;

const nodeId = (i: number) => i.toString(16).padStart(40, "0");

export async function bench(ctx: BenchContext): Promise<Row[]> {
  const runs = Number(process.env.KVR_BENCH_SETNODES_RUNS ?? 5);
  const servers: Server[] = [];
  try {
    for (let i = 0; i < TARGETS; i++) servers.push(await respTarget(i % (TARGETS / SILENT) === TARGETS / SILENT - 1 ? null : () => OK));
    const lines = servers.map((s, i) =>
      i === 0 ? `${nodeId(1)} 127.0.0.1 ${s.port} master - 0-16383` : `${nodeId(i + 1)} 127.0.0.1 ${s.port} slave ${nodeId(1)}`,
    );
    const file = join(ctx.tmp, "nodes.txt");
    writeFileSync(file, lines.join("\n") + "\n");
    const walls: number[] = [];
    const reported: number[] = [];
    const timeouts: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      const child = spawnKvr(ctx.bin, [
        "setnodes",
        "--nodes-file",
        file,
        "--version",
        String(r + 1),
        "--all",
        "--timeout",
        `${DEADLINE_MS}ms`,
        "--connect-timeout",
        `${DEADLINE_MS}ms`,
      ]);
      const kill = setTimeout(() => child.proc.kill("SIGKILL"), 30_000);
      await child.exited;
      clearTimeout(kill);
      walls.push(performance.now() - t0);
      await child.drained;
      const targets = child.lines.filter((l) => l.event === "target");
      reported.push(targets.length);
      timeouts.push(targets.filter((t) => t.result === "timeout").length);
      ctx.log(`run ${r + 1}: wall ${walls[r].toFixed(0)} ms, ${targets.length} reported, ${timeouts[r]} timed out, exit ${child.proc.exitCode}`);
    }
    const w = summary(walls);
    const ratio = w.max / DEADLINE_MS;
    const allReported = reported.every((n) => n === TARGETS);
    return [
      {
        name: NAME,
        figure: `wall median ${w.median} ms, max ${w.max} ms; reported ${Math.min(...reported)}/${TARGETS}`,
        value: w.max,
        unit: "ms",
        reference: `deadline ${DEADLINE_MS} ms`,
        ratio,
        goal: "wall ≤ 1.3 × deadline, all 200 reported",
        met: ratio <= 1.3 && allReported,
        note: `${runs} runs (ratio from the slowest), ${SILENT} silent targets (accept, read, never reply), timeouts reported per run: ${timeouts.join(", ")}; wall = spawn → exit of the compiled binary`,
        details: { wallMs: w, reported, timeouts },
      },
    ];
  } finally {
    await Promise.all(servers.map((s) => s.close(20)));
  }
}

if (import.meta.main) await runStandalone(NAME, bench);
