/**
 * Bulk connections under faults of the thread itself and of the file it writes: its death must
 * close every socket it owned; a file that takes writes slowly is not a silent peer.
 */
import { afterEach, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bulkConnect, listen, type Conn } from "../../lib/net/index.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
const linux = process.platform === "linux";

test.if(linux)("the thread dies with calls pending: every call fails and every socket is closed (the peer sees it)", async () => {
  const p = Bun.spawn([process.execPath, join(import.meta.dir, "bulk-death.ts")], { stdout: "pipe", stderr: "inherit" });
  cleanups.push(() => p.kill("SIGKILL"));
  const r = JSON.parse((await new Response(p.stdout).text()).trim());
  expect(r.settled).toEqual(["IO", "IO", "IO"]);
  // The server saw each bulk connection end, and the 3 bulk sockets and the 3 accepted ones are gone.
  expect(r.peerClosed).toBe(3);
  expect(r.socketsAfter).toBeLessThanOrEqual(r.socketsBefore - 6);
}, 15_000);

test.if(linux)("a file that takes writes slowly does not fire the idle read deadline while the peer has sent everything", async () => {
  const N = 192 * 1024;
  // After 300 ms (the file command is waiting), 128 KiB at once, then 8 KiB every 250 ms: the peer
  // is never idle for the 1 s deadline.
  const srv = await listen("127.0.0.1", 0, async (c: Conn) => {
    try {
      await Bun.sleep(300);
      await c.write(Buffer.alloc(128 * 1024, 7));
      for (let i = 0; i < 8; i++) {
        await Bun.sleep(250);
        await c.write(Buffer.alloc(8 * 1024, 7));
      }
    } catch {}
  }, { readMs: 0 });
  cleanups.push(() => srv.close(50));
  const dir = mkdtempSync(join(tmpdir(), "kvr-bulk-slow-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const fifo = join(dir, "fifo");
  Bun.spawnSync(["mkfifo", fifo]);
  // The "disk": a 64 KiB pipe drained at 32 KiB/s, so writing the first 128 KiB lasts ~2 s
  // and more bytes are due after it (the file is not complete yet).
  const reader = spawn("python3", ["-c", `import time\nf=open(${JSON.stringify(fifo)},'rb')\nwhile f.read(16384): time.sleep(0.5)`]);
  cleanups.push(() => reader.kill("SIGKILL"));
  const fd = openSync(fifo, constants.O_WRONLY);
  cleanups.push(() => closeSync(fd));
  // A second connection on the same thread, its peer sending 1 KiB every 200 ms for 3 s: while
  // the thread is held by the slow file above, its deadline must not fire either.
  const steady = await listen("127.0.0.1", 0, async (c: Conn) => {
    try {
      for (let i = 0; i < 15; i++) {
        await Bun.sleep(200);
        await c.write(Buffer.alloc(1024, 1));
      }
    } catch {}
  }, { readMs: 0 });
  cleanups.push(() => steady.close(50));
  const out = openSync(join(dir, "steady"), "w");
  cleanups.push(() => closeSync(out));
  const c = await bulkConnect("127.0.0.1", srv.port, { readMs: 1000 });
  cleanups.push(() => c.destroy());
  const c2 = await bulkConnect("127.0.0.1", steady.port, { readMs: 1000 });
  cleanups.push(() => c2.destroy());
  const [r, r2] = await Promise.all([c, c2].map((x, i) => x.readToFile(i === 0 ? N : 15 * 1024, i === 0 ? fd : out).then(() => "ok", (e) => `${e.code}: ${e.message}`)));
  expect({ r, r2 }).toEqual({ r: "ok", r2: "ok" });
}, 15_000);
