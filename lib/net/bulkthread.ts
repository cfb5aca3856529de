/**
 * The bulk thread: a Bun Worker started by bulk.ts that owns every bulk connection's socket and
 * drives all of them from ONE poll() loop, plus an eventfd the main thread writes to wake it. The
 * main thread's event loop never waits on it: it posts commands and gets one reply per command.
 *
 * Commands arrive as the Worker's messages; replies go back with postMessage. No MessagePort or
 * receiveMessageOnPort: the thread must return to its event loop to get a command, so the loop
 * runs one poll() per event-loop turn (setImmediate), and the main thread counts what it posted
 * in shared memory: while a posted command has not arrived yet, poll() does not block. (Bun's
 * MessagePort has had data races when two threads use one channel at once; the Worker's own
 * channel is the runtime's most used path.) Per connection at most one command is
 * in flight (bulk.ts serialises them), except `close`, which may come at any time and fails the
 * command in flight with the close's reason before it closes the socket.
 *
 * A `file` command moves exactly n bytes from the socket to a file descriptor: recv() into one
 * buffer shared by every connection, then write(), never reading past the file's last byte.
 * (splice() through a pipe was measured here and rejected: on loopback the kernel's copy out of
 * the socket's pages into the page cache cost 2–3× the CPU of recv + write.) Between commands a
 * connection reads ahead into its own buffer, up to READ_AHEAD bytes, as Conn does: the peer is
 * not held up while the main thread parses a size line or a file is fsynced.
 *
 * Deadlines run here: the connect deadline, the idle read deadline (no byte for readMs fails the
 * connection) and the write deadline. Errors are replied as codes; bulk.ts turns them into
 * NetError. Linux only (eventfd, SOCK_NONBLOCK, FIONREAD values).
 */
import { ptr, read, FFIType } from "bun:ffi";
import { constants } from "node:os";
import { isMainThread } from "node:worker_threads";
import { openLibc } from "./libc.ts";

/** A command of the main thread (bulk.ts). `id` names the connection. */
export type BulkCmd =
  /** Connect to addr:port (4 or 16 address bytes) within ms (0 = no deadline). `meter` gets [bytes received, last I/O (epoch ms), bytes of the file command in flight]. */
  | { op: "open"; id: number; addr: Uint8Array; port: number; ms: number; meter: Float64Array }
  /** Send every byte; fails WRITE_TIMEOUT when the kernel does not take them within ms. */
  | { op: "write"; id: number; data: Uint8Array; ms: number }
  /** Receive what is there (at least one byte, at most max; with `until`, up to and including the first such byte). */
  | { op: "read"; id: number; max: number; until?: number; ms: number }
  /** Write `head`, then move n - head.length bytes from the connection to `fd`. */
  | { op: "file"; id: number; fd: number; n: number; head: Uint8Array; ms: number }
  /** Bytes received and not used yet: read ahead here plus what the kernel holds (FIONREAD). */
  | { op: "avail"; id: number }
  /** Fail the command in flight with `code` (ABORTED or CLOSED), close the socket, reply `closed`. */
  | { op: "close"; id: number; code: "ABORTED" | "CLOSED" };

/** Why a command failed: a NetError code, with the errno name for system errors. */
export interface BulkFailure {
  code: "CONNECT_TIMEOUT" | "READ_TIMEOUT" | "WRITE_TIMEOUT" | "CLOSED" | "ABORTED" | "SOCKET" | "FILE";
  /** errno name for SOCKET (a socket call failed) and FILE (the write to the file failed). */
  errno?: string;
  errnoNumber?: number;
}

/** A reply of the thread: one per command, and `closed` once a connection's socket is closed. */
export type BulkReply =
  | { id: number; ok: true; data?: Uint8Array; n?: number }
  | { id: number; ok: false; fail: BulkFailure }
  | { id: number; closed: true }
  | { ready: true; wakeFd: number }
  | { fatal: string };

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const MSG_NOSIGNAL = 0x4000;
const FIONREAD = 0x541b;
const POLLIN = 1;
const POLLOUT = 4;
const EINTR = 4;
const EAGAIN = 11;
const EINPROGRESS = 115;
/** The receive buffer shared by every connection's file commands (one recv() moves at most this much). */
const BUF_BYTES = 1 << 20;
/** Full reads in a row from one socket before the loop polls again (the wake-up fd included). */
const READS_PER_TURN = 4;
/** Bytes a connection reads ahead between commands (as Conn's HIGH_WATER). */
const READ_AHEAD = 1 << 20;

function load() {
  const i32 = FFIType.i32;
  return openLibc({
    socket: { args: [i32, i32, i32], returns: i32 },
    connect: { args: [i32, FFIType.ptr, FFIType.u32], returns: i32 },
    setsockopt: { args: [i32, i32, i32, FFIType.ptr, FFIType.u32], returns: i32 },
    getsockopt: { args: [i32, i32, i32, FFIType.ptr, FFIType.ptr], returns: i32 },
    poll: { args: [FFIType.ptr, FFIType.u64, i32], returns: i32 },
    // Byte counts here never exceed 1 MiB or a small command: the low 32 bits of ssize_t.
    recv: { args: [i32, FFIType.ptr, FFIType.u64, i32], returns: i32 },
    send: { args: [i32, FFIType.ptr, FFIType.u64, i32], returns: i32 },
    write: { args: [i32, FFIType.ptr, FFIType.u64], returns: i32 },
    read: { args: [i32, FFIType.ptr, FFIType.u64], returns: i32 },
    ioctl: { args: [i32, FFIType.u64, FFIType.ptr], returns: i32 },
    eventfd: { args: [FFIType.u32, i32], returns: i32 },
    close: { args: [i32], returns: i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
}

type Work = Exclude<BulkCmd, { op: "close" } | { op: "open" }> | { op: "open" };

/** One connection as the thread sees it. */
interface Sock {
  id: number;
  fd: number;
  /** [bytes received, last I/O (Date.now()), bytes of the file command in flight]: read by the main thread. */
  meter: Float64Array;
  cmd: Work | null;
  /** performance.now() past which the command in flight fails (Infinity: none). */
  deadline: number;
  /** Idle read deadline of the command in flight (refreshed by every byte), ms; 0 = none. */
  idleMs: number;
  /** write: bytes sent so far. */
  sent: number;
  /** file: bytes still to move. */
  left: number;
  /** Bytes read ahead: ahead[pos, end). Allocated on first use. */
  ahead: Uint8Array | null;
  aheadPtr: number;
  pos: number;
  end: number;
  /** The peer closed (after the bytes read ahead), or the socket failed: what a command needing more bytes gets. */
  ended: BulkFailure | null;
}

/** The first message: `posted[0]` counts the commands the main thread has posted so far. */
export interface BulkStart {
  posted: Int32Array;
}

/** Longest single poll() wait, ms: the thread's event loop turns at least this often. */
const MAX_WAIT_MS = 1000;

/**
 * Start the loop on this thread; it runs one poll() per event-loop turn. An error it cannot
 * handle (poll failing, a bug) closes every socket it owns and ends it with a `fatal` reply:
 * the main thread then fails every connection and does without the thread.
 */
function serve(start: BulkStart): void {
  const posted = start.posted;
  let received = 0;
  let dead = false;
  const c = load();
  const errnoPtr = c.__errno_location()!;
  const errno = () => read.i32(errnoPtr, 0);
  const wakeFd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd < 0) throw new Error(`eventfd failed: ${errnoName(errno())}`);
  // Pointers are taken at each call, never kept apart from their array: an array whose only use
  // was an earlier ptr() is garbage to the collector, and the kernel then writes into freed memory.
  const buf = new Uint8Array(BUF_BYTES);
  const scratch = new BigInt64Array(1);
  const intOut = new Int32Array(2);
  const socks = new Map<number, Sock>();
  let pfd = new Int32Array(2 * 16);
  const order: Sock[] = [];

  const post = (r: BulkReply, transfer: ArrayBuffer[] = []) => scope.postMessage(r, transfer);
  const finish = (s: Sock, extra: { data?: Uint8Array; n?: number } = {}) => {
    s.cmd = null;
    s.deadline = Infinity;
    post({ id: s.id, ok: true, ...extra }, extra.data ? [extra.data.buffer as ArrayBuffer] : []);
  };
  /** Fail the command in flight (if any), close the socket, reply `closed`. */
  const fail = (s: Sock, f: BulkFailure) => {
    if (s.cmd) post({ id: s.id, ok: false, fail: f });
    s.cmd = null;
    if (s.fd >= 0) c.close(s.fd);
    s.fd = -1;
    socks.delete(s.id);
    post({ id: s.id, closed: true });
  };
  const sysFailure = (code: "SOCKET" | "FILE", n: number): BulkFailure => ({ code, errno: errnoName(n), errnoNumber: n });

  /** The idle read deadline restarts: the thread waits on the socket again (a file write is not the peer's silence). */
  const waiting = (s: Sock) => {
    if (s.idleMs > 0) s.deadline = performance.now() + s.idleMs;
  };

  const got = (s: Sock, n: number) => {
    s.meter[0] += n;
    s.meter[1] = Date.now();
    waiting(s);
  };

  /** recv() into `p`: bytes received, 0 when none for now; sets s.ended at EOF or on an error. */
  const receive = (s: Sock, p: number, max: number): number => {
    for (;;) {
      const n = c.recv(s.fd, p, max, 0);
      if (n > 0) {
        got(s, n);
        return n;
      }
      if (n === 0) {
        s.ended = { code: "CLOSED" };
        return 0;
      }
      const e = errno();
      if (e === EINTR) continue;
      if (e !== EAGAIN) s.ended = sysFailure("SOCKET", e);
      return 0;
    }
  };

  /** Write n bytes at `p` to the file; false (after failing `s`) when the write failed. */
  const writeFile = (s: Sock, fd: number, p: number, n: number): boolean => {
    let off = 0;
    while (off < n) {
      const w = c.write(fd, p + off, n - off);
      if (w < 0) {
        const e = errno();
        if (e === EINTR) continue;
        fail(s, sysFailure("FILE", e));
        return false;
      }
      off += w;
    }
    return true;
  };

  /** Read ahead into the connection's own buffer (no command, or a read waiting). */
  const readAhead = (s: Sock) => {
    if (!s.ahead) {
      s.ahead = new Uint8Array(READ_AHEAD);
      s.aheadPtr = ptr(s.ahead);
    }
    if (s.pos === s.end) s.pos = s.end = 0;
    else if (s.end === READ_AHEAD && s.pos > 0) {
      s.ahead.copyWithin(0, s.pos, s.end);
      s.end -= s.pos;
      s.pos = 0;
    }
    if (s.end < READ_AHEAD) s.end += receive(s, s.aheadPtr + s.end, READ_AHEAD - s.end);
  };

  /** Make progress on the command in flight of `s` (its socket is ready, or may be). */
  const step = (s: Sock) => {
    const cmd = s.cmd;
    if (!cmd) return readAhead(s);
    switch (cmd.op) {
      case "open": {
        intOut[0] = 0;
        intOut[1] = 4;
        if (c.getsockopt(s.fd, SOL_SOCKET, SO_ERROR, ptr(intOut), ptr(intOut, 4)) < 0) return fail(s, sysFailure("SOCKET", errno()));
        if (intOut[0] !== 0) return fail(s, sysFailure("SOCKET", intOut[0]));
        s.meter[1] = Date.now();
        return finish(s);
      }
      case "write": {
        const d = cmd.data;
        while (s.sent < d.length) {
          const w = c.send(s.fd, ptr(d, s.sent), d.length - s.sent, MSG_NOSIGNAL);
          if (w < 0) {
            const e = errno();
            if (e === EINTR) continue;
            if (e === EAGAIN) return;
            return fail(s, sysFailure("SOCKET", e));
          }
          s.sent += w;
        }
        return finish(s);
      }
      case "read": {
        if (s.pos === s.end && !s.ended) readAhead(s);
        if (s.pos < s.end) {
          let n = Math.min(cmd.max, s.end - s.pos);
          if (cmd.until !== undefined) {
            const at = s.ahead!.subarray(s.pos, s.pos + n).indexOf(cmd.until);
            if (at >= 0) n = at + 1;
          }
          const data = s.ahead!.slice(s.pos, s.pos + n);
          s.pos += n;
          return finish(s, { data });
        }
        if (s.ended) return fail(s, s.ended);
        return;
      }
      case "file": {
        if (s.pos < s.end && s.left > 0) {
          const n = Math.min(s.left, s.end - s.pos);
          if (!writeFile(s, cmd.fd, s.aheadPtr + s.pos, n)) return;
          waiting(s);
          s.pos += n;
          s.left -= n;
          s.meter[2] += n;
        }
        for (let turn = 0; s.left > 0 && turn < READS_PER_TURN && !s.ended; turn++) {
          const n = receive(s, ptr(buf), Math.min(s.left, BUF_BYTES));
          if (n === 0) break;
          if (!writeFile(s, cmd.fd, ptr(buf), n)) return;
          waiting(s);
          s.left -= n;
          s.meter[2] += n;
          // A short read means the socket is drained for now: back to poll().
          if (n < BUF_BYTES) break;
        }
        if (s.left === 0) return finish(s);
        if (s.ended) return fail(s, s.ended);
        return;
      }
      case "avail": {
        intOut[0] = 0;
        if (!s.ended && c.ioctl(s.fd, FIONREAD, ptr(intOut)) < 0) return fail(s, sysFailure("SOCKET", errno()));
        return finish(s, { n: s.end - s.pos + (s.ended ? 0 : intOut[0]) });
      }
    }
  };

  const open = (cmd: Extract<BulkCmd, { op: "open" }>) => {
    const v6 = cmd.addr.length === 16;
    const fd = c.socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const s: Sock = { id: cmd.id, fd, meter: cmd.meter, cmd: { op: "open" }, deadline: Infinity, idleMs: 0, sent: 0, left: 0, ahead: null, aheadPtr: 0, pos: 0, end: 0, ended: null };
    socks.set(s.id, s);
    if (fd < 0) return fail(s, sysFailure("SOCKET", errno()));
    intOut[0] = 1;
    c.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, ptr(intOut), 4);
    const sa = sockaddr(cmd.addr, cmd.port);
    if (c.connect(fd, ptr(sa), sa.length) === 0) return finish(s);
    const e = errno();
    if (e !== EINPROGRESS && e !== EINTR) return fail(s, sysFailure("SOCKET", e));
    if (cmd.ms > 0) s.deadline = performance.now() + cmd.ms;
  };

  /** Start one command. */
  const begin = (cmd: BulkCmd): void => {
    if (cmd.op === "open") return open(cmd);
    const s = socks.get(cmd.id);
    if (!s) {
      // Closed here already (its failure was replied): only a command sent before the main
      // thread learnt of it gets here.
      if (cmd.op !== "close") post({ id: cmd.id, ok: false, fail: { code: "CLOSED" } });
      return;
    }
    if (cmd.op === "close") return fail(s, { code: cmd.code });
    s.cmd = cmd;
    s.deadline = Infinity;
    s.idleMs = 0;
    s.sent = 0;
    if (cmd.op === "read" || cmd.op === "file") {
      s.idleMs = cmd.ms;
      if (cmd.ms > 0) s.deadline = performance.now() + cmd.ms;
    } else if (cmd.op === "write" && cmd.ms > 0) s.deadline = performance.now() + cmd.ms;
    if (cmd.op === "file") {
      s.meter[2] = 0;
      s.left = cmd.n - cmd.head.length;
      if (cmd.head.length > 0) {
        if (!writeFile(s, cmd.fd, ptr(cmd.head), cmd.head.length)) return;
        s.meter[2] = cmd.head.length;
      }
    }
    step(s);
  };

  /**
   * The end of the thread: every socket it owns is closed (the peers see it; terminating a
   * Worker would not close them), then `fatal`. The eventfd stays open: the main thread may
   * still be writing to it.
   */
  const die = (err: unknown) => {
    dead = true;
    scope.onmessage = null;
    for (const s of socks.values()) if (s.fd >= 0) c.close(s.fd);
    socks.clear();
    scope.postMessage({ fatal: (err as Error)?.message ?? String(err) }, []);
  };

  scope.onmessage = (e: MessageEvent) => {
    received++;
    if (dead) return;
    try {
      begin(e.data as BulkCmd);
    } catch (err) {
      die(err);
    }
  };

  /** One turn: poll every socket with work (and the eventfd), make progress, fail what is past its deadline. */
  const turn = () => {
    // pollfd: { int fd; short events; short revents }: two int32 per entry, revents in the high half.
    if (pfd.length < 2 * (socks.size + 1)) pfd = new Int32Array(4 * (socks.size + 1));
    order.length = 0;
    pfd[0] = wakeFd;
    pfd[1] = POLLIN;
    let k = 1;
    let until = Infinity;
    for (const s of socks.values()) {
      const op = s.cmd?.op;
      let events = 0;
      if (op === "open" || op === "write") events = POLLOUT;
      else if (op === "read" || op === "file") events = POLLIN;
      else if (!op && !s.ended && s.end - s.pos < READ_AHEAD) events = POLLIN;
      if (!events) continue;
      pfd[2 * k] = s.fd;
      pfd[2 * k + 1] = events;
      order[k - 1] = s;
      k++;
      if (s.deadline < until) until = s.deadline;
    }
    // A command posted and not received yet: do not block (it arrives once this turn ends).
    const behind = Atomics.load(posted, 0) !== received;
    const wait = behind ? 0 : Math.min(MAX_WAIT_MS, until === Infinity ? MAX_WAIT_MS : Math.max(0, Math.ceil(until - performance.now())));
    const r = c.poll(ptr(pfd), k, wait);
    // A deadline fails a socket only when poll() returned after it and found the socket idle:
    // time the thread spent on other sockets or on a slow file write is not the peer's silence.
    const returned = performance.now();
    if (r < 0) {
      const e = errno();
      if (e !== EINTR) throw new Error(`poll failed: ${errnoName(e)}`);
    }
    const ready = new Set<Sock>();
    if (r > 0) {
      if (pfd[1] >>> 16 !== 0) c.read(wakeFd, ptr(scratch), 8);
      for (let i = 1; i < k; i++) {
        const s = order[i - 1];
        // A close command may have ended it meanwhile (its fd number may even be reused).
        if (pfd[2 * i + 1] >>> 16 !== 0 && socks.get(s.id) === s && s.fd === pfd[2 * i]) {
          ready.add(s);
          step(s);
        }
      }
    }
    const now = performance.now();
    for (const s of socks.values()) {
      if (!s.cmd || now < s.deadline) continue;
      // Past its deadline only while the thread was busy: poll() decides on the next turn.
      if (ready.has(s) || s.deadline > returned) continue;
      const op = s.cmd.op;
      fail(s, { code: op === "open" ? "CONNECT_TIMEOUT" : op === "write" ? "WRITE_TIMEOUT" : "READ_TIMEOUT" });
    }
    setImmediate(loop);
  };
  const loop = () => {
    if (dead) return;
    try {
      turn();
    } catch (err) {
      die(err);
    }
  };
  post({ ready: true, wakeFd });
  setImmediate(loop);
}

/** struct sockaddr_in (16 bytes) or sockaddr_in6 (28 bytes). */
function sockaddr(addr: Uint8Array, port: number): Uint8Array {
  const v6 = addr.length === 16;
  const sa = new Uint8Array(v6 ? 28 : 16);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, v6 ? AF_INET6 : AF_INET, true);
  dv.setUint16(2, port, false);
  sa.set(addr, v6 ? 8 : 4);
  return sa;
}

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([k, v]) => [v as number, k]));
/** "ECONNRESET" for 104, from the runtime's own table. */
function errnoName(n: number): string {
  return ERRNO_NAMES.get(n) ?? `errno ${n}`;
}

/** This Worker's global scope (the first message is a BulkStart, every later one a BulkCmd). */
const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(m: BulkReply, transfer: ArrayBuffer[]): void;
};

if (!isMainThread) {
  scope.onmessage = (e: MessageEvent) => {
    scope.onmessage = null;
    try {
      serve(e.data as BulkStart);
    } catch (err) {
      scope.postMessage({ fatal: (err as Error)?.message ?? String(err) }, []);
    }
  };
}
