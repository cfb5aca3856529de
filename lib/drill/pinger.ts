/**
 * PING the node under test every 100 ms on a connection of its own while SETNODES is pending: a
 * Kvrocks node runs SETNODES under an exclusive lock, so a hang freezes every command. The
 * longest gap is the longest time in the watched window with no PONG.
 */
import type { Conn } from "../net/index.ts";
import { call } from "../resp/index.ts";
import { abortable } from "../ui/time.ts";

export const PING_INTERVAL_MS = 100;

export interface PingStats {
  sent: number;
  answered: number;
  /** Longest time within the watched window without an answer, ms. */
  longestGapMs: number;
  /** Slowest single PING round trip, ms. */
  slowestMs: number;
}

export class Pinger {
  private readonly ctl = new AbortController();
  private readonly pongs: number[] = [];
  private sent = 0;
  private slowest = 0;
  private startedAt = 0;
  private stoppedAt: number | null = null;
  private loop: Promise<void> | null = null;
  private waiters = new Set<() => void>();
  private error: Error | null = null;

  constructor(private readonly conn: Conn) {}

  /** Start pinging now. */
  start(): void {
    this.startedAt = performance.now();
    this.conn.readMs = 0;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const signal = this.ctl.signal;
    while (!signal.aborted) {
      const t = performance.now();
      this.sent++;
      try {
        await abortable(call(this.conn, ["PING"]), signal);
      } catch (e) {
        if (!signal.aborted) this.error = e as Error;
        return;
      }
      const now = performance.now();
      this.pongs.push(now);
      this.slowest = Math.max(this.slowest, now - t);
      for (const w of [...this.waiters]) w();
      const wait = t + PING_INTERVAL_MS - performance.now();
      if (wait > 0) await abortable(Bun.sleep(wait), signal).catch(() => {});
    }
  }

  /** Resolve with the time of the first PONG after `since` (performance.now()), or null after `ms`. */
  firstAnswerAfter(since: number, ms: number): Promise<number | null> {
    return new Promise((resolve) => {
      const check = () => {
        const p = this.pongs.find((x) => x > since);
        if (p !== undefined) {
          done();
          resolve(p);
        } else if (this.error) {
          done();
          resolve(null);
        }
      };
      const timer = setTimeout(() => {
        done();
        resolve(null);
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Stop pinging (the connection is closed) and return the figures. */
  async stop(): Promise<PingStats> {
    if (this.stoppedAt === null) this.stoppedAt = performance.now();
    this.ctl.abort();
    this.conn.destroy();
    await this.loop;
    return this.stats();
  }

  /** The figures so far. */
  stats(): PingStats {
    const end = this.stoppedAt ?? performance.now();
    const points = [this.startedAt, ...this.pongs.filter((p) => p <= end), end];
    let gap = 0;
    for (let i = 1; i < points.length; i++) gap = Math.max(gap, points[i] - points[i - 1]);
    return { sent: this.sent, answered: this.pongs.length, longestGapMs: round(gap), slowestMs: round(this.slowest) };
  }

  /** The error that ended pinging early (the node closed the connection), if any. */
  get failure(): Error | null {
    return this.error;
  }
}

const round = (x: number) => Math.round(x * 10) / 10;
