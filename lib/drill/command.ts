/**
 * kvr drill — a Kvrocks replication incident end to end with a verdict (--scenario: fetch-hang,
 * slow-replica; see scenarios/), --repeat times, everything it started removed on every path.
 * Exit 0 PASS, 1 FAIL, 2 usage, 4 the drill could not run.
 */
import type { Output } from "../ui/output.ts";
import { EXIT } from "../ui/output.ts";
import { stopOnSignals } from "../ui/signals.ts";
import { Cleanup } from "../proc/cleanup.ts";
import { SetupError } from "../proc/errors.ts";
import { DrillError } from "./errors.ts";
import { checkNetnsSupport } from "./netns.ts";
import { parseDrillOptions } from "./options.ts";
import { latencyStats, phaseLine, printRun, printStats, resultObject, verdictLine } from "./report.ts";
import { headerOf, runOnce, stopsRepeat, type RunResult } from "./scenarios/index.ts";

/** Run `kvr drill` with cac options; returns the exit code. */
export async function run(opts: Record<string, unknown>, out: Output): Promise<number> {
  const cfg = parseDrillOptions(opts);
  const cleanup = new Cleanup((m) => out.warn(m));
  const stop = stopOnSignals((sig) => out.warn(`${sig}: stopping the drill and removing everything it started`));

  const runs: RunResult[] = [];
  let error: string | null = null;
  try {
    out.print(out.c.bold("kvr drill") + " " + headerOf(cfg));
    if (cfg.scenario === "fetch-hang" && cfg.cut === "netns") await checkNetnsSupport();
    for (let i = 1; i <= cfg.repeat; i++) {
      if (cfg.repeat > 1) out.print(out.c.bold(`run ${i}/${cfg.repeat}`));
      try {
        const r = await runOnce({
          cfg,
          run: i,
          cleanup,
          signal: stop.signal,
          log: (m) => out.info(m),
          // --json keeps stdout for the one result object: phases are logged to stderr.
          onPhase: (p) => (out.json ? out.info(`${cfg.repeat > 1 ? `run ${i} ` : ""}${p.name}: ${p.detail}`) : out.print(phaseLine(out, p))),
        });
        runs.push(r);
        printRun(out, cfg, r);
        const why = stopsRepeat(r);
        if (why && i < cfg.repeat) {
          out.warn(`${why} in run ${i}: the remaining runs are skipped`);
          break;
        }
      } finally {
        await cleanup.run();
      }
      if (stop.signal.aborted) throw new DrillError("interrupted");
    }
  } catch (e) {
    if (stop.signal.aborted) error = `interrupted by ${stop.by()}; everything the drill started was stopped`;
    else if (e instanceof SetupError) error = e.message;
    // Anything unexpected is still the drill's own failure, never the replica's: exit 4.
    else error = `unexpected error: ${(e as Error)?.message ?? String(e)}`;
  } finally {
    await cleanup.run();
    stop.dispose();
  }

  if (error !== null) {
    out.error(`the drill could not run: ${error}`);
    out.result(resultObject(cfg, runs, "ERROR", EXIT.DRILL_ERROR, error));
    return EXIT.DRILL_ERROR;
  }
  const pass = runs.length === cfg.repeat && runs.every((r) => r.verdict === "PASS");
  const stats = latencyStats(runs);
  if (stats && cfg.repeat > 1) printStats(out, stats, runs);
  const code = pass ? EXIT.OK : EXIT.FAIL;
  out.print(verdictLine(out, runs, pass));
  out.result(resultObject(cfg, runs, pass ? "PASS" : "FAIL", code, null));
  return code;
}
