/**
 * The kernel's TCP socket table over sock_diag netlink (Linux): list sockets with their tcp_info
 * (time since the last data received, bytes received, receive queue) and destroy one
 * (SOCK_DESTROY, as `ss -K` does). Spoken directly through libc with bun:ffi: no process is
 * spawned per look (see the README's `kvr guard` section for the measurement behind the choice).
 *
 * Every call is synchronous: a netlink dump is answered by the kernel while we read it, never
 * by the network, and the socket has a 2 s receive deadline in case the kernel does not answer.
 */
import { FFIType, ptr, read } from "bun:ffi";
import { openLibc } from "./libc.ts";
import { formatIp, parseIp } from "./ip.ts";

export { canonicalIp, formatIp, parseIp } from "./ip.ts";

/** TCP states as the kernel numbers them. */
export const TCP_STATE = { ESTABLISHED: 1, LISTEN: 10 } as const;

/** One TCP socket as the kernel reports it. */
export interface TcpSocket {
  family: 4 | 6;
  /** Kernel TCP state (TCP_STATE). */
  state: number;
  /** Local and remote address; an IPv4-mapped IPv6 address is given as plain IPv4. */
  local: { host: string; port: number };
  remote: { host: string; port: number };
  /** The socket's inode: what /proc/<pid>/fd links to (`socket:[inode]`). */
  inode: number;
  /** Bytes received and not yet read by the owning process (Recv-Q). */
  recvQ: number;
  /** Bytes written by the owning process and not yet acknowledged by the peer (Send-Q). */
  sendQ: number;
  /** Milliseconds since data was last received (tcpi_last_data_recv); null without tcp_info. */
  lastRecvMs: number | null;
  /** Bytes received over the socket's life (tcpi_bytes_received); null when the kernel does not report it. */
  bytesReceived: number | null;
  /** The receive window the peer offered last (tcpi_snd_wnd); null when the kernel does not report it. */
  sndWnd: number | null;
  /** The receive window this socket advertised last (tcpi_rcv_wnd, Linux 6.2+); 0 = the peer may send nothing; null when not reported. */
  rcvWnd: number | null;
  /** The kernel's id of the socket (addresses, ports, interface, cookie): what destroy() names. */
  readonly id: Uint8Array;
}

/** Which sockets to list. */
export interface TcpQuery {
  /** Kernel TCP states (default: ESTABLISHED). */
  states?: number[];
  /** Local port (0 = any). */
  sport?: number;
  /** Remote port (0 = any). */
  dport?: number;
  /** Only sockets whose remote end is one of these (host = an IP address, port). */
  remotes?: Array<{ host: string; port: number }>;
}

/** An open sock_diag channel. */
export interface SockDiag {
  /** IPv4 and IPv6 TCP sockets matching the query, in this network namespace. */
  tcp(q?: TcpQuery): TcpSocket[];
  /** The socket as it is now (a lookup by its id: no walk of the table); null once it is gone. */
  get(s: TcpSocket): TcpSocket | null;
  /** Destroy one socket: 0 when done, else the kernel's errno (EPERM, EOPNOTSUPP, ENOENT, ...). */
  destroy(s: TcpSocket): number;
  close(): void;
}

/** errno values the callers name. */
export const ERRNO = { EPERM: 1, ENOENT: 2, EINTR: 4, EACCES: 13, EINVAL: 22, EOPNOTSUPP: 95 } as const;

/** A short name for an errno ("EPERM"), or "errno N". */
export function errnoName(n: number): string {
  return Object.entries(ERRNO).find(([, v]) => v === n)?.[0] ?? `errno ${n}`;
}

const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0x80000;
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const SOCK_DESTROY = 21;
const NLM_F_REQUEST = 1;
const NLM_F_ACK = 4;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const IPPROTO_TCP = 6;
const INET_DIAG_REQ_BYTECODE = 1;
const INET_DIAG_INFO = 2;
const INET_DIAG_BC_JMP = 1;
const INET_DIAG_BC_D_COND = 8;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
/** nlmsghdr (16) + inet_diag_req_v2 (56). */
const REQ_LEN = 72;
/** Offsets in inet_diag_msg (after the nlmsghdr) and in tcp_info. */
const MSG_LEN = 72;
const TI_LAST_DATA_RECV = 52;
const TI_BYTES_RECEIVED = 128;
const TI_SND_WND = 228;
const TI_RCV_WND = 232;

let libc: ReturnType<typeof load> | null = null;
function load() {
  return openLibc({
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    sendto: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i64 },
    recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
}

/** The error of a sock_diag channel that could not be opened or used. */
export class SockDiagError extends Error {
  constructor(
    message: string,
    readonly errno: number,
  ) {
    super(message);
    this.name = "SockDiagError";
  }
}

/** Open a sock_diag netlink channel. Throws SockDiagError where there is none (not Linux, no libc). */
export function openSockDiag(): SockDiag {
  if (process.platform !== "linux") throw new SockDiagError("sock_diag netlink needs Linux", 0);
  try {
    libc ??= load();
  } catch (e) {
    throw new SockDiagError((e as Error).message, 0);
  }
  const c = libc;
  const errno = () => read.i32(c.__errno_location()!, 0);
  const fd = c.socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    const e = errno();
    throw new SockDiagError(`cannot open a sock_diag netlink socket: ${errnoName(e)}`, e);
  }
  const tv = new BigInt64Array([2n, 0n]); // struct timeval: 2 s
  c.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, ptr(tv), 16);
  const kernel = new Uint8Array(12); // sockaddr_nl of the kernel: family, pad, pid 0, groups 0
  new DataView(kernel.buffer).setUint16(0, AF_NETLINK, true);
  const rbuf = new Uint8Array(64 * 1024);
  const rview = new DataView(rbuf.buffer);
  let seq = 0;
  let closed = false;

  const send = (msg: Uint8Array): number => {
    if (closed) throw new SockDiagError("sock_diag channel closed", 0);
    const s = ++seq;
    new DataView(msg.buffer, msg.byteOffset).setUint32(8, s, true);
    for (;;) {
      const n = Number(c.sendto(fd, ptr(msg), msg.length, 0, ptr(kernel), kernel.length));
      if (n === msg.length) return s;
      const e = n < 0 ? errno() : 0;
      if (e === ERRNO.EINTR) continue;
      throw new SockDiagError(`netlink send failed: ${errnoName(e)}`, e);
    }
  };

  /** Read replies to `s` until DONE or an ERROR/ACK; `each` gets every other message's payload offset and end. */
  const receive = (s: number, each: (off: number, end: number) => void): number => {
    for (;;) {
      const n = Number(c.recv(fd, ptr(rbuf), rbuf.length, 0));
      if (n < 0) {
        const e = errno();
        if (e === ERRNO.EINTR) continue;
        throw new SockDiagError(`netlink receive failed: ${errnoName(e)}`, e);
      }
      let off = 0;
      while (off + 16 <= n) {
        const len = rview.getUint32(off, true);
        const type = rview.getUint16(off + 4, true);
        const mseq = rview.getUint32(off + 8, true);
        if (len < 16 || off + len > n) break;
        if (mseq === s) {
          if (type === NLMSG_DONE) return 0;
          if (type === NLMSG_ERROR) return -rview.getInt32(off + 16, true) || 0;
          each(off + 16, off + len);
        }
        off += (len + 3) & ~3;
      }
    }
  };

  return {
    tcp(q: TcpQuery = {}): TcpSocket[] {
      const out: TcpSocket[] = [];
      const states = (q.states ?? [TCP_STATE.ESTABLISHED]).reduce((m, st) => m | (1 << st), 0);
      // One filter for both families (IPv4 conditions match IPv4-mapped IPv6 sockets too).
      const bc = q.remotes ? remotesBytecode(q.remotes) : null;
      if (bc && bc.length === 0) return [];
      for (const family of [AF_INET, AF_INET6]) {
        const attr = bc ? 4 + bc.length : 0;
        const msg = new Uint8Array(REQ_LEN + attr);
        const v = new DataView(msg.buffer);
        v.setUint32(0, msg.length, true);
        v.setUint16(4, SOCK_DIAG_BY_FAMILY, true);
        v.setUint16(6, NLM_F_REQUEST | NLM_F_DUMP, true);
        msg[16] = family;
        msg[17] = IPPROTO_TCP;
        msg[18] = 1 << (INET_DIAG_INFO - 1);
        v.setUint32(20, states >>> 0, true);
        v.setUint16(24, q.sport ?? 0, false);
        v.setUint16(26, q.dport ?? 0, false);
        if (bc) {
          v.setUint16(REQ_LEN, attr, true);
          v.setUint16(REQ_LEN + 2, INET_DIAG_REQ_BYTECODE, true);
          msg.set(bc, REQ_LEN + 4);
        }
        const err = receive(send(msg), (off, end) => out.push(parseMsg(rbuf, rview, off, end)));
        // A kernel without IPv6 has no AF_INET6 handler: nothing to list there.
        if (err !== 0 && !(family === AF_INET6 && (err === ERRNO.ENOENT || err === ERRNO.EINVAL || err === ERRNO.EOPNOTSUPP))) {
          throw new SockDiagError(`sock_diag dump failed: ${errnoName(err)}`, err);
        }
      }
      return out;
    },
    get(sock: TcpSocket): TcpSocket | null {
      let found: TcpSocket | null = null;
      const err = receive(send(exact(sock, SOCK_DIAG_BY_FAMILY)), (off, end) => (found = parseMsg(rbuf, rview, off, end)));
      if (err === ERRNO.ENOENT) return null;
      if (err !== 0) throw new SockDiagError(`sock_diag lookup failed: ${errnoName(err)}`, err);
      return found;
    },
    destroy(sock: TcpSocket): number {
      return receive(send(exact(sock, SOCK_DESTROY)), () => {});
    },
    close() {
      if (closed) return;
      closed = true;
      c.close(fd);
    },
  };
}

/**
 * A request naming one socket by its id as listed, cookie included (the kernel answers for that
 * socket or none), acknowledged.
 */
function exact(sock: TcpSocket, type: number): Uint8Array {
  const msg = new Uint8Array(REQ_LEN);
  const v = new DataView(msg.buffer);
  v.setUint32(0, msg.length, true);
  v.setUint16(4, type, true);
  v.setUint16(6, NLM_F_REQUEST | NLM_F_ACK, true);
  msg[16] = sock.family === 4 ? AF_INET : AF_INET6;
  msg[17] = IPPROTO_TCP;
  msg[18] = 1 << (INET_DIAG_INFO - 1);
  v.setUint32(20, 0xffffffff, true);
  msg.set(sock.id, 24);
  return msg;
}

function parseMsg(buf: Uint8Array, v: DataView, off: number, end: number): TcpSocket {
  const family = buf[off] === AF_INET ? 4 : 6;
  const alen = family === 4 ? 4 : 16;
  const sport = v.getUint16(off + 4, false);
  const dport = v.getUint16(off + 6, false);
  const src = buf.subarray(off + 8, off + 8 + alen);
  const dst = buf.subarray(off + 24, off + 24 + alen);
  let lastRecvMs: number | null = null;
  let bytesReceived: number | null = null;
  let sndWnd: number | null = null;
  let rcvWnd: number | null = null;
  let a = off + MSG_LEN;
  while (a + 4 <= end) {
    const len = v.getUint16(a, true);
    const type = v.getUint16(a + 2, true);
    if (len < 4) break;
    if (type === INET_DIAG_INFO) {
      if (len >= 4 + TI_LAST_DATA_RECV + 4) lastRecvMs = v.getUint32(a + 4 + TI_LAST_DATA_RECV, true);
      if (len >= 4 + TI_BYTES_RECEIVED + 8) bytesReceived = Number(v.getBigUint64(a + 4 + TI_BYTES_RECEIVED, true));
      if (len >= 4 + TI_SND_WND + 4) sndWnd = v.getUint32(a + 4 + TI_SND_WND, true);
      if (len >= 4 + TI_RCV_WND + 4) rcvWnd = v.getUint32(a + 4 + TI_RCV_WND, true);
    }
    a += (len + 3) & ~3;
  }
  return {
    family,
    state: buf[off + 1],
    local: { host: formatIp(src), port: sport },
    remote: { host: formatIp(dst), port: dport },
    inode: v.getUint32(off + 68, true),
    recvQ: v.getUint32(off + 56, true),
    sendQ: v.getUint32(off + 60, true),
    lastRecvMs,
    bytesReceived,
    sndWnd,
    rcvWnd,
    id: buf.slice(off + 4, off + 4 + 48),
  };
}

/**
 * An inet_diag filter program accepting sockets whose remote end is any of `remotes`, as `ss`
 * compiles `dst A or dst B`: each condition falls through to a jump to the end (accept) when it
 * holds, and skips past that jump to the next condition when it does not; the last one's miss
 * lands beyond the end (reject). IPv4 conditions also match IPv4-mapped IPv6 sockets (the
 * kernel does that). Hosts that are not IP addresses are skipped.
 */
export function remotesBytecode(remotes: Array<{ host: string; port: number }>): Uint8Array {
  const conds: Uint8Array[] = [];
  for (const r of remotes) {
    const ip = parseIp(r.host);
    if (!ip) continue;
    const v4 = ip.length === 4;
    const len = 4 + 8 + ip.length;
    const op = new Uint8Array(len);
    const v = new DataView(op.buffer);
    op[0] = INET_DIAG_BC_D_COND;
    op[1] = len; // yes: the next instruction
    v.setUint16(2, len + 4, true); // no: skip the jump that follows
    op[4] = v4 ? AF_INET : AF_INET6;
    op[5] = ip.length * 8; // prefix length: the whole address
    v.setInt32(8, r.port, true);
    op.set(ip, 12);
    conds.push(op);
  }
  const build = (i: number): Uint8Array => {
    if (i === conds.length - 1) return conds[i];
    const rest = build(i + 1);
    const out = new Uint8Array(conds[i].length + 4 + rest.length);
    out.set(conds[i], 0);
    const j = new DataView(out.buffer, conds[i].length, 4);
    out[conds[i].length] = INET_DIAG_BC_JMP;
    out[conds[i].length + 1] = 4;
    j.setUint16(2, rest.length + 4, true);
    out.set(rest, conds[i].length + 4);
    return out;
  };
  return conds.length ? build(0) : new Uint8Array(0);
}
