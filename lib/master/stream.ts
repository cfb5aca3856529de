/**
 * kvr master's incremental stream (`--write-rate`): RocksDB WriteBatches with consecutive
 * sequence numbers after the checkpoint's sequence, a retained window of the last
 * `--wal-window` batches for PSYNC, and waiting for new batches.
 *
 * The history is deterministic: the batch starting at sequence s has 1–4 Put records and its
 * contents derive from (seed, s) alone, and the first batch starts at `--seq` + 1. So a master
 * restarted with the same --seq and seed has the same history; it only has to know how far it
 * got. A replica asking `PSYNC <s>` for a later batch boundary of that history (it saw it before
 * the restart) makes the master fast-forward to s, as if it had run all along: batches before
 * s − window are dropped, s is streamed next. A PSYNC older than the window, or not on a batch
 * boundary, is out of range (the replica does a full sync).
 */
import { encodePutBatch, type PutRecord } from "../rocksdb/index.ts";
import { mix } from "./generate.ts";

/** Furthest a PSYNC may ask beyond the head (in sequences) and still fast-forward (walking it takes ~0.1 s). */
export const MAX_FAST_FORWARD = 10_000_000;

export interface StreamConfig {
  /** The checkpoint's sequence: the first batch starts at seq + 1. */
  seq: number;
  seed: number;
  /** Batches per second (0 = none: the head stays at seq). */
  rate: number;
  /** Batches retained for PSYNC. */
  window: number;
  /** Stop after this many batches (0 = never). */
  total?: number;
}

const hi = (s: number) => Math.floor(s / 0x1_0000_0000);

/** Records in the batch that starts at `seq` (1–4). */
export function batchCountAt(seed: number, seq: number): number {
  return 1 + (mix(seed ^ 0x5eed, seq >>> 0, hi(seq)) % 4);
}

/** The WriteBatch that starts at `seq`: Puts of `kvr:<sequence>` → a 24-byte value from (seed, sequence). */
export function batchAt(seed: number, seq: number): Buffer {
  const n = batchCountAt(seed, seq);
  const puts: PutRecord[] = [];
  for (let i = 0; i < n; i++) {
    const s = seq + i;
    const v = Buffer.allocUnsafe(24);
    let x = mix(seed, s >>> 0, hi(s));
    for (let o = 0; o < 24; o += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      v.writeUInt32LE(x >>> 0, o);
    }
    puts.push({ key: `kvr:${s}`, value: v.toString("hex") });
  }
  return encodePutBatch(seq, puts);
}

/** One batch as a RESP bulk string, as a Kvrocks master sends it. */
export function batchFrame(seed: number, seq: number): Buffer {
  const b = batchAt(seed, seq);
  return Buffer.concat([Buffer.from(`$${b.length}\r\n`, "latin1"), b, Buffer.from("\r\n", "latin1")]);
}

/** The producing side and the retained window. */
export class WalStream {
  /** Last sequence produced (master_repl_offset). */
  head: number;
  /** Batches produced since start (fast-forwarded ones included). */
  produced = 0;
  /** Start sequences of the retained batches: starts[first..] (ascending). */
  private starts: number[] = [];
  private first = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private baseMs = 0;
  private baseCount = 0;
  private waiters = new Set<() => void>();

  constructor(readonly cfg: StreamConfig) {
    this.head = cfg.seq;
  }

  /** Next sequence to be produced. */
  get next(): number {
    return this.head + 1;
  }

  /** First sequence still retained (next when nothing is). */
  get firstRetained(): number {
    return this.first < this.starts.length ? this.starts[this.first] : this.next;
  }

  /** Batches currently retained. */
  get retained(): number {
    return this.starts.length - this.first;
  }

  /** Start producing at cfg.rate (no-op for rate 0). */
  start(): void {
    if (this.cfg.rate <= 0 || this.timer) return;
    this.baseMs = performance.now();
    this.baseCount = 0;
    this.timer = setInterval(() => this.tick(), 5);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.wake();
  }

  private tick(): void {
    const due = Math.floor(((performance.now() - this.baseMs) * this.cfg.rate) / 1000) - this.baseCount;
    // After a long pause (a blocked event loop) catch up by at most one second's worth.
    let n = Math.min(due, Math.max(1, this.cfg.rate));
    if (this.cfg.total) n = Math.min(n, this.cfg.total - this.produced);
    if (n <= 0) {
      if (this.cfg.total && this.produced >= this.cfg.total && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
      return;
    }
    this.produce(n);
    this.baseCount += n;
    if (due > n) this.baseCount = Math.floor(((performance.now() - this.baseMs) * this.cfg.rate) / 1000);
    this.wake();
  }

  /** Append `n` batches to the history. */
  produce(n: number): void {
    for (let i = 0; i < n; i++) {
      const s = this.head + 1;
      this.starts.push(s);
      this.head = s + batchCountAt(this.cfg.seed, s) - 1;
      this.produced++;
    }
    this.trim();
  }

  private trim(): void {
    const excess = this.starts.length - this.first - this.cfg.window;
    if (excess > 0) this.first += excess;
    if (this.first > 4096 && this.first * 2 > this.starts.length) {
      this.starts = this.starts.slice(this.first);
      this.first = 0;
    }
  }

  /** Index in `starts` of the batch starting exactly at `seq`, or -1. */
  private indexOf(seq: number): number {
    let lo = this.first;
    let hi2 = this.starts.length - 1;
    while (lo <= hi2) {
      const mid = (lo + hi2) >>> 1;
      const v = this.starts[mid];
      if (v === seq) return mid;
      if (v < seq) lo = mid + 1;
      else hi2 = mid - 1;
    }
    return -1;
  }

  /**
   * Whether a replica may stream from `seq`: the next sequence, a retained batch start, or (with
   * a write rate) a later batch boundary of the same history, which fast-forwards the head.
   */
  accept(seq: number): boolean {
    if (seq === this.next) return true;
    if (seq < this.next) return this.indexOf(seq) >= 0;
    if (this.cfg.rate <= 0 || seq - this.next > MAX_FAST_FORWARD) return false;
    // Walk the history's batch boundaries from the head; only the last `window` are kept.
    let s = this.next;
    let walked = 0;
    while (s < seq) {
      s += batchCountAt(this.cfg.seed, s);
      walked++;
    }
    if (s !== seq) return false;
    const keep = Math.min(walked, this.cfg.window);
    // Replay the skipped part cheaply: only the kept tail needs its start sequences.
    let t = this.next;
    for (let i = 0; i < walked - keep; i++) t += batchCountAt(this.cfg.seed, t);
    this.starts = [];
    this.first = 0;
    this.head = t - 1;
    this.produced += walked - keep;
    this.produce(keep);
    this.baseMs = performance.now();
    this.baseCount = 0;
    this.wake();
    return true;
  }

  /**
   * RESP frames of the retained batches from `seq` on, up to about `maxBytes`; `next` is the
   * sequence after the last one. null when `seq` is no longer retained (the reader fell behind).
   */
  framesFrom(seq: number, maxBytes: number): { frames: Buffer[]; bytes: number; next: number; batches: number } | null {
    const i0 = this.indexOf(seq);
    if (i0 < 0) return null;
    const frames: Buffer[] = [];
    let bytes = 0;
    let next = seq;
    for (let i = i0; i < this.starts.length && bytes < maxBytes; i++) {
      const f = batchFrame(this.cfg.seed, this.starts[i]);
      frames.push(f);
      bytes += f.length;
      next = i + 1 < this.starts.length ? this.starts[i + 1] : this.next;
    }
    return { frames, bytes, next, batches: frames.length };
  }

  /** Resolve after new batches are produced, notify() was called, or `ms` passed. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, Math.max(0, ms));
      this.waiters.add(done);
    });
  }

  /** Wake every waiter now (e.g. a connection closed). */
  notify(): void {
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
