/** Polling in tests: wait for a condition with a deadline instead of sleeping a fixed time. */

/** Call `fn` every `everyMs` until it returns a truthy value (returned); throws naming `what` after `ms`. */
export async function until<T>(fn: () => T | Promise<T>, ms = 10_000, what = "condition", everyMs = 20): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}
