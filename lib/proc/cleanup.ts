/**
 * Everything a command (the drill, the lab) starts or creates registers its undo here; undo runs
 * in reverse order, once, on success, failure, Ctrl-C and SIGTERM. A failing step is logged and
 * the rest still run.
 */
export class Cleanup {
  private steps: Array<{ what: string; fn: () => Promise<void> | void }> = [];
  private running: Promise<void> | null = null;

  constructor(private readonly log: (msg: string) => void) {}

  /** Register an undo step; returns a function that runs it now (and unregisters it). */
  add(what: string, fn: () => Promise<void> | void): () => Promise<void> {
    const step = { what, fn };
    this.steps.push(step);
    return async () => {
      const i = this.steps.indexOf(step);
      if (i < 0) return;
      this.steps.splice(i, 1);
      await this.runStep(step);
    };
  }

  private async runStep(step: { what: string; fn: () => Promise<void> | void }): Promise<void> {
    try {
      await step.fn();
    } catch (e) {
      this.log(`cleanup: ${step.what} failed: ${(e as Error).message}`);
    }
  }

  /** Run every registered step, newest first. Concurrent calls share one run. */
  run(): Promise<void> {
    this.running ??= (async () => {
      while (this.steps.length > 0) await this.runStep(this.steps.pop()!);
      this.running = null;
    })();
    return this.running;
  }

  get size(): number {
    return this.steps.length;
  }
}
