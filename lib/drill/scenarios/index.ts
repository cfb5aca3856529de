/**
 * The drill's scenarios, each its own module over the shared phases (phases.ts, masters.ts,
 * target.ts, pinger.ts, …), picked with --scenario: fetch-hang (the replica side: a master cut mid
 * full sync, docs/protocol.md §5) and slow-replica (the master side: a replica that stops
 * reading, §8). Each gives the command loop and the report the same few things.
 */
import type { Output } from "../../ui/output.ts";
import type { DrillConfig } from "../options.ts";
import type { RunContext } from "../phases.ts";
import { fetchHangScenario, type FetchHangResult } from "./fetch-hang.ts";
import { slowReplicaScenario, type SlowReplicaResult } from "./slow-replica.ts";

export type { FetchHangResult, SlowReplicaResult };

/** One run's result, whichever the scenario (`scenario` tells them apart). */
export type RunResult = FetchHangResult | SlowReplicaResult;

/** The one line printed before the first run. */
export function headerOf(cfg: DrillConfig): string {
  return cfg.scenario === "fetch-hang" ? fetchHangScenario.header(cfg) : slowReplicaScenario.header(cfg);
}

/** Run the configured scenario once. Throws DrillError when the drill itself cannot run. */
export function runOnce(ctx: RunContext): Promise<RunResult> {
  return ctx.cfg.scenario === "fetch-hang" ? fetchHangScenario.run(ctx) : slowReplicaScenario.run(ctx);
}

/** The human summary of one run (its phases were printed live). */
export function printScenarioRun(out: Output, cfg: DrillConfig, r: RunResult): void {
  if (r.scenario === "fetch-hang") fetchHangScenario.print(out, cfg, r);
  else slowReplicaScenario.print(out, cfg, r);
}

/** The run's headline latency for --repeat statistics (the SETNODES reply; the drop); null = not reached. */
export function latencyOf(r: RunResult): { ms: number; hung: boolean } | null {
  return r.scenario === "fetch-hang" ? fetchHangScenario.latency(r) : slowReplicaScenario.latency(r);
}

/** Why the remaining --repeat runs are skipped after this one (a hung node), or null. */
export function stopsRepeat(r: RunResult): string | null {
  return r.scenario === "fetch-hang" ? fetchHangScenario.stopsRepeat(r) : slowReplicaScenario.stopsRepeat(r);
}

/** The last run's key times, the --json result's `timings`. */
export function timingsOf(r: RunResult): Record<string, unknown> {
  return r.scenario === "fetch-hang" ? fetchHangScenario.timings(r) : slowReplicaScenario.timings(r);
}

/** What the PASS line adds for a single run ("" for nothing). */
export function passNoteOf(r: RunResult): string {
  return r.scenario === "fetch-hang" ? fetchHangScenario.passNote(r) : slowReplicaScenario.passNote(r);
}
