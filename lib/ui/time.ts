/** Waiting: sleeps and waits that an AbortSignal ends at once, and retry backoff. */

/** Sleep `ms`; an abort of `signal` ends the sleep at once (resolves, never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return Bun.sleep(ms);
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal!.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Settle with `p`, or reject at once (Error "aborted") when `signal` aborts first. */
export function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error("aborted"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** Resolves once `signal` aborts (at once when it already has). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}

/**
 * Delay before retry number `failures` (1-based): `baseMs` doubling each time, capped at `capMs`,
 * then scaled by `jitter` (a factor in [0.5, 1] drawn from `random`; 1 = no jitter).
 */
export function backoffMs(baseMs: number, failures: number, opts: { capMs?: number; jitter?: boolean; random?: () => number } = {}): number {
  const exp = baseMs * 2 ** Math.max(0, Math.min(failures - 1, 30));
  const capped = Math.min(opts.capMs ?? 30_000, exp);
  if (!opts.jitter) return capped;
  return Math.round(capped * (0.5 + (opts.random ?? Math.random)() * 0.5));
}
