import { afterEach, describe, expect, test } from "bun:test";
import { connect, listen, listenNoAccept, NetError, type Conn, type Server } from "../../lib/net/index.ts";
import { fromSystemError } from "../../lib/net/errors.ts";
import { RespDecoder, replyText } from "../../lib/resp/index.ts";
import { closedPort } from "../helpers/ports.ts";
import { failure } from "../helpers/errors.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** An IPv6 wildcard listener can be opened here (without IPv6 nothing is ever ::ffff:-mapped). */
const dualStack = await listen("::", 0, () => {}).then(
  (s) => s.close(0).then(() => true),
  () => false,
);

async function server(onConn: (c: Conn) => void = () => {}): Promise<Server> {
  const s = await listen("127.0.0.1", 0, onConn, { readMs: 0 });
  cleanups.push(() => s.close(50));
  return s;
}

describe("read deadline (idle)", () => {
  test("a 3 s read deadline on a silent peer fires in [2.5, 4.5] s with READ_TIMEOUT", async () => {
    const s = await server();
    const c = await connect("127.0.0.1", s.port, { readMs: 3000 });
    const { err, ms } = await failure(c.readLine());
    expect(err.code).toBe("READ_TIMEOUT");
    expect(ms).toBeGreaterThanOrEqual(2500);
    expect(ms).toBeLessThanOrEqual(4500);
    expect(c.isClosed).toBe(true);
  });

  test("a 500 ms read deadline fires in [0.4, 1.5] s", async () => {
    const s = await server();
    const c = await connect("127.0.0.1", s.port, { readMs: 500 });
    const { err, ms } = await failure(c.readExactly(10, () => {}));
    expect(err.code).toBe("READ_TIMEOUT");
    expect(ms).toBeGreaterThanOrEqual(400);
    expect(ms).toBeLessThanOrEqual(1500);
  });

  test("a peer trickling a byte every 200 ms for 2 s never trips a 1 s deadline", async () => {
    const s = await server(async (c) => {
      for (let i = 0; i < 10; i++) {
        await Bun.sleep(200);
        await c.write("x");
      }
    });
    const c = await connect("127.0.0.1", s.port, { readMs: 1000 });
    let got = 0;
    const t0 = performance.now();
    await c.readExactly(10, (b) => void (got += b.length));
    expect(got).toBe(10);
    expect(performance.now() - t0).toBeGreaterThan(1800);
  });
});

describe("connect", () => {
  test("a full accept queue makes connect hang until the connect deadline (CONNECT_TIMEOUT)", async () => {
    const hole = await listenNoAccept("127.0.0.1", 0);
    cleanups.push(() => hole.close());
    const { err, ms } = await failure(connect("127.0.0.1", hole.port, { connectMs: 700 }));
    expect(err.code).toBe("CONNECT_TIMEOUT");
    expect(ms).toBeGreaterThanOrEqual(600);
    expect(ms).toBeLessThanOrEqual(2000);
  });

  test("a refused port fails at once with REFUSED", async () => {
    const port = await closedPort();
    const { err, ms } = await failure(connect("127.0.0.1", port));
    expect(err.code).toBe("REFUSED");
    expect(ms).toBeLessThan(500);
  });

  test("resolver failures map to DNS (checked without sending a query anywhere)", () => {
    const e = Object.assign(new Error("getaddrinfo ENOTFOUND nowhere"), { code: "ENOTFOUND" });
    expect(fromSystemError(e, "nowhere:1", 0).code).toBe("DNS");
    expect(fromSystemError(Object.assign(new Error("x"), { code: "ECONNREFUSED" }), "h:1", 0).code).toBe("REFUSED");
    expect(fromSystemError(Object.assign(new Error("x"), { code: "ECONNRESET" }), "h:1", 5).bytesRead).toBe(5);
    // the errno name once, whether or not the message starts with it
    expect(fromSystemError(Object.assign(new Error("ECONNABORTED: software caused connection abort"), { code: "ECONNABORTED" }), "h:1", 0).message).toBe(
      "socket error with h:1: ECONNABORTED: software caused connection abort",
    );
    expect(fromSystemError(Object.assign(new Error("software caused connection abort"), { code: "ECONNABORTED" }), "h:1", 0).message).toBe(
      "socket error with h:1: ECONNABORTED software caused connection abort",
    );
  });

  test("remote and local addresses are exposed", async () => {
    const s = await server();
    const c = await connect("127.0.0.1", s.port);
    cleanups.push(() => c.destroy());
    expect(c.remoteAddress).toBe("127.0.0.1");
    expect(c.remotePort).toBe(s.port);
    expect(c.localPort).toBeGreaterThan(0);
    expect(c.peer).toBe(`127.0.0.1:${s.port}`);
  });
});

describe("abort settles every pending wait at once", () => {
  test("during connect", async () => {
    const hole = await listenNoAccept("127.0.0.1", 0);
    cleanups.push(() => hole.close());
    const ac = new AbortController();
    const p = connect("127.0.0.1", hole.port, { connectMs: 10_000, signal: ac.signal });
    await Bun.sleep(100);
    const t0 = performance.now();
    ac.abort();
    const { err } = await failure(p);
    expect(err.code).toBe("ABORTED");
    expect(performance.now() - t0).toBeLessThan(50);
  });

  test("during a blocked read", async () => {
    const s = await server();
    const ac = new AbortController();
    const c = await connect("127.0.0.1", s.port, { readMs: 10_000, signal: ac.signal });
    const p = c.readLine();
    await Bun.sleep(100);
    const t0 = performance.now();
    ac.abort();
    const { err } = await failure(p);
    expect(err.code).toBe("ABORTED");
    expect(performance.now() - t0).toBeLessThan(50);
    expect(c.isClosed).toBe(true);
    await c.closed;
  });

  test("during a blocked write (peer not reading, buffers full)", async () => {
    const s = await server((c) => c.pauseReading());
    const ac = new AbortController();
    const c = await connect("127.0.0.1", s.port, { writeMs: 10_000, signal: ac.signal });
    const block = Buffer.alloc(1 << 20, 1);
    let pending: Promise<void> | null = null;
    for (let i = 0; i < 200 && !pending; i++) {
      const w = c.write(block);
      const settled = await Promise.race([w.then(() => true), Bun.sleep(50).then(() => false)]);
      if (!settled) pending = w;
    }
    expect(pending).not.toBeNull();
    const t0 = performance.now();
    ac.abort();
    const { err } = await failure(pending!);
    expect(err.code).toBe("ABORTED");
    expect(performance.now() - t0).toBeLessThan(50);
    await c.closed;
  });

  /** A peer that sends `data` then closes (FIN); resolves once the client saw the whole close. */
  async function closedAfter(data: Buffer, signal: AbortSignal): Promise<Conn> {
    const s = await server(async (c) => {
      await c.write(data);
      c.end();
    });
    const c = await connect("127.0.0.1", s.port, { readMs: 10_000, signal });
    await c.closed;
    return c;
  }

  test("after the peer closed, an abort still wins: buffered lines and bytes are no longer served", async () => {
    const ac = new AbortController();
    const c = await closedAfter(Buffer.from("first\r\nsecond\r\n" + "x".repeat(1000)), ac.signal);
    expect(await c.readLine()).toBe("first");
    ac.abort();
    expect((await failure(c.readLine())).err.code).toBe("ABORTED");
    expect((await failure(c.readExactly(10, () => {}))).err.code).toBe("ABORTED");
    expect((await failure(c.readChunk())).err.code).toBe("ABORTED");
    expect((await failure(c.read(new RespDecoder()))).err.code).toBe("ABORTED");
    expect(c.pending).toBe(0);
  });

  test("after the peer closed, an abort cuts a sink short at once and no later chunk reaches it", async () => {
    const ac = new AbortController();
    // Several chunks (below the read high-water mark), all received and buffered before the abort.
    const c = await closedAfter(Buffer.alloc(512 << 10, 9), ac.signal);
    let calls = 0;
    let afterAbort = 0;
    const p = c.readExactly(512 << 10, () => {
      calls++;
      if (ac.signal.aborted) afterAbort++;
      return Bun.sleep(300); // a slow disk
    });
    while (calls === 0) await Bun.sleep(5);
    const t0 = performance.now();
    ac.abort();
    const { err } = await failure(p);
    expect(err.code).toBe("ABORTED");
    expect(performance.now() - t0).toBeLessThan(100);
    await Bun.sleep(400);
    expect(afterAbort).toBe(0);
    expect(calls).toBe(1);
  });

  test("destroy() after the peer closed: buffered bytes are no longer served, a raced sink is cut", async () => {
    const c = await closedAfter(Buffer.from("line\r\n" + "y".repeat(100)), new AbortController().signal);
    const slow = c.readExactly(100, () => Bun.sleep(300)).catch((e) => e as NetError);
    // readLine first would consume "line": destroy while the sink of the first piece still runs.
    await Bun.sleep(20);
    c.destroy();
    const err = await slow;
    expect((err as NetError).code).toBe("CLOSED");
    expect((await failure(c.readChunk())).err.code).toBe("CLOSED");
    expect((await failure(c.readLine())).err.message).toContain("closed locally");
  });

  test("an already-aborted signal fails connect without a socket", async () => {
    const s = await server();
    const ac = new AbortController();
    ac.abort();
    const { err } = await failure(connect("127.0.0.1", s.port, { signal: ac.signal }));
    expect(err.code).toBe("ABORTED");
  });
});

describe("peer close and write deadline", () => {
  test("peer FIN in the middle of readExactly → CLOSED with the byte count", async () => {
    const s = await server(async (c) => {
      await c.write(Buffer.alloc(1000, 7));
      c.end();
    });
    const c = await connect("127.0.0.1", s.port, { readMs: 5000 });
    let got = 0;
    const { err } = await failure(c.readExactly(5000, (b) => void (got += b.length)));
    expect(err.code).toBe("CLOSED");
    expect(err.bytesRead).toBe(1000);
    expect(got).toBe(1000);
  });

  test("peer RST → RESET", async () => {
    const s = await server(async (c) => {
      await c.write("abc");
      await Bun.sleep(20);
      c.destroy(true);
    });
    const c = await connect("127.0.0.1", s.port, { readMs: 5000 });
    const { err } = await failure(c.readExactly(100, () => {}));
    expect(err.code).toBe("RESET");
  });

  test("a peer that stops reading trips the write deadline (WRITE_TIMEOUT)", async () => {
    const s = await server((c) => c.pauseReading());
    const c = await connect("127.0.0.1", s.port, { writeMs: 500 });
    const block = Buffer.alloc(1 << 20, 1);
    const t0 = performance.now();
    let err: NetError | null = null;
    try {
      for (let i = 0; i < 500; i++) await c.write(block);
    } catch (e) {
      err = e as NetError;
    }
    expect(err?.code).toBe("WRITE_TIMEOUT");
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  test("flushed: false while a write that already resolved is still held in user space, true once it reached the kernel", async () => {
    let peer!: Conn;
    const s = await server((c) => {
      peer = c;
      c.pauseReading();
    });
    const c = await connect("127.0.0.1", s.port, { writeMs: 10_000 });
    cleanups.push(() => c.destroy());
    expect(c.flushed).toBe(true);
    // Small writes resolve at once while the socket takes them; once the kernel's buffers are
    // full a small write is queued by node:net (still referring to the caller's memory) and
    // resolves all the same. The caller must not reuse that memory yet: flushed says so.
    const small = Buffer.alloc(4096, 1);
    let heldAfterResolve = false;
    for (let i = 0; i < 20_000 && !heldAfterResolve; i++) {
      await c.write(small);
      if (!c.flushed) heldAfterResolve = true;
    }
    expect(heldAfterResolve).toBe(true);
    while (!peer) await Bun.sleep(5);
    // The peer reads everything: the held bytes reach the kernel.
    void (async () => {
      while ((await peer.readChunk()) !== null);
    })().catch(() => {});
    await c.drain();
    for (let i = 0; i < 500 && !c.flushed; i++) await Bun.sleep(10);
    expect(c.flushed).toBe(true);
  });
});

describe("lines, frames and backpressure", () => {
  test("readLine returns CRLF lines and enforces its max length with PROTOCOL", async () => {
    const s = await server(async (c) => {
      await c.write("hello\r\nworld\n" + "x".repeat(100) + "\r\n");
    });
    const c = await connect("127.0.0.1", s.port);
    expect(await c.readLine()).toBe("hello");
    expect(await c.readLine()).toBe("world");
    const { err } = await failure(c.readLine(50));
    expect(err.code).toBe("PROTOCOL");
  });

  test("a slow sink pauses the socket: buffered bytes stay bounded", async () => {
    const total = 32 << 20;
    const s = await server(async (c) => {
      const block = Buffer.alloc(256 << 10, 3);
      for (let sent = 0; sent < total; sent += block.length) await c.write(block);
    });
    const c = await connect("127.0.0.1", s.port, { readMs: 5000 });
    let maxPending = 0;
    let got = 0;
    let calls = 0;
    await c.readExactly(total, async (b) => {
      got += b.length;
      maxPending = Math.max(maxPending, c.pending);
      if (++calls % 16 === 0) await Bun.sleep(1);
    });
    expect(got).toBe(total);
    expect(maxPending).toBeLessThan(4 << 20);
  });

  const detached = (b: Buffer) => (b.buffer as ArrayBuffer).detached;

  /** Byte i of a pattern that shows reordering, loss and duplication. */
  const pattern = (from: number, n: number) => Buffer.from(Array.from({ length: n }, (_, k) => ((from + k) * 7 + ((from + k) >> 16)) & 255));

  test("readExactly with release: bytes exact and in order; each whole piece is freed once its sink resolved, and only then", async () => {
    const total = 8 << 20;
    const s = await server(async (c) => {
      for (let sent = 0, i = 0; sent < total; i++) {
        const n = Math.min(total - sent, 37_000 + ((i * 7919) % 300_000));
        await c.write(pattern(sent, n));
        sent += n;
        if (i % 9 === 0) await Bun.sleep(2);
      }
      await c.write("tail");
    });
    const c = await connect("127.0.0.1", s.port, { readMs: 5000 });
    cleanups.push(() => c.destroy());
    const pieces: Buffer[] = [];
    const copies: Buffer[] = [];
    let detachedInSink = 0;
    await c.readExactly(
      total,
      async (b) => {
        pieces.push(b);
        // Still usable while the sink works on it.
        if (detached(b)) detachedInSink++;
        copies.push(Buffer.from(b));
        await Bun.sleep(pieces.length % 5 === 0 ? 3 : 0);
      },
      { release: true },
    );
    expect(detachedInSink).toBe(0);
    expect(Buffer.concat(copies).equals(pattern(0, total))).toBe(true);
    // Every piece that was the whole of its memory was freed; one split off a larger read (the
    // last, whose memory the bytes after it still use) was not.
    const freed = pieces.filter(detached);
    const shared = pieces.filter((p) => !detached(p) && p.byteLength < p.buffer.byteLength);
    expect(freed.length).toBeGreaterThan(pieces.length / 2);
    expect(freed.length + shared.length).toBe(pieces.length);
    expect((await c.readBytes(4)).toString()).toBe("tail");
    // Without release nothing is freed.
    const kept: Buffer[] = [];
    const s2 = await server(async (x) => void (await x.write(Buffer.alloc(1 << 20, 1))));
    const c2 = await connect("127.0.0.1", s2.port, { readMs: 5000 });
    cleanups.push(() => c2.destroy());
    await c2.readExactly(1 << 20, async (b) => void kept.push(b));
    expect(kept.some(detached)).toBe(false);
  });

  test("readExactly with release: a peer FIN or RST in the middle ends it as without release (CLOSED with the count, RESET)", async () => {
    const fin = await server(async (c) => {
      await c.write(Buffer.alloc(300_000, 7));
      c.end();
    });
    const c = await connect("127.0.0.1", fin.port, { readMs: 5000 });
    cleanups.push(() => c.destroy());
    let got = 0;
    const { err } = await failure(c.readExactly(400_000, async (b) => void ((got += b.length), await Bun.sleep(20)), { release: true }));
    expect(err.code).toBe("CLOSED");
    expect(err.bytesRead).toBe(300_000);
    expect(got).toBe(300_000);
    const rst = await server(async (c) => {
      await c.write(Buffer.alloc(100_000, 1));
      await Bun.sleep(50);
      c.destroy(true);
    });
    const c2 = await connect("127.0.0.1", rst.port, { readMs: 5000 });
    cleanups.push(() => c2.destroy());
    const r = await failure(c2.readExactly(400_000, () => Bun.sleep(20), { release: true }));
    expect(r.err.code).toBe("RESET");
  });

  test("release: a piece whose sink was cut short by an abort is not freed (the sink may still use it)", async () => {
    const s = await server(async (c) => void (await c.write(Buffer.alloc(64 << 10, 7))));
    const ac = new AbortController();
    const c = await connect("127.0.0.1", s.port, { readMs: 5000, signal: ac.signal });
    const seen: Buffer[] = [];
    let finish!: () => void;
    const p = c.readExactly(
      64 << 10,
      (b) => {
        seen.push(b);
        return new Promise<void>((r) => (finish = r));
      },
      { release: true },
    );
    while (seen.length === 0) await Bun.sleep(5);
    ac.abort();
    expect((await failure(p)).err.code).toBe("ABORTED");
    finish();
    await Bun.sleep(10);
    expect(seen.length).toBe(1);
    expect(detached(seen[0])).toBe(false);
    expect(seen[0][0]).toBe(7);
  });
});

describe("replication reply modes on one buffered reader", () => {
  test("RESP value, bare line, size line, raw bytes and RESP again from a single write", async () => {
    const s = await server(async (c) => {
      await c.write("+OK\r\nchange.me.db\r\n5\r\nhello$4\r\nping\r\n");
    });
    const c = await connect("127.0.0.1", s.port);
    cleanups.push(() => c.destroy());
    expect(replyText(await c.read(new RespDecoder()))).toBe("OK");
    expect(await c.readLine()).toBe("change.me.db");
    expect(Number(await c.readLine())).toBe(5);
    expect((await c.readBytes(5)).toString()).toBe("hello");
    expect(replyText(await c.read(new RespDecoder()))).toBe("ping");
  });
});

describe("listen", () => {
  test("close() stops accepting and ends live connections", async () => {
    const s = await listen("127.0.0.1", 0, () => {}, { readMs: 0 });
    const c = await connect("127.0.0.1", s.port, { readMs: 5000 });
    await Bun.sleep(20);
    expect(s.connections.size).toBe(1);
    const t0 = performance.now();
    await s.close(200);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(await c.readChunk()).toBeNull();
    const { err } = await failure(connect("127.0.0.1", s.port));
    expect(err.code).toBe("REFUSED");
  });

  test.skipIf(!dualStack)("an IPv4 client of a dual-stack (::) server is seen at its IPv4 address, not ::ffff:-mapped", async () => {
    const accepted = Promise.withResolvers<Conn>();
    const s = await listen("::", 0, (c) => accepted.resolve(c), { readMs: 0 });
    cleanups.push(() => s.close(50));
    const c = await connect("127.0.0.1", s.port, { readMs: 0 });
    cleanups.push(() => c.destroy());
    const a = await accepted.promise;
    expect(a.remoteAddress).toBe("127.0.0.1");
    expect(a.localAddress).toBe("127.0.0.1");
    expect(a.peer).toBe(`127.0.0.1:${c.localPort}`);
  });

  test("accepted connections carry the server's read deadline", async () => {
    let seen: NetError | null = null;
    const done = Promise.withResolvers<void>();
    const s = await listen(
      "127.0.0.1",
      0,
      async (c) => {
        try {
          await c.readLine();
        } catch (e) {
          seen = e as NetError;
        }
        done.resolve();
      },
      { readMs: 300 },
    );
    cleanups.push(() => s.close(50));
    const c = await connect("127.0.0.1", s.port);
    cleanups.push(() => c.destroy());
    await done.promise;
    expect(seen!.code).toBe("READ_TIMEOUT");
  });

  test("stopAccepting refuses new connects while live ones stay; startAccepting resumes", async () => {
    const s = await server(async (c) => {
      for (;;) {
        const l = await c.readLine().catch(() => null);
        if (l === null) return;
        await c.write(l + "\r\n");
      }
    });
    const live = await connect("127.0.0.1", s.port);
    cleanups.push(() => live.destroy());
    await s.stopAccepting();
    await Bun.sleep(20);
    expect((await failure(connect("127.0.0.1", s.port))).err.code).toBe("REFUSED");
    await live.write("still here\r\n");
    expect(await live.readLine()).toBe("still here");
    await s.startAccepting();
    const again = await connect("127.0.0.1", s.port);
    again.destroy();
  });
});
