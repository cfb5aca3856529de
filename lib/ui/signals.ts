/** Stopping a command that runs until it is told to: the first SIGINT or SIGTERM aborts a signal. */

/** A stop request: `signal` aborts at the first SIGINT or SIGTERM; `by()` names it. */
export interface StopSignals {
  readonly signal: AbortSignal;
  /** The signal that asked for the stop; null while none came. */
  by(): NodeJS.Signals | null;
  /** Remove the handlers (the command has ended). */
  dispose(): void;
}

/** Listen for SIGINT and SIGTERM: the first calls `onStop` with its name, then aborts `signal`; later ones are ignored. */
export function stopOnSignals(onStop: (sig: NodeJS.Signals) => void = () => {}): StopSignals {
  const ctl = new AbortController();
  let by: NodeJS.Signals | null = null;
  const stop = (sig: NodeJS.Signals) => {
    if (by) return;
    by = sig;
    onStop(sig);
    ctl.abort();
  };
  const onInt = () => stop("SIGINT");
  const onTerm = () => stop("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  return {
    signal: ctl.signal,
    by: () => by,
    dispose() {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
    },
  };
}
