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

/** What a scenario gives the command loop and the report. */
export interface Scenario<R extends RunResult> {
  /** The one line printed before the first run. */
  header(cfg: DrillConfig): string;
  /** Run the scenario once. Throws DrillError when the drill itself cannot run. */
  run(ctx: RunContext): Promise<R>;
  /** The human summary of one run (its phases were printed live). */
  print(out: Output, cfg: DrillConfig, r: R): void;
  /** The run's headline latency for --repeat statistics; null = not reached. */
  latency(r: R): { ms: number; hung: boolean } | null;
  /** Why the remaining --repeat runs are skipped after this one, or null. */
  stopsRepeat(r: R): string | null;
  /** The last run's key times, the --json result's `timings`. */
  timings(r: R): Record<string, unknown>;
  /** What the PASS line adds for a single run ("" for nothing). */
  passNote(r: R): string;
}

const SCENARIOS: { [K in RunResult["scenario"]]: Scenario<Extract<RunResult, { scenario: K }>> } = {
  "fetch-hang": fetchHangScenario,
  "slow-replica": slowReplicaScenario,
};

/** The scenario of a configuration or of a run's result (typed loosely: `r` matches it by construction). */
function of(which: { scenario: RunResult["scenario"] }): Scenario<RunResult> {
  return SCENARIOS[which.scenario] as Scenario<RunResult>;
}

/** The one line printed before the first run. */
export const headerOf = (cfg: DrillConfig): string => of(cfg).header(cfg);
/** Run the configured scenario once. Throws DrillError when the drill itself cannot run. */
export const runOnce = (ctx: RunContext): Promise<RunResult> => of(ctx.cfg).run(ctx);
/** The human summary of one run (its phases were printed live). */
export const printScenarioRun = (out: Output, cfg: DrillConfig, r: RunResult): void => of(r).print(out, cfg, r);
/** The run's headline latency for --repeat statistics (the SETNODES reply; the drop); null = not reached. */
export const latencyOf = (r: RunResult) => of(r).latency(r);
/** Why the remaining --repeat runs are skipped after this one (a hung node), or null. */
export const stopsRepeat = (r: RunResult): string | null => of(r).stopsRepeat(r);
/** The last run's key times, the --json result's `timings`. */
export const timingsOf = (r: RunResult): Record<string, unknown> => of(r).timings(r);
/** What the PASS line adds for a single run ("" for nothing). */
export const passNoteOf = (r: RunResult): string => of(r).passNote(r);
