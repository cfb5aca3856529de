/**
 * Bulk connections: TCP connections whose sockets lib/net creates and owns through libc, all
 * driven by one dedicated thread (bulkthread.ts), so that large transfers from a socket into a
 * file (readToFile) never pass through Bun's socket reads or the main thread. The few small
 * exchanges around them (a command, a size line, AUTH) go through the same thread.
 *
 * Same contract as Conn: an idle read deadline per read, a write deadline, a connect deadline,
 * and an AbortSignal that wins over everything: the thread closes the socket at once and stops
 * writing (a disk write already in flight completes), and every pending call fails with ABORTED.
 * A call settles only once the thread is done with it, so a caller may close the file
 * descriptor it passed as soon as readToFile settled, whichever way.
 *
 * Linux only: bulkEngine() rejects where the thread cannot run (another OS, no C library, no
 * Worker); callers then use connect() and Conn.
 */
import { writeSync } from "node:fs";
import { lookup } from "node:dns/promises";
import { getSystemErrorMessage } from "node:util";
import { DEFAULT_CONNECT_MS, DEFAULT_READ_MS, DEFAULT_WRITE_MS, type FrameParser } from "./conn.ts";
import { NetError, failures, fromSystemError } from "./errors.ts";
import type { BulkCmd, BulkFailure, BulkReply, BulkStart } from "./bulkthread.ts";
import type { ConnectOptions } from "./index.ts";
import { parseIp } from "./ip.ts";

/** Most bytes one small read asks the thread for. */
const READ_MAX = 64 * 1024;
const EMPTY = Buffer.alloc(0);
const WAKE = new BigUint64Array([1n]);

type Ok = Extract<BulkReply, { ok: true }>;

/** The thread and its command channel. One per process, started on first use. */
class Engine {
  readonly conns = new Map<number, BulkConn>();
  private nextId = 1;
  private dead = false;

  constructor(
    private readonly worker: Worker,
    private readonly posted: Int32Array,
    private readonly wakeFd: number,
  ) {
    worker.onmessage = (e: MessageEvent) => this.reply(e.data as BulkReply);
    // An error the thread did not catch: it is gone, and so is every call it had.
    worker.onerror = (e) => {
      e.preventDefault();
      this.die(e.message);
    };
  }

  id(): number {
    return this.nextId++;
  }

  /** Queue a command and wake the thread. */
  post(cmd: BulkCmd): void {
    // Counted first: the thread does not block in poll() while a counted command is on its way.
    Atomics.add(this.posted, 0, 1);
    this.worker.postMessage(cmd);
    writeSync(this.wakeFd, WAKE);
  }

  private reply(r: BulkReply): void {
    if ("fatal" in r) return this.die(r.fatal);
    if ("ready" in r) return;
    this.conns.get(r.id)?.reply(r);
  }

  /** The thread failed: every connection fails, and later syncs do without it. */
  private die(why: string): void {
    if (this.dead) return;
    this.dead = true;
    unavailable = `the bulk thread failed: ${why}`;
    engine = null;
    for (const c of [...this.conns.values()]) c.lost(why);
    this.worker.terminate();
  }
}

let engine: Promise<Engine> | null = null;
let unavailable: string | null = process.platform === "linux" ? null : `bulk connections need Linux (this is ${process.platform})`;

/** Where the thread's module is: beside this one, or inside the compiled binary (see package.json's build). */
function threadUrl(): string {
  const here = import.meta.url;
  return here.startsWith("file:///$bunfs/") ? "/$bunfs/root/lib/net/bulkthread.ts" : new URL("./bulkthread.ts", here).href;
}

/** The bulk thread, started on first use; rejects (and keeps rejecting) where it cannot run. */
export function bulkEngine(): Promise<Engine> {
  if (unavailable) return Promise.reject(new Error(unavailable));
  engine ??= new Promise<Engine>((resolve, reject) => {
    let worker: Worker;
    try {
      worker = new Worker(threadUrl());
    } catch (e) {
      return reject(e);
    }
    const fail = (why: string) => {
      unavailable = why;
      engine = null;
      worker.terminate();
      reject(new Error(why));
    };
    worker.onerror = (e) => fail(`the bulk thread did not start: ${e.message}`);
    worker.onmessage = (e: MessageEvent) => {
      const r = e.data as BulkReply;
      if ("ready" in r) resolve(new Engine(worker, start.posted, r.wakeFd));
      else fail(`the bulk thread did not start: ${"fatal" in r ? r.fatal : "unexpected reply"}`);
    };
    const start: BulkStart = { posted: new Int32Array(new SharedArrayBuffer(4)) };
    worker.postMessage(start);
    // A thread waiting in poll() must not keep the process alive.
    worker.unref();
  });
  return engine;
}

/** True when bulk connections can be used in this process (starts the thread if needed). */
export async function bulkAvailable(): Promise<boolean> {
  return bulkEngine().then(
    () => true,
    () => false,
  );
}

/** Why bulk connections cannot be used here, or null (known only once bulkEngine() settled). */
export function bulkUnavailableReason(): string | null {
  return unavailable;
}

/** The call in flight on a connection. */
interface Waiter {
  resolve(r: Ok): void;
  reject(e: unknown): void;
  /** How a close by the peer is worded for this call ("in the middle of a line"). */
  closedWhat(): string;
  /** The read deadline this call was given, for a READ_TIMEOUT message. */
  readMs: number;
}

/** One line ending in LF (CRLF stripped), at most `max` bytes, as latin1 text (Conn.readLine's rules). */
class LineParser implements FrameParser<string> {
  private parts: Buffer[] = [];
  private len = 0;
  constructor(
    private readonly max: number,
    private readonly peer: string,
  ) {}

  feed(chunk: Uint8Array): { used: number; done: boolean; value?: string } {
    const b = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const nl = b.indexOf(10);
    if (nl < 0) {
      this.parts.push(b);
      this.len += b.length;
      if (this.len > this.max + 1) throw failures.lineTooLong(this.peer, this.max);
      return { used: b.length, done: false };
    }
    this.parts.push(b.subarray(0, nl + 1));
    const all = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
    const end = all.length >= 2 && all[all.length - 2] === 13 ? all.length - 2 : all.length - 1;
    if (end > this.max) throw failures.lineTooLong(this.peer, this.max);
    return { used: nl + 1, done: true, value: all.toString("latin1", 0, end) };
  }
}

/** A connection driven by the bulk thread (see the module comment). Made by bulkConnect(). */
export class BulkConn {
  readonly peer: string;
  /** Idle read deadline in ms for the next read (0 disables). */
  readMs: number;
  /** Deadline for a write to be taken by the kernel, in ms (0 disables). */
  writeMs: number;
  /** Resolves once the socket is closed. */
  readonly closed: Promise<void>;
  private readonly id: number;
  /** [bytes received, last I/O (epoch ms), bytes of the readToFile in flight]: written by the thread. */
  private readonly meter = new Float64Array(new SharedArrayBuffer(24));
  /** Bytes received by a read and not used yet. */
  private leftover: Buffer = EMPTY;
  private waiter: Waiter | null = null;
  /** The first failure (a NetError, or a file-system error of readToFile): later calls fail with it. */
  private failure: unknown = null;
  /** Set by an abort or destroy(): every later and pending call fails with it. */
  private killed: NetError | null = null;
  private isShut = false;
  /** The connect deadline open() was given, for its message. */
  private connectMs = 0;
  private markClosed!: () => void;
  private readonly signal?: AbortSignal;
  private readonly onAbort = () => this.kill(failures.aborted(this.peer, this.bytesRead), "ABORTED");

  /** @internal use bulkConnect() */
  constructor(
    private readonly engine: Engine,
    peer: string,
    opts: ConnectOptions,
  ) {
    this.peer = peer;
    this.id = engine.id();
    this.readMs = opts.readMs ?? DEFAULT_READ_MS;
    this.writeMs = opts.writeMs ?? DEFAULT_WRITE_MS;
    this.meter[1] = Date.now();
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
    engine.conns.set(this.id, this);
    if (opts.signal) {
      this.signal = opts.signal;
      opts.signal.addEventListener("abort", this.onAbort, { once: true });
    }
  }

  /** Bytes received on the connection so far. */
  get bytesRead(): number {
    return this.meter[0];
  }

  /** When the last byte was received (epoch ms; the connect time before any). */
  get lastIoMs(): number {
    return this.meter[1];
  }

  /** Bytes the readToFile in flight (or the last one) has put in its file so far. */
  get fileBytes(): number {
    return this.meter[2];
  }

  /** True once the connection failed, was aborted or destroyed, or closed. */
  get isClosed(): boolean {
    return this.isShut || this.failure !== null || this.killed !== null;
  }

  /**
   * @internal Connect (bulkConnect() calls it once): resolves once the TCP handshake completed.
   * `connectMs` is the whole deadline (for the message), `leftMs` what remains of it.
   */
  async open(addr: Uint8Array, port: number, connectMs: number, leftMs: number): Promise<void> {
    this.connectMs = connectMs;
    try {
      await this.call({ op: "open", id: this.id, addr, port, ms: leftMs, meter: this.meter }, () => "while connecting");
    } catch (e) {
      throw e instanceof NetError && e.code === "ABORTED" ? failures.abortedConnecting(this.peer, false) : e;
    }
  }

  /** Send every byte (write deadline, abort). */
  async write(data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    await this.call({ op: "write", id: this.id, data: bytes, ms: this.writeMs }, () => "while we wrote");
  }

  /** Read one frame with a resumable parser (a RESP decoder): lib/resp's `call` works on this. */
  read<T>(parser: FrameParser<T>): Promise<T> {
    return this.frame(parser, "before a complete reply");
  }

  /** Read one line ending in CRLF (or LF); returns it without the terminator. */
  readLine(maxLength = 64 * 1024): Promise<string> {
    return this.frame(new LineParser(maxLength, this.peer), "in the middle of a line", 10);
  }

  /**
   * Receive exactly `n` bytes into the open file descriptor `fd` (written at its offset, in
   * order), under the idle read deadline. Settles only once the thread no longer uses `fd`.
   */
  async readToFile(n: number, fd: number): Promise<void> {
    const head = this.leftover.subarray(0, Math.min(n, this.leftover.length));
    this.leftover = this.leftover.subarray(head.length);
    // The previous file's count must not show as this one's until the thread starts it.
    this.meter[2] = head.length;
    await this.call({ op: "file", id: this.id, fd, n, head, ms: this.readMs }, () => `with ${n - this.fileBytes} of ${n} bytes still expected`);
  }

  /** Bytes received and not consumed by a read: those held here plus those the kernel holds. */
  async available(): Promise<number> {
    const r = await this.call({ op: "avail", id: this.id }, () => "");
    return this.leftover.length + (r.n ?? 0);
  }

  /** Close now: the thread closes the socket; a pending call fails with CLOSED. */
  destroy(): void {
    this.kill(failures.closedLocally(this.peer, this.bytesRead), "CLOSED");
  }

  /** Feed `parser` until it completes a frame; `until` (a byte) asks the thread for no bytes past it. */
  private async frame<T>(parser: FrameParser<T>, what: string, until?: number): Promise<T> {
    for (;;) {
      if (this.killed) throw this.killed;
      if (this.leftover.length > 0) {
        const chunk = this.leftover;
        this.leftover = EMPTY;
        let r;
        try {
          r = parser.feed(chunk);
        } catch (e) {
          const err = failures.unparsable(e, this.peer, this.bytesRead);
          this.failure ??= err;
          this.destroy();
          throw err;
        }
        if (r.used < chunk.length) this.leftover = chunk.subarray(r.used);
        if (r.done) return r.value as T;
      }
      const got = await this.call({ op: "read", id: this.id, max: READ_MAX, until, ms: this.readMs }, () => what);
      this.leftover = Buffer.from(got.data!.buffer, got.data!.byteOffset, got.data!.byteLength);
    }
  }

  /** Send one command to the thread; settles with its reply. */
  private call(cmd: BulkCmd, closedWhat: () => string): Promise<Ok> {
    if (this.killed) return Promise.reject(this.killed);
    if (this.failure) return Promise.reject(this.failure);
    if (this.waiter) return Promise.reject(new NetError("IO", `a call is already in flight on the bulk connection with ${this.peer}`, { peer: this.peer }));
    return new Promise<Ok>((resolve, reject) => {
      this.waiter = { resolve, reject, closedWhat, readMs: this.readMs };
      this.engine.post(cmd);
    });
  }

  /** An abort or destroy(): the first one wins; the thread fails the call in flight with `code`. */
  private kill(err: NetError, code: "ABORTED" | "CLOSED"): void {
    if (this.killed) return;
    this.killed = err;
    this.leftover = EMPTY;
    if (!this.isShut) this.engine.post({ op: "close", id: this.id, code });
  }

  /** @internal A reply of the thread for this connection. */
  reply(r: Extract<BulkReply, { id: number }>): void {
    if ("closed" in r) return this.shut();
    const w = this.waiter;
    this.waiter = null;
    if (!w) return;
    if (this.killed) return w.reject(this.killed);
    if (r.ok) return w.resolve(r);
    const err = this.error(r.fail, w);
    this.failure ??= err;
    w.reject(err);
  }

  /** @internal The thread died: fail what is pending and count the socket as closed. */
  lost(why: string): void {
    const err = new NetError("IO", `connection with ${this.peer}: ${why}`, { peer: this.peer, bytesRead: this.bytesRead });
    this.failure ??= err;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(err);
    this.shut();
  }

  private shut(): void {
    if (this.isShut) return;
    this.isShut = true;
    this.engine.conns.delete(this.id);
    this.signal?.removeEventListener("abort", this.onAbort);
    this.markClosed();
  }

  private error(f: BulkFailure, w: Waiter): unknown {
    const { peer, bytesRead } = this;
    switch (f.code) {
      case "READ_TIMEOUT":
        return failures.readTimeout(peer, w.readMs, bytesRead);
      case "WRITE_TIMEOUT":
        return failures.writeTimeout(peer, this.writeMs, bytesRead);
      case "CONNECT_TIMEOUT":
        return failures.connectTimeout(peer, this.connectMs);
      case "CLOSED":
        return failures.closedByPeer(peer, w.closedWhat(), bytesRead);
      case "ABORTED":
        return failures.aborted(peer, bytesRead);
      case "SOCKET":
        return fromSystemError(systemError(f, "recv"), peer, bytesRead);
      case "FILE":
        // A file-system error, as node:fs reports one (code ENOSPC, EIO, ...).
        return systemError(f, "write");
    }
  }
}

/** An Error shaped like node's system errors: `code`, `errno`, `syscall`. */
function systemError(f: BulkFailure, syscall: string): NodeJS.ErrnoException {
  const n = f.errnoNumber ?? 0;
  let text: string;
  try {
    text = getSystemErrorMessage(-n);
  } catch {
    text = `errno ${n}`;
  }
  return Object.assign(new Error(`${f.errno}: ${text}, ${syscall}`), { code: f.errno, errno: -n, syscall });
}

/**
 * Open a bulk connection to host:port under the connect deadline and the AbortSignal of `opts`
 * (deadlines as connect()). Rejects with the reason when bulk connections cannot run here.
 */
export async function bulkConnect(host: string, port: number, opts: ConnectOptions = {}): Promise<BulkConn> {
  const peer = `${host}:${port}`;
  const connectMs = opts.connectMs ?? DEFAULT_CONNECT_MS;
  const signal = opts.signal;
  if (signal?.aborted) throw failures.abortedConnecting(peer, true);
  const eng = await bulkEngine();
  const t0 = performance.now();
  const addr = parseIp(host) ?? (await resolve(host, peer, connectMs, signal));
  const left = connectMs > 0 ? Math.max(1, connectMs - (performance.now() - t0)) : 0;
  if (signal?.aborted) throw failures.abortedConnecting(peer, false);
  const conn = new BulkConn(eng, peer, opts);
  await conn.open(addr, port, connectMs, left);
  return conn;
}

/** The address of a host name, under the connect deadline and the signal. */
async function resolve(host: string, peer: string, connectMs: number, signal?: AbortSignal): Promise<Uint8Array> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  try {
    const r = await Promise.race([
      lookup(host),
      new Promise<never>((_, reject) => {
        if (connectMs > 0) timer = setTimeout(() => reject(failures.connectTimeout(peer, connectMs)), connectMs);
        onAbort = () => reject(failures.abortedConnecting(peer, false));
        signal?.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
    const b = parseIp(r.address);
    if (!b) throw new NetError("DNS", `cannot resolve host for ${peer}: unusable address ${r.address}`, { peer });
    return b;
  } catch (e) {
    throw fromSystemError(e, peer, 0);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}
