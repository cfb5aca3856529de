/**
 * The drill's phases: each run is a sequence of named, timed phases, printed as they end. A
 * scenario composes phase functions (masters.ts, target.ts, restore.ts and its own) with a
 * Phases recorder.
 */
import type { Cleanup } from "../proc/cleanup.ts";
import { DrillError } from "./errors.ts";
import type { DrillConfig } from "./options.ts";
import { abortable } from "../ui/time.ts";

export interface Phase {
  name: string;
  /** Start, ms since the run began. */
  atMs: number;
  ms: number;
  detail: string;
}

export interface RunContext {
  cfg: DrillConfig;
  run: number;
  cleanup: Cleanup;
  signal: AbortSignal;
  log: (msg: string) => void;
  /** Called as each phase ends (live human/--json progress). */
  onPhase: (p: Phase) => void;
}

/** Records one run's phases. */
export class Phases {
  readonly list: Phase[] = [];
  private readonly t0 = performance.now();

  constructor(private readonly ctx: RunContext) {}

  /**
   * Run one phase; an interrupt (the run's signal) ends it at once with DrillError("interrupted").
   * `name` may depend on the result (e.g. the topology version sent).
   */
  run<T>(name: string | ((v: T) => string), fn: () => Promise<T>, detail: (v: T) => string): Promise<T> {
    const { signal } = this.ctx;
    return this.timed(name, () =>
      abortable(fn(), signal).catch((e) => {
        if (signal.aborted) throw new DrillError("interrupted");
        throw e;
      }),
      detail,
    );
  }

  /** ms from the run's start to `at` (a performance.now() time). */
  since(at: number): number {
    return Math.round(at - this.t0);
  }

  /** Run a phase that an interrupt must not cut short (it has deadlines of its own). */
  final<T>(name: string, fn: () => Promise<T>, detail: (v: T) => string): Promise<T> {
    return this.timed(name, fn, detail);
  }

  private async timed<T>(name: string | ((v: T) => string), fn: () => Promise<T>, detail: (v: T) => string): Promise<T> {
    const at = performance.now();
    const v = await fn();
    const p: Phase = {
      name: typeof name === "string" ? name : name(v),
      atMs: Math.round(at - this.t0),
      ms: Math.round(performance.now() - at),
      detail: detail(v),
    };
    this.list.push(p);
    this.ctx.onPhase(p);
    return v;
  }
}
