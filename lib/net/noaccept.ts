/**
 * A listening socket that never accepts: once its accept queue is full, the kernel drops new
 * SYNs and a connect() to it hangs until the client's own deadline. Used by the master's
 * `blackhole-accept` fault and by tests of connect deadlines. node:net always accepts, so this
 * goes through libc with bun:ffi (Linux, IPv4).
 */
import { FFIType, ptr } from "bun:ffi";
import net from "node:net";
import { NetError } from "./errors.ts";
import { openLibc } from "./libc.ts";

export interface NoAcceptListener {
  readonly port: number;
  /** Close the listening socket (queued connections are reset by the kernel). */
  close(): void;
}

let libc: ReturnType<typeof load> | null = null;
function load() {
  return openLibc({
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
  });
}

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;

/**
 * Listen on host:port (IPv4 literal) with backlog 0 and never accept. With `fill` (default true)
 * the accept queue is filled at once by a local connection, so every later connect hangs.
 */
export async function listenNoAccept(host: string, port: number, fill = true): Promise<NoAcceptListener> {
  if (!net.isIPv4(host)) throw new NetError("IO", `blackhole listener needs an IPv4 address, got ${host}`);
  libc ??= load();
  const c = libc;
  const fd = c.socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw new NetError("IO", "socket() failed for the blackhole listener");
  const one = new Int32Array([1]);
  c.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, ptr(one), 4);
  const sa = new Uint8Array(16);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, AF_INET, true);
  dv.setUint16(2, port, false);
  sa.set(host.split(".").map(Number), 4);
  if (c.bind(fd, ptr(sa), 16) !== 0 || c.listen(fd, 0) !== 0) {
    c.close(fd);
    throw new NetError("IO", `cannot listen on ${host}:${port} (address in use?)`);
  }
  const len = new Uint32Array([16]);
  c.getsockname(fd, ptr(sa), ptr(len));
  const bound = dv.getUint16(2, false);
  const fillers: net.Socket[] = [];
  let open = true;
  if (fill) {
    // Backlog 0 admits one queued connection on Linux; fill it so the next SYN is dropped. A
    // client may have taken the slot first: then the filler's own SYN is dropped and its connect
    // would wait minutes, so do not wait for it beyond a moment (the queue is full either way).
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 250);
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      const s = net.connect({ host, port: bound }, done);
      s.on("error", done);
      fillers.push(s);
    });
    await Bun.sleep(20);
  }
  return {
    port: bound,
    close() {
      if (!open) return;
      open = false;
      for (const s of fillers) s.destroy();
      c.close(fd);
    },
  };
}
