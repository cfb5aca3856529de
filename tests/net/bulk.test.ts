/**
 * Bulk connections (lib/net/bulk.ts): the socket → file path the replica's full sync takes on
 * Linux. The same promises as Conn, checked through it: exact bytes, idle read deadline, instant
 * abort, peer close/reset counted, a failed file write reported, the fd free once a call settled.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bulkAvailable, bulkConnect, listen, type BulkConn, type Conn, type NetError, type Server } from "../../lib/net/index.ts";
import { failure } from "../helpers/errors.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const linux = process.platform === "linux";

async function server(onConn: (c: Conn) => void): Promise<Server> {
  const s = await listen("127.0.0.1", 0, onConn, { readMs: 0 });
  cleanups.push(() => s.close(50));
  return s;
}

/** A temp file opened for writing; removed after the test. */
function tempFile(): { path: string; fd: number } {
  const dir = mkdtempSync(join(tmpdir(), "kvr-bulk-"));
  const path = join(dir, "f.tmp");
  const fd = openSync(path, "w");
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return { path, fd };
}

/** Connect, send GO, read the size line: the replica's exchange before a file. */
async function start(port: number, opts: { readMs?: number; signal?: AbortSignal } = {}): Promise<{ c: BulkConn; n: number }> {
  const c = await bulkConnect("127.0.0.1", port, opts);
  cleanups.push(() => c.destroy());
  await c.write("GO\r\n");
  return { c, n: Number(await c.readLine()) };
}

const payload = (n: number) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 2654435761) >>> 24;
  return b;
};

test.if(linux)("on Linux the bulk thread runs (the replica's full sync uses it)", async () => {
  expect(await bulkAvailable()).toBe(true);
});

describe.if(linux)("readToFile", () => {
  test("exact bytes in order into the fd, the size line's neighbours untouched, the rest counted by available()", async () => {
    const data = payload(5 * 1024 * 1024 + 17);
    const srv = await server(async (s) => {
      await s.readLine();
      // Size line, the first bytes and (later) the trailer in one write: the first read takes some file bytes.
      await s.write(Buffer.concat([Buffer.from(`${data.length}\r\n`), data.subarray(0, 1000)]));
      await s.write(data.subarray(1000));
      await s.write("tail!");
    });
    const { c, n } = await start(srv.port);
    expect(n).toBe(data.length);
    const f = tempFile();
    await c.readToFile(n, f.fd);
    closeSync(f.fd);
    expect(c.fileBytes).toBe(n);
    expect(readFileSync(f.path).equals(data)).toBe(true);
    const t0 = Date.now();
    while ((await c.available()) < 5 && Date.now() - t0 < 2000) await Bun.sleep(10);
    expect(await c.available()).toBe(5);
    expect(c.bytesRead).toBe(`${n}\r\n`.length + n + 5);
  });

  test("a 3 s idle read deadline fires in [2.5, 4.5] s while a file is half received; the half is in the file", async () => {
    const srv = await server(async (s) => {
      await s.readLine();
      await s.write(`1000000\r\n`);
      await s.write(payload(300_000));
      // Then silence, the connection open.
    });
    const { c, n } = await start(srv.port, { readMs: 3000 });
    const f = tempFile();
    const { err, ms } = await failure(c.readToFile(n, f.fd));
    closeSync(f.fd);
    expect(err.code).toBe("READ_TIMEOUT");
    expect(ms).toBeGreaterThanOrEqual(2500);
    expect(ms).toBeLessThanOrEqual(4500);
    expect(statSync(f.path).size).toBe(300_000);
    expect(c.isClosed).toBe(true);
  });

  test("abort mid-file: ABORTED at once, the socket closed (the peer sees it), later calls fail ABORTED", async () => {
    let peerClosed: Promise<unknown> = Promise.resolve();
    const srv = await server(async (s) => {
      await s.readLine();
      await s.write(`100000000\r\n`);
      await s.write(payload(2_000_000));
      peerClosed = s.readLine().catch((e: NetError) => e.code);
    });
    const ac = new AbortController();
    const { c, n } = await start(srv.port, { readMs: 0, signal: ac.signal });
    const f = tempFile();
    const p = c.readToFile(n, f.fd);
    while (c.fileBytes < 2_000_000) await Bun.sleep(5);
    const t0 = performance.now();
    ac.abort();
    const { err } = await failure(p);
    const ms = performance.now() - t0;
    // The fd is the caller's again once the call settled.
    closeSync(f.fd);
    expect(err.code).toBe("ABORTED");
    expect(ms).toBeLessThan(250);
    expect(await Promise.race([peerClosed, Bun.sleep(2000).then(() => "still open")])).toBe("CLOSED");
    expect((await failure(c.write("x"))).err.code).toBe("ABORTED");
    await c.closed;
  });

  test("peer FIN mid-file → CLOSED naming the bytes still expected; peer RST → RESET", async () => {
    const srv = await server(async (s) => {
      const what = await s.readLine();
      await s.write(`1000\r\n`);
      await s.write(payload(400));
      if (what === "GO") s.destroy();
    });
    const { c, n } = await start(srv.port);
    const f = tempFile();
    const { err } = await failure(c.readToFile(n, f.fd));
    expect(err.code).toBe("CLOSED");
    expect(err.message).toContain("600 of 1000 bytes still expected");
    closeSync(f.fd);

    const rst = await server(async (s) => {
      await s.readLine();
      await s.write(`1000\r\n`);
      await s.write(payload(400));
      await Bun.sleep(50);
      s.destroy(true);
    });
    const r = await start(rst.port);
    const g = tempFile();
    expect((await failure(r.c.readToFile(r.n, g.fd))).err.code).toBe("RESET");
    closeSync(g.fd);
  });

  test("a file write that fails (fd not open for writing) is the file-system error, and the connection is closed", async () => {
    const srv = await server(async (s) => {
      await s.readLine();
      await s.write(`100000\r\n`);
      await s.write(payload(100_000));
    });
    const { c, n } = await start(srv.port);
    const f = tempFile();
    closeSync(f.fd);
    writeFileSync(f.path, "");
    const ro = openSync(f.path, "r");
    const e = await c.readToFile(n, ro).then(
      () => null,
      (x: NodeJS.ErrnoException) => x,
    );
    closeSync(ro);
    expect(e?.code).toBe("EBADF");
    expect(c.isClosed).toBe(true);
  });

  test("many connections at once, each into its own file, then all destroyed mid-transfer: no crash, the thread serves new ones", async () => {
    const data = payload(3_000_000);
    const srv = await server(async (s) => {
      await s.readLine();
      await s.write(`${data.length}\r\n`);
      await s.write(data).catch(() => {});
    });
    const port = srv.port;
    for (let round = 0; round < 5; round++) {
      const conns = await Promise.all(Array.from({ length: 8 }, () => start(port)));
      const files = conns.map(() => tempFile());
      const done = conns.map(({ c, n }, i) => c.readToFile(n, files[i].fd).then(() => "ok", (e: NetError) => e.code));
      if (round % 2 === 1) {
        await Bun.sleep(2);
        for (const { c } of conns) c.destroy();
      }
      const results = await Promise.all(done);
      for (const f of files) closeSync(f.fd);
      if (round % 2 === 0) {
        expect(results).toEqual(Array(8).fill("ok"));
        for (const f of files) expect(readFileSync(f.path).equals(data)).toBe(true);
      } else for (const r of results) expect(["ok", "CLOSED"]).toContain(r);
      Bun.gc(true);
    }
  }, 30_000);
});
