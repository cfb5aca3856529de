/**
 * The deadline connection: every wait (read a line, read exactly n bytes, write and drain) races
 * its own idle deadline and the caller's AbortSignal. Whichever comes first settles it.
 *
 * An abort (or a local destroy()) wins over everything after it, whatever happened before: a
 * peer that already closed, bytes still buffered, a sink still writing. From then on no buffered
 * byte is served, every read, write and raced sink fails with ABORTED (CLOSED after destroy()).
 *
 * Built on node:net as Bun implements it (chosen by measurement: see bench/socket-api.ts and the
 * README). Deadlines are our own timers: Bun's socket.setTimeout()/timeout() are not relied upon.
 */
import type { Socket } from "node:net";
import { NetError, failures, fromSystemError } from "./errors.ts";
import { canonicalIp } from "./ip.ts";

/** An address as canonical text: a dual-stack socket's IPv4-mapped peer as the IPv4 address it is. */
const unmapped = (a: string) => canonicalIp(a) ?? a;

export const DEFAULT_CONNECT_MS = 3000;
export const DEFAULT_READ_MS = 3000;
export const DEFAULT_WRITE_MS = 30_000;
/** Bytes buffered from the socket before it is paused (read backpressure), by default. */
export const HIGH_WATER = 1 << 20;
const DEFAULT_MAX_LINE = 64 * 1024;

export interface ConnOptions {
  /** Idle read deadline in ms: no byte for this long fails the pending read. 0 disables. */
  readMs?: number;
  /** Deadline for a write to drain, in ms. 0 disables. */
  writeMs?: number;
  /** Aborting settles every pending wait at once with code ABORTED and destroys the socket. */
  signal?: AbortSignal;
}

/** A resumable parser fed chunk by chunk (lib/resp implements it). */
export interface FrameParser<T> {
  /** Consume bytes from `chunk`; report how many were used and whether a frame completed. Throwing = the peer broke the protocol. */
  feed(chunk: Uint8Array): { used: number; done: boolean; value?: T };
}

/** Receives streamed bytes; may return a promise to apply backpressure. */
export type Sink = (chunk: Buffer) => void | Promise<void>;

type Waiter = { resolve: () => void; reject: (e: NetError) => void };

/**
 * Free a received piece now, when it is the whole of its memory (a piece split off a larger
 * read shares it with the rest and is left alone). Every socket read is a fresh buffer; at
 * hundreds of MB/s the dead ones piled up between collections and each new read touched fresh
 * pages: freeing each piece once used lets the next read reuse the same warm memory
 * (ArrayBuffer.prototype.transfer detaches the buffer and releases its contents).
 */
function releaseChunk(b: Buffer): void {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.byteLength > 0 && b.buffer instanceof ArrayBuffer) b.buffer.transfer(0);
}

export class Conn {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** "host:port" of the peer, for messages. */
  readonly peer: string;
  readMs: number;
  writeMs: number;
  bytesRead = 0;
  /**
   * Unread bytes held before the socket is paused (the kernel holds the rest). A server lowers
   * it for a client that has not authenticated yet.
   */
  readHighWater = HIGH_WATER;

  private readonly sock: Socket;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private paused = false;
  private eof = false;
  private failure: NetError | null = null;
  /** Set by an abort or a local destroy(), whatever failed first; checked before serving any byte. */
  private killed: NetError | null = null;
  /** True while the abort listener is registered on `signal`. */
  private listening = false;
  /** Set when a frame parser rejected the input: reads fail, writes still go out. */
  private readError: NetError | null = null;
  private reader: Waiter | null = null;
  private readTimer: ReturnType<typeof setTimeout> | null = null;
  private readTimerMs = 0;
  private writers = new Set<Waiter>();
  /** Waits raced by race() (a read sink's promise): a clean close by the peer does not end them. */
  private racers = new Set<Waiter>();
  private readonly signal?: AbortSignal;
  private readonly onAbort = () => this.kill(failures.aborted(this.peer, this.bytesRead));
  /** Resolves once the socket is fully closed. */
  readonly closed: Promise<void>;

  constructor(sock: Socket, opts: ConnOptions = {}) {
    this.sock = sock;
    this.readMs = opts.readMs ?? DEFAULT_READ_MS;
    this.writeMs = opts.writeMs ?? DEFAULT_WRITE_MS;
    this.remoteAddress = unmapped(sock.remoteAddress ?? "?");
    this.remotePort = sock.remotePort ?? 0;
    this.localAddress = unmapped(sock.localAddress ?? "?");
    this.localPort = sock.localPort ?? 0;
    this.peer = `${this.remoteAddress}:${this.remotePort}`;
    sock.setNoDelay(true);
    this.closed = new Promise((resolve) => sock.once("close", () => resolve()));
    sock.on("data", (chunk: Buffer) => {
      if (this.killed) return;
      this.bytesRead += chunk.length;
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered >= this.readHighWater && !this.paused) {
        this.paused = true;
        sock.pause();
      }
      this.wakeReader();
    });
    sock.on("end", () => {
      this.eof = true;
      this.wakeReader();
    });
    sock.on("error", (e) => this.fail(fromSystemError(e, this.peer, this.bytesRead), false));
    sock.on("close", () => {
      this.eof = true;
      this.fail(failures.closed(this.peer, this.bytesRead), false);
      // Bytes still buffered are still served: an abort must keep cutting them short.
      if (this.buffered === 0) this.unlisten();
      if (this.readTimer) clearTimeout(this.readTimer);
    });
    sock.on("drain", () => {
      const ws = [...this.writers];
      this.writers.clear();
      for (const w of ws) w.resolve();
    });
    if (opts.signal) {
      this.signal = opts.signal;
      if (opts.signal.aborted) this.onAbort();
      else {
        opts.signal.addEventListener("abort", this.onAbort, { once: true });
        this.listening = true;
      }
    }
  }

  /** True once the connection failed, was aborted, or closed. */
  get isClosed(): boolean {
    return this.failure !== null || this.sock.destroyed;
  }

  /** Bytes written to the socket so far. */
  get bytesWritten(): number {
    return this.sock.bytesWritten ?? 0;
  }

  /**
   * True when nothing written is held in user space any more: the kernel took every byte, or the
   * runtime copied what it could not send yet. The memory a caller wrote from is then its own
   * again (node:net keeps a reference to a chunk it queued while an earlier write was pending).
   */
  get flushed(): boolean {
    return this.sock.writableLength === 0;
  }

  /** Bytes received and not yet consumed by a read. */
  get pending(): number {
    return this.buffered;
  }

  // ---- failure and waking ----

  private fail(err: NetError, destroy: boolean): void {
    if (!this.failure) this.failure = err;
    // A clean close by the peer does not cut short a sink working on bytes already received.
    this.settle(this.failure, this.failure.code !== "CLOSED");
    if (destroy && !this.sock.destroyed) this.sock.destroy();
  }

  /**
   * An abort or a local destroy(): replaces any earlier failure, drops the buffered bytes, fails
   * every pending and later wait (raced sinks included), destroys the socket. The first one wins.
   */
  private kill(err: NetError): void {
    if (this.killed) return;
    this.killed = this.failure = err;
    this.chunks = [];
    this.buffered = 0;
    this.unlisten();
    this.settle(err, true);
    if (!this.sock.destroyed) this.sock.destroy();
  }

  /** Reject the pending read, writes and (with `racers`) raced sinks with `err`. */
  private settle(err: NetError, racers: boolean): void {
    const r = this.reader;
    this.reader = null;
    if (this.readTimer) {
      clearTimeout(this.readTimer);
      this.readTimer = null;
    }
    r?.reject(err);
    const ws = [...this.writers];
    this.writers.clear();
    for (const w of ws) w.reject(err);
    if (racers) {
      const rs = [...this.racers];
      this.racers.clear();
      for (const w of rs) w.reject(err);
    }
  }

  private unlisten(): void {
    if (!this.listening) return;
    this.listening = false;
    this.signal?.removeEventListener("abort", this.onAbort);
  }

  private wakeReader(): void {
    const r = this.reader;
    if (r) {
      this.reader = null;
      r.resolve();
    }
  }

  private readonly onReadTimeout = () => {
    this.readTimer = null;
    if (!this.reader) return;
    const err = failures.readTimeout(this.peer, this.readMs, this.bytesRead);
    // A read deadline ends the connection: the stream position is unknown to the caller.
    this.fail(err, true);
  };

  /** Wait until more data, EOF, the read deadline, an error or an abort. */
  private waitData(): Promise<void> {
    if (this.killed) return Promise.reject(this.killed);
    if (this.readError) return Promise.reject(this.readError);
    if (this.failure && this.buffered === 0) return Promise.reject(this.failure);
    if (this.eof) return Promise.resolve();
    if (this.paused) {
      this.paused = false;
      this.sock.resume();
    }
    return new Promise<void>((resolve, reject) => {
      this.reader = { resolve, reject };
      if (this.readMs <= 0 && this.readTimer) {
        clearTimeout(this.readTimer);
        this.readTimer = null;
      }
      if (this.readMs > 0) {
        // refresh() keeps the timer's first duration: re-arm when readMs was changed since.
        if (this.readTimer && this.readTimerMs === this.readMs) this.readTimer.refresh();
        else {
          if (this.readTimer) clearTimeout(this.readTimer);
          this.readTimerMs = this.readMs;
          this.readTimer = setTimeout(this.onReadTimeout, this.readMs);
        }
      }
    });
  }

  private closedError(what: string): NetError {
    if (this.signal?.aborted) this.onAbort();
    if (this.killed) return this.killed;
    if (this.failure && this.failure.code !== "CLOSED") return this.failure;
    return failures.closedByPeer(this.peer, what, this.bytesRead);
  }

  private take(max: number): Buffer {
    const head = this.chunks[0];
    let out: Buffer;
    if (head.length <= max) {
      this.chunks.shift();
      out = head;
    } else {
      out = head.subarray(0, max);
      this.chunks[0] = head.subarray(max);
    }
    this.buffered -= out.length;
    if (this.paused && this.buffered < this.readHighWater / 2) {
      this.paused = false;
      this.sock.resume();
    }
    // Closed and drained: nothing left for an abort to cut.
    if (this.eof && this.buffered === 0) this.unlisten();
    return out;
  }

  private unshift(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.unshift(b);
    this.buffered += b.length;
  }

  // ---- reads ----

  /** Read one line ending in CRLF (or LF); returns it without the terminator. */
  async readLine(maxLength = DEFAULT_MAX_LINE): Promise<string> {
    const parts: Buffer[] = [];
    let len = 0;
    for (;;) {
      if (this.killed) throw this.killed;
      while (this.buffered > 0) {
        const head = this.chunks[0];
        const nl = head.indexOf(10);
        if (nl >= 0) {
          parts.push(this.take(nl + 1));
          const all = parts.length === 1 ? parts[0] : Buffer.concat(parts);
          const end = all.length >= 2 && all[all.length - 2] === 13 ? all.length - 2 : all.length - 1;
          if (end > maxLength) throw failures.lineTooLong(this.peer, maxLength);
          return all.toString("latin1", 0, end);
        }
        const b = this.take(head.length);
        parts.push(b);
        len += b.length;
        if (len > maxLength + 1) {
          // Thrown as such even when the peer has closed meanwhile: the bytes were there.
          const err = failures.lineTooLong(this.peer, maxLength);
          this.fail(err, true);
          throw err;
        }
      }
      if (this.eof) throw this.closedError("in the middle of a line");
      await this.waitData();
    }
  }

  /**
   * Read exactly `n` bytes, handing each piece to `sink` (awaited: backpressure). With
   * `release`, the sink promises to keep no reference to a piece once its promise resolved (or
   * once it returned, when it returns nothing): the piece's memory is then freed at once
   * (see releaseChunk), not left to the garbage collector.
   */
  async readExactly(n: number, sink: Sink, opts: { release?: boolean } = {}): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.killed) throw this.killed;
      if (this.buffered === 0) {
        if (this.eof) throw this.closedError(`with ${left} of ${n} bytes still expected`);
        await this.waitData();
        continue;
      }
      const b = this.take(left);
      left -= b.length;
      const r = sink(b);
      // Only after the sink's own promise resolved: a rejected race (an abort) may leave the
      // sink still using the piece.
      if (r) await this.race(r);
      if (opts.release) releaseChunk(b);
    }
  }

  /** Read exactly `n` bytes into one buffer (small reads only). */
  async readBytes(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    await this.readExactly(n, (c) => void parts.push(c as Buffer));
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
  }

  /**
   * Read one frame with a resumable parser (e.g. a RESP decoder). `idle`, when given, runs each
   * time the buffered bytes are used up without completing a frame, just before the read waits
   * for the peer: a caller that batches its own work flushes it there.
   */
  async read<T>(parser: FrameParser<T>, idle?: () => void | Promise<void>): Promise<T> {
    for (;;) {
      if (this.killed) throw this.killed;
      while (this.buffered > 0) {
        const chunk = this.take(Infinity);
        let r;
        try {
          r = parser.feed(chunk);
        } catch (e) {
          // Whatever a parser rejects is the peer's protocol error.
          const err = failures.unparsable(e, this.peer, this.bytesRead);
          this.failRead(err);
          throw err;
        }
        if (r.used < chunk.length) this.unshift(chunk.subarray(r.used));
        if (r.done) return r.value as T;
      }
      if (this.eof) throw this.closedError("before a complete reply");
      if (idle) {
        await idle();
        if (this.buffered > 0 || this.eof || this.killed) continue;
      }
      await this.waitData();
    }
  }

  /**
   * The input is unusable after a parse error: drop what is buffered, stop reading, fail every
   * later read, but keep writes open so a server can answer "-ERR Protocol error" before it
   * closes. The socket is destroyed after a second in any case.
   */
  private failRead(e: NetError): void {
    this.readError = e;
    this.chunks = [];
    this.buffered = 0;
    this.paused = true;
    this.sock.pause();
    setTimeout(() => this.destroy(), 1000).unref?.();
  }

  /** Wait for any bytes; returns null at EOF. */
  async readChunk(): Promise<Buffer | null> {
    for (;;) {
      if (this.killed) throw this.killed;
      if (this.buffered > 0) return this.take(Infinity);
      if (this.eof) return null;
      await this.waitData();
    }
  }

  /** Race a promise against this connection's failure (abort, error). */
  private race<T>(p: Promise<T>): Promise<T> {
    if (this.killed) return Promise.reject(this.killed);
    // A clean close by the peer does not cut short a sink working on bytes already received.
    if (this.failure && this.failure.code !== "CLOSED") return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      const w: Waiter = { resolve: () => {}, reject };
      this.racers.add(w);
      p.then(
        (v) => {
          this.racers.delete(w);
          resolve(v);
        },
        (e) => {
          this.racers.delete(w);
          reject(e);
        },
      );
    });
  }

  // ---- writes ----

  /** Write and, when the socket's buffer is full, wait for drain (write deadline, abort). */
  write(data: Uint8Array | string): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.sock.write(data)) return Promise.resolve();
    return this.drain();
  }

  /** Wait until the socket's write buffer drains. */
  drain(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.sock.writableNeedDrain) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | null = null;
      const w: Waiter = {
        resolve: () => {
          if (timer) clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          if (timer) clearTimeout(timer);
          reject(e);
        },
      };
      this.writers.add(w);
      if (this.writeMs > 0) {
        timer = setTimeout(() => {
          this.fail(failures.writeTimeout(this.peer, this.writeMs, this.bytesRead), true);
        }, this.writeMs);
      }
    });
  }

  /** Half-close: send FIN after pending writes. Reads may continue. */
  end(): void {
    if (!this.sock.destroyed) this.sock.end();
  }

  /**
   * Close now. `reset: true` sends RST (node:net resetAndDestroy, which Bun implements via
   * SO_LINGER 0); otherwise a plain destroy (FIN if the kernel can still send it).
   */
  destroy(reset = false): void {
    if (!this.sock.destroyed) {
      if (reset && typeof this.sock.resetAndDestroy === "function") this.sock.resetAndDestroy();
      else this.sock.destroy();
    }
    // Even when the peer closed first: what is still buffered is not served after this.
    this.kill(failures.closedLocally(this.peer, this.bytesRead));
  }

  /** Stop reading from the kernel (used by the stall fault): the peer's writes back up. */
  pauseReading(): void {
    this.paused = true;
    this.sock.pause();
  }
}
