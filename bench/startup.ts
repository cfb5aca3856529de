/**
 * startup: wall time of the compiled `kvr --version` and `kvr --help`, 30 runs each, against
 * Bun's own start in the same loop (alternating, so all see the same machine). Goal: the median
 * ratio of both ≤ 1.2 (the row shows the larger). User + system CPU of each is shown too.
 *
 * References: `bun -e ""` as the issue names it, `bun -e "0"`, and a compiled empty program
 * (`bun build --compile` of one console.log). `bun -e ""` prints Bun's help without starting
 * the JavaScript engine, so it undercuts any program; the ratio is taken against the compiled
 * empty program, the same kind of executable as dist/kvr.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runStandalone, summary, type BenchContext, type Row } from "./support/harness.ts";

export const NAME = "startup";

/** Wall ms of one run, and its user + system CPU ms. */
function run(cmd: string[]): { ms: number; cpu: number } {
  const t0 = performance.now();
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${r.exitCode}: ${r.stderr.toString().slice(0, 200)}`);
  return { ms, cpu: Number(r.resourceUsage.cpuTime.total) / 1000 };
}

export async function bench(ctx: BenchContext): Promise<Row[]> {
  const runs = 30;
  const src = join(ctx.tmp, "empty.ts");
  const empty = join(ctx.tmp, "empty");
  writeFileSync(src, 'console.log("0.0.0");\n');
  const b = Bun.spawnSync([process.execPath, "build", src, "--compile", "--minify", "--outfile", empty], { stdout: "pipe", stderr: "pipe" });
  if (b.exitCode !== 0) throw new Error(`could not compile the empty reference program: ${b.stderr.toString().slice(0, 300)}`);
  const cmds: Record<string, string[]> = {
    kvr: [ctx.bin, "--version"],
    kvrHelp: [ctx.bin, "--help"],
    compiledEmpty: [empty],
    bunE0: [process.execPath, "-e", "0"],
    bunEEmpty: [process.execPath, "-e", ""],
  };
  const t: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  // One warm-up each (page cache), not counted.
  for (const [k, c] of Object.entries(cmds)) {
    run(c);
    t[k] = [];
    cpu[k] = [];
  }
  for (let i = 0; i < runs; i++) {
    for (const [k, c] of Object.entries(cmds)) {
      const r = run(c);
      t[k].push(r.ms);
      cpu[k].push(r.cpu);
    }
  }
  const s = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, summary(v)]));
  const c = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, summary(v)]));
  const version = s.kvr.median / s.compiledEmpty.median;
  const help = s.kvrHelp.median / s.compiledEmpty.median;
  const ratio = Math.max(version, help);
  const f = (x: ReturnType<typeof summary>) => `${x.median} ms (${x.min}–${x.max})`;
  return [
    {
      name: NAME,
      figure: `kvr --version ${f(s.kvr)}, --help ${f(s.kvrHelp)}`,
      value: Math.max(s.kvr.median, s.kvrHelp.median),
      unit: "ms",
      reference: `compiled empty ${f(s.compiledEmpty)}; bun -e "0" ${f(s.bunE0)}; bun -e "" ${f(s.bunEEmpty)}`,
      ratio,
      goal: "≤ 1.2 × Bun's own start",
      met: ratio <= 1.2,
      note:
        `medians (min–max) of ${runs} alternating runs after one warm-up; ratio = the larger of --version (${version.toFixed(2)}) and --help (${help.toFixed(2)}) against the compiled empty program ` +
        `(bun -e "" only prints Bun's help: --version's ratio to it ${(s.kvr.median / s.bunEEmpty.median).toFixed(1)}, to bun -e "0" ${(s.kvr.median / s.bunE0.median).toFixed(1)}); ` +
        `user + system CPU, medians: --version ${c.kvr.median} ms, --help ${c.kvrHelp.median} ms, compiled empty ${c.compiledEmpty.median} ms`,
      details: { wallMs: s, cpuMs: c },
    },
  ];
}

if (import.meta.main) await runStandalone(NAME, bench);
