/**
 * Run by bulk-faults.test.ts in a process of its own (the thread's death disables bulk
 * connections for the rest of the process). Opens 3 bulk connections to its own server, leaves a
 * readToFile pending on each, then makes the thread's poll() fail (EINVAL: RLIMIT_NOFILE lowered
 * below the number of polled descriptors). Prints one JSON line: how the calls settled, how many
 * connections the server saw closed, and how many sockets this process still holds.
 */
import { dlopen, FFIType, ptr } from "bun:ffi";
import { mkdtempSync, openSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bulkConnect, listen, type Conn } from "../../lib/net/index.ts";

const libc = dlopen("libc.so.6", {
  getrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  setrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
}).symbols;
const RLIMIT_NOFILE = 7;
const sockets = () => readdirSync("/proc/self/fd").filter((f) => { try { return readlinkSync(`/proc/self/fd/${f}`).startsWith("socket:"); } catch { return false; } }).length;

let peerClosed = 0;
const srv = await listen("127.0.0.1", 0, async (c: Conn) => {
  c.closed.then(() => peerClosed++);
  try {
    await c.readLine();
    await c.write("100000\r\n" + "x".repeat(1000));
    await c.readLine(); // nothing more comes: waits for the replica's close
  } catch {}
}, { readMs: 0 });
const dir = mkdtempSync(join(tmpdir(), "kvr-bulk-death-"));
const pending: Array<Promise<string>> = [];
for (let i = 0; i < 3; i++) {
  const c = await bulkConnect("127.0.0.1", srv.port, { readMs: 0 });
  await c.write("GO\r\n");
  const n = Number(await c.readLine());
  pending.push(c.readToFile(n, openSync(join(dir, `f${i}`), "w")).then(() => "ok", (e) => String(e.code)));
}
await Bun.sleep(100);
const before = sockets();
const lim = new BigUint64Array(2);
libc.getrlimit(RLIMIT_NOFILE, ptr(lim));
const saved = lim.slice();
lim[0] = 3n;
libc.setrlimit(RLIMIT_NOFILE, ptr(lim));
const settled = await Promise.race([Promise.all(pending), Bun.sleep(5000).then(() => "hung")]);
libc.setrlimit(RLIMIT_NOFILE, ptr(saved));
await Bun.sleep(1000);
console.log(JSON.stringify({ settled, peerClosed, socketsBefore: before, socketsAfter: sockets() }));
rmSync(dir, { recursive: true, force: true });
process.exit(0);
