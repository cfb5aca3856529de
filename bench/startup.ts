/**
 * startup: wall time of the compiled `kvr --version`, 30 runs, against Bun's own start in the
 * same loop (alternating, so all see the same machine). Goal: median ratio ≤ 1.2.
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

function wall(cmd: string[]): number {
  const t0 = performance.now();
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${r.exitCode}: ${r.stderr.toString().slice(0, 200)}`);
  return ms;
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
    compiledEmpty: [empty],
    bunE0: [process.execPath, "-e", "0"],
    bunEEmpty: [process.execPath, "-e", ""],
  };
  const t: Record<string, number[]> = {};
  // One warm-up each (page cache), not counted.
  for (const [k, c] of Object.entries(cmds)) {
    wall(c);
    t[k] = [];
  }
  for (let i = 0; i < runs; i++) for (const [k, c] of Object.entries(cmds)) t[k].push(wall(c));
  const s = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, summary(v)]));
  const ratio = s.kvr.median / s.compiledEmpty.median;
  const f = (x: ReturnType<typeof summary>) => `${x.median} ms (${x.min}–${x.max})`;
  return [
    {
      name: NAME,
      figure: `kvr --version ${f(s.kvr)}`,
      value: s.kvr.median,
      unit: "ms",
      reference: `compiled empty ${f(s.compiledEmpty)}; bun -e "0" ${f(s.bunE0)}; bun -e "" ${f(s.bunEEmpty)}`,
      ratio,
      goal: "≤ 1.2 × Bun's own start",
      met: ratio <= 1.2,
      note: `medians (min–max) of ${runs} alternating runs after one warm-up; ratio against the compiled empty program (bun -e "" only prints Bun's help: ratio to it ${(s.kvr.median / s.bunEEmpty.median).toFixed(1)}, to bun -e "0" ${(s.kvr.median / s.bunE0.median).toFixed(1)})`,
      details: s,
    },
  ];
}

if (import.meta.main) await runStandalone(NAME, bench);
