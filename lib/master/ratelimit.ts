/**
 * A token bucket shared by every fetch connection (like Kvrocks' max-replication-mb, but smooth
 * within a file). Callers reserve bytes in arrival order, so concurrent connections share the
 * rate fairly; each waits until its reservation is due.
 */
export interface RateLimiter {
  /** Bytes per second (0 = unlimited). */
  readonly rate: number;
  /** Wait until `n` more bytes may be sent. */
  take(n: number, signal?: AbortSignal): Promise<void>;
}

/** A limiter for `bytesPerSec` with a burst allowance of `burstMs` worth of bytes. */
export function createRateLimiter(bytesPerSec: number, burstMs = 50): RateLimiter {
  if (!(bytesPerSec > 0)) return { rate: 0, take: async () => {} };
  let due = 0; // time (ms) at which all reserved bytes have been "paid" for
  return {
    rate: bytesPerSec,
    async take(n) {
      const now = performance.now();
      due = Math.max(due, now - burstMs) + (n * 1000) / bytesPerSec;
      const wait = due - now - burstMs;
      if (wait > 0) await Bun.sleep(wait);
    },
  };
}

/** A good chunk size for a rate: about 1/32 s worth, between 4 KiB and 64 KiB. */
export function chunkFor(bytesPerSec: number, unlimited = 256 * 1024): number {
  if (!(bytesPerSec > 0)) return unlimited;
  return Math.max(4096, Math.min(64 * 1024, Math.floor(bytesPerSec / 32)));
}
