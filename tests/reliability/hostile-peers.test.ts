/**
 * Hostile peers. A scripted master lying to a real `kvr replica` (random names, sizes, size-line
 * garbage, early EOF, extra bytes; fast-check): clear errors, nothing outside --dir, disk usage
 * within what was announced even with many replicas at once. Hostile clients against kvr master
 * and the replica's admin port: huge headers, huge arrays, unterminated lines, thousands of idle
 * connections (dropped by the master's idle timeout while a real replica syncs), commands
 * before AUTH.
 */
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, listen, type Conn, type Server } from "../../lib/net/index.ts";
import { bareLine, call, encodeCommand, OK, replyText, simple, error } from "../../lib/resp/index.ts";
import { tempDir } from "../helpers/kvr.ts";
import { serveCommands } from "../helpers/serve.ts";
import { command, diffDir, dirBytes, fdCount, generatedExpected, rssBytes, startKvr, until, type Proc } from "./harness.ts";

const procs: Proc[] = [];
const servers: Server[] = [];
const cleanups: Array<() => void> = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop("SIGKILL")));
  await Promise.all(servers.map((s) => s.close(0)));
  for (const c of cleanups) c();
});

// ---------- a scripted, lying master ----------

interface Entry {
  name: string;
  /** The size line sent (what the master claims). */
  sizeLine: string;
  /** The bytes actually sent after it. */
  body: Buffer;
}
interface Script {
  metaLine: string;
  entries: Entry[];
  /** Bytes after the last file. */
  trailing: Buffer;
  /** True when every part is honest: the replica must then succeed. */
  honest: boolean;
}

/** Serve `script` to every connection: handshake honestly, then lie as scripted. */
async function scriptedMaster(script: Script): Promise<Server> {
  const s = await listen(
    "127.0.0.1",
    0,
    (conn: Conn) =>
      serveCommands(conn, undefined, async (cmd, args) => {
        if (cmd === "_db_name") await conn.write(bareLine("change.me.db"));
        else if (cmd === "replconf") await conn.write(OK);
        else if (cmd === "psync") await conn.write(error("ERR sequence out of range, please use fullsync"));
        else if (cmd === "ping") await conn.write(simple("PONG"));
        else if (cmd === "_fetch_meta") {
          await conn.write(Buffer.concat([Buffer.from(script.metaLine, "utf8"), Buffer.from("\r\n")]));
          conn.end();
          return "stop";
        } else if (cmd === "_fetch_file") {
          const names = args[1].split(",");
          for (let i = 0; i < names.length; i++) {
            const e = script.entries.find((x) => x.name === names[i]);
            if (!e) break;
            const last = i === names.length - 1;
            // The last file and the trailing bytes leave in one write (one segment on loopback).
            await conn.write(Buffer.concat([Buffer.from(e.sizeLine + "\r\n", "latin1"), e.body, last ? script.trailing : Buffer.alloc(0)]));
            if (e.sizeLine !== String(e.body.length)) break;
          }
          conn.end();
          return "stop";
        } else await conn.write(error(`ERR unknown command \`${args[0]}\``));
      }),
    { readMs: 0, writeMs: 5000 },
  );
  servers.push(s);
  return s;
}

const safeName = fc.oneof(
  fc.integer({ min: 1, max: 999999 }).map((n) => `${String(n).padStart(6, "0")}.sst`),
  fc.constantFrom("CURRENT", "MANIFEST-000005", "OPTIONS-000007", "000003.log"),
);
const badName = fc.oneof(
  fc.constantFrom("../escape.sst", "/tmp/abs.sst", "a/b.sst", "..", ".", "", "x.sst.tmp", "a\\b", "nul\0.sst", "../../etc/cron.d/x"),
  fc.string({ minLength: 1, maxLength: 20 }).map((s) => `../${s.replace(/[,\r\n]/g, "")}`),
  fc.constant("n".repeat(300)),
);

/** A script: honest or with exactly one kind of lie. */
const scriptArb: fc.Arbitrary<Script> = fc
  .record({
    names: fc.uniqueArray(safeName, { minLength: 1, maxLength: 4 }),
    sizes: fc.array(fc.integer({ min: 0, max: 4096 }), { minLength: 4, maxLength: 4 }),
    lie: fc.constantFrom("none", "bad-name", "duplicate", "garbage-size", "short", "long", "trailing", "huge-size", "meta-error"),
    which: fc.nat(),
    bad: badName,
    garbage: fc.oneof(fc.constantFrom("-1", "1e3", " 12", "12 ", "0x10", "", "+5", "NaN", "-ERR no"), fc.string({ maxLength: 12 }).map((s) => s.replace(/[\r\n]/g, ""))),
    extra: fc.uint8Array({ minLength: 1, maxLength: 64 }),
    seed: fc.nat(),
  })
  .map(({ names, sizes, lie, which, bad, garbage, extra, seed }) => {
    const entries: Entry[] = names.map((name, i) => {
      const body = Buffer.alloc(sizes[i]);
      for (let j = 0; j < body.length; j++) body[j] = (seed + i * 31 + j * 7) & 0xff;
      return { name, sizeLine: String(body.length), body };
    });
    let metaNames = names.slice();
    let trailing = Buffer.alloc(0);
    const k = which % entries.length;
    let honest = lie === "none";
    switch (lie) {
      case "bad-name":
        metaNames.splice(k, 0, bad);
        break;
      case "duplicate":
        metaNames.push(names[k]);
        break;
      case "garbage-size":
        if (/^\d{1,20}$/.test(garbage) && Number(garbage) === entries[k].body.length) honest = true;
        entries[k].sizeLine = garbage;
        break;
      case "short":
        if (entries[k].body.length === 0) honest = true;
        else entries[k].body = entries[k].body.subarray(0, which % entries[k].body.length);
        break;
      case "long":
        entries[k].body = Buffer.concat([entries[k].body, Buffer.from(extra)]);
        entries[k].sizeLine = String(entries[k].body.length - extra.length);
        break;
      case "trailing":
        trailing = Buffer.from(extra);
        break;
      case "huge-size":
        entries[k].sizeLine = String(2 ** 40 + which);
        break;
      case "meta-error":
        metaNames = ["-can't create db checkpoint"];
        break;
    }
    return { metaLine: metaNames.join(","), entries, trailing, honest };
  });

describe("a lying master", () => {
  test("property (24 runs): names, sizes, size-line garbage, early EOF, extra bytes → a clear error and nothing outside --dir; honest → identical", async () => {
    let runs = 0;
    let failures = 0;
    await fc.assert(
      fc.asyncProperty(scriptArb, async (script) => {
        runs++;
        const parent = tempDir("kvr-hostile-");
        try {
          const dir = join(parent.path, "target");
          mkdirSync(dir);
          writeFileSync(join(parent.path, "sibling.sst"), "untouched");
          const m = await scriptedMaster(script);
          const r = await startKvr("replica", ["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--once", "--max-retries", "0", "--read-timeout", "1s", "--max-file-size", "1MiB"]);
          procs.push(r);
          const code = await r.kvr.exited;
          await m.close(0);
          const result = r.kvr.events.find((e) => "ok" in e) as { ok: boolean; code?: string; error?: string } | undefined;
          // Nothing outside --dir, ever.
          expect(readdirSync(parent.path).sort()).toEqual(["sibling.sst", "target"]);
          expect(readFileSync(join(parent.path, "sibling.sst"), "utf8")).toBe("untouched");
          const inDir = readdirSync(dir);
          expect(inDir.filter((n) => n.endsWith(".tmp"))).toEqual([]);
          if (script.honest) {
            expect(code).toBe(0);
            expect(diffDir(dir, script.entries.map((e) => ({ name: e.name, data: e.body })))).toEqual([]);
            return;
          }
          failures++;
          expect(code).not.toBe(0);
          expect(result?.ok).toBe(false);
          expect(["BAD_NAME", "PROTOCOL", "CLOSED", "MASTER_ERROR"]).toContain(String(result?.code));
          expect(String(result?.error).length).toBeGreaterThan(20);
          // Whatever was written carries a name the master listed and exactly the bytes announced
          // for it, all received (a master sending more than it announced cannot be told apart
          // until the next size line: the announced prefix is complete and kept).
          for (const n of inDir) {
            const e = script.entries.find((x) => x.name === n);
            expect(e).toBeDefined();
            expect(/^\d+$/.test(e!.sizeLine) && Number(e!.sizeLine) <= e!.body.length).toBe(true);
            expect(readFileSync(join(dir, n)).equals(e!.body.subarray(0, Number(e!.sizeLine)))).toBe(true);
          }
          expect(inDir).not.toContain("CURRENT");
        } finally {
          parent.cleanup();
        }
      }),
      { numRuns: 24 },
    );
    console.log(`lying master: ${runs} runs, ${failures} lies refused with a clear error, ${runs - failures} honest syncs identical`);
  }, 90_000);

  test("20 replicas at once, each against a master announcing 48 KiB per file and sending more, less or a giant size: disk usage never above what was announced and sent", async () => {
    const N = 20;
    const announced = 48 * 1024;
    const runs = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const body = Buffer.alloc(announced, i);
        const kind = ["long", "short", "giant"][i % 3];
        const entries: Entry[] = [
          { name: "000010.sst", sizeLine: String(announced), body },
          {
            name: "000011.sst",
            sizeLine: kind === "giant" ? String(900 * 1024) : String(announced),
            body: kind === "long" ? Buffer.concat([body, Buffer.alloc(1 << 20, 0xee)]) : body.subarray(0, announced / 2),
          },
          { name: "CURRENT", sizeLine: "16", body: Buffer.from("MANIFEST-000005\n") },
        ];
        const m = await scriptedMaster({ metaLine: entries.map((e) => e.name).join(","), entries, trailing: Buffer.alloc(0), honest: false });
        const d = tempDir("kvr-du-");
        cleanups.push(d.cleanup);
        // Retries on: each replica makes several attempts at the same directory.
        const r = await startKvr("replica", ["--dir", d.path, "--master", `127.0.0.1:${m.port}`, "--read-timeout", "1s", "--retry-delay", "20ms", "--max-file-size", "1MiB"]);
        procs.push(r);
        // The most a directory may hold: every file at most its announced size and at most what was sent.
        const bound = entries.reduce((n, e) => n + Math.min(Number(e.sizeLine), e.body.length), 0);
        return { r, m, dir: d.path, bound, max: 0 };
      }),
    );
    const end = Date.now() + 3000;
    let samples = 0;
    while (Date.now() < end) {
      for (const x of runs) x.max = Math.max(x.max, dirBytes(x.dir));
      samples++;
      await Bun.sleep(5);
    }
    const attempts = runs.map((x) => x.r.kvr.events.filter((e) => e.event === "retry").length);
    const codes = new Set(runs.flatMap((x) => x.r.kvr.events.filter((e) => e.event === "retry").map((e) => String(e.code))));
    await Promise.all(runs.map(async (x) => (await x.r.stop(), await x.m.close(0))));
    for (const x of runs) expect(x.max).toBeLessThanOrEqual(x.bound);
    runs.forEach((x, i) => {
      if (i % 3 === 0) {
        // "long": the announced prefix of 000011.sst is kept, the bytes after it are a garbage
        // size line (PROTOCOL); the next attempt fetches only CURRENT and completes.
        expect(attempts[i]).toBeGreaterThanOrEqual(1);
        expect(x.r.kvr.events.some((e) => e.event === "done")).toBe(true);
      } else expect(attempts[i]).toBeGreaterThanOrEqual(2); // EOF every time: retried again and again
    });
    expect([...codes].sort()).toEqual(["CLOSED", "PROTOCOL"]);
    console.log(`disk usage: ${N} replicas, ${samples} samples, ${attempts.reduce((a, b) => a + b, 0)} failed attempts; max usage ${Math.max(...runs.map((x) => x.max))} bytes ≤ bound ${runs[0].bound}`);
  }, 60_000);
});

// ---------- hostile clients ----------

/** Write `bytes` on a fresh connection; resolve with how the server answered (text) and whether it closed. */
async function hostile(port: number, bytes: Buffer | string, readMs = 3000): Promise<{ reply: string; closed: boolean }> {
  const c = await connect("127.0.0.1", port, { connectMs: 2000, readMs });
  let reply = "";
  let closed = false;
  try {
    await c.write(bytes).catch(() => {});
    for (;;) {
      const chunk = await c.readChunk();
      if (chunk === null) {
        closed = true;
        break;
      }
      reply += chunk.toString("latin1");
      if (reply.includes("\r\n")) break;
    }
  } catch (e) {
    closed = ["CLOSED", "RESET"].includes((e as { code: string }).code);
  } finally {
    c.destroy();
  }
  return { reply, closed };
}

describe("hostile clients", () => {
  test("admin port: 1 GB bulk header, 10^6-element array (header, then sent), unterminated 1 MB line, nested arrays → a protocol error each; memory bounded, still serving", async () => {
    const d = tempDir("kvr-admin-hostile-");
    cleanups.push(d.cleanup);
    const r = await startKvr("replica", ["--dir", d.path], { KVR_REQUIREPASS: "admin-pw" });
    procs.push(r);
    const rss0 = rssBytes(r.pid);
    const big = Buffer.concat([Buffer.from("*1000000\r\n"), Buffer.from("$1\r\na\r\n".repeat(1_000_000))]);
    const cases: Array<[string, Buffer | string]> = [
      ["1 GB bulk header", "*2\r\n$4\r\nAUTH\r\n$1073741824\r\nab"],
      ["10^6-element array sent in full (7 MB)", big],
      ["unterminated 1 MB line", Buffer.alloc(1 << 20, 0x61)],
      ["nested arrays", "*1\r\n*1\r\n*1\r\n$4\r\nPING\r\n"],
      ["negative bulk length", "*1\r\n$-7\r\n"],
    ];
    const results: string[] = [];
    for (const [what, bytes] of cases) {
      const res = await hostile(r.port, bytes, 5000);
      results.push(`${what}: ${res.reply.trim().slice(0, 60) || "(no reply)"}${res.closed ? ", closed" : ""}`);
      // Refused as a protocol error before AUTH is even looked at: never decoded in full.
      expect({ what, refused: /^-ERR Protocol error/.test(res.reply) || (res.reply === "" && res.closed) }).toEqual({ what, refused: true });
      expect(replyText(await command(r.port, ["PING"], "admin-pw"))).toBe("PONG");
    }
    const grew = rssBytes(r.pid) - rss0;
    console.log(`admin port hostile input:\n  ${results.join("\n  ")}\n  RSS growth ${(grew / 1048576).toFixed(1)} MiB`);
    expect(grew).toBeLessThan(64 * 1024 * 1024);
  }, 60_000);

  test("kvr master: 2,000 idle connections are dropped by --idle-timeout 1s while a real replica syncs byte-identical meanwhile; fds back to the start", async () => {
    const spec = "8x256KiB";
    const m = await startKvr("master", ["--generate", spec, "--idle-timeout", "1s", "--rate", "2MiB"]);
    procs.push(m);
    const fd0 = fdCount(m.pid);
    // The master accepts asynchronously: sample its fds until the idle connections are gone.
    let fdPeak = fd0;
    const sampler = setInterval(() => (fdPeak = Math.max(fdPeak, fdCount(m.pid))), 10);
    cleanups.push(() => clearInterval(sampler));
    const idle: Conn[] = [];
    for (let i = 0; i < 2000; i += 100) {
      idle.push(...(await Promise.all(Array.from({ length: 100 }, () => connect("127.0.0.1", m.port, { connectMs: 5000, readMs: 0 })))));
    }
    const t0 = performance.now();
    const d = tempDir("kvr-idle-");
    cleanups.push(d.cleanup);
    const r = await startKvr("replica", ["--dir", d.path, "--master", `127.0.0.1:${m.port}`, "--once", "--read-timeout", "2s"]);
    procs.push(r);

    await Promise.all(idle.map((c) => c.closed));
    clearInterval(sampler);
    const droppedMs = performance.now() - t0;
    expect(await r.kvr.exited).toBe(0);
    expect(diffDir(d.path, generatedExpected(spec))).toEqual([]);
    // The sync (~1 s at 2 MiB/s) overlapped the idle drop.
    expect(droppedMs).toBeLessThan(4000);
    await until(() => fdCount(m.pid) <= fd0 + 2, 5000, "the master's fds to return to the start");
    console.log(`idle connections: 2000 dropped after ${droppedMs.toFixed(0)} ms; master fds ${fd0} → ${fdPeak} (peak) → ${fdCount(m.pid)}`);
    expect(fdPeak).toBeGreaterThanOrEqual(fd0 + 1000); // most of them were open at once
  }, 60_000);

  test("admin port: 2,000 idle connections do not stop it serving a SETNODES and INFO", async () => {
    const d = tempDir("kvr-admin-idle-");
    cleanups.push(d.cleanup);
    const r = await startKvr("replica", ["--dir", d.path]);
    procs.push(r);
    const idle: Conn[] = [];
    for (let i = 0; i < 2000; i += 100) {
      idle.push(...(await Promise.all(Array.from({ length: 100 }, () => connect("127.0.0.1", r.port, { connectMs: 5000, readMs: 0 })))));
    }
    const id = "c".repeat(40);
    const t0 = performance.now();
    expect(replyText(await command(r.port, ["CLUSTERX", "SETNODES", `${id} 127.0.0.1 ${r.port} master - 0-16383`, "1"]))).toBe("OK");
    expect(replyText(await command(r.port, ["INFO"]))).toContain("role:master");
    expect(performance.now() - t0).toBeLessThan(1000);
    for (const c of idle) c.destroy();
  }, 30_000);

  /** Peak resident set size (VmHWM of /proc/<pid>/status), in bytes. */
  const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN) * 1024;

  /** Stream `*1024` and `bulks` arguments of `size` bytes without AUTH; resolve with what came back. */
  async function flood(port: number, size: number, bulks: number): Promise<{ reply: string; sent: number }> {
    const c = await connect("127.0.0.1", port, { connectMs: 2000, readMs: 5000, writeMs: 5000 });
    const body = Buffer.alloc(size, 0x61);
    let sent = 0;
    try {
      await c.write("*1024\r\n");
      for (let i = 0; i < bulks; i++) {
        await c.write(`$${body.length}\r\n`);
        await c.write(body);
        await c.write("\r\n");
        sent += body.length;
      }
    } catch {
      // Refused and closed by the server: the writes fail.
    }
    // The reply was received meanwhile (lib/net reads in the background), unless the reset won.
    const reply = await c.readLine().catch(() => "");
    c.destroy();
    return { reply, sent };
  }

  for (const kind of ["master", "replica"] as const) {
    test(`${kind}: 512 MiB of largest-size arguments before AUTH → refused at the first, peak memory flat; after AUTH a command above its cap → -ERR Protocol error and close`, async () => {
      const d = tempDir("kvr-cap-");
      cleanups.push(d.cleanup);
      const p = await startKvr(kind, kind === "master" ? ["--generate", "1x4KiB"] : ["--dir", d.path], { KVR_REQUIREPASS: "cap-pw" });
      procs.push(p);
      // Each argument at the per-argument limit: 4 MiB on the master, 8 MiB on the admin port.
      const arg = kind === "master" ? 4 << 20 : 8 << 20;
      const peak0 = peakRss(p.pid);
      const f = await flood(p.port, arg, (512 << 20) / arg);
      const grew = peakRss(p.pid) - peak0;
      console.log(`${kind}: 512 MiB flood before AUTH: ${(f.sent / 1048576).toFixed(0)} MiB written before the close, reply ${JSON.stringify(f.reply)}, peak RSS +${(grew / 1e6).toFixed(1)} MB`);
      expect(f.reply === "" || f.reply === "-ERR Protocol error: request larger than 65536 bytes").toBe(true);
      expect(f.sent).toBeLessThan(512 << 20);
      expect(grew).toBeLessThan(50e6);
      // Exactly at a header: the reply is readable, then the close.
      const pre = await hostile(p.port, "*2\r\n$4\r\nAUTH\r\n$70000\r\n");
      expect(pre).toEqual({ reply: "-ERR Protocol error: request larger than 65536 bytes\r\n", closed: false });
      // Authenticated: arguments up to the per-argument limit, but not a command above the total cap.
      const c = await connect("127.0.0.1", p.port, { connectMs: 2000, readMs: 5000 });
      expect(replyText(await call(c, ["AUTH", "cap-pw"]))).toBe("OK");
      await c.write(Buffer.concat([Buffer.from(`*3\r\n$4\r\nPING\r\n$${arg}\r\n`), Buffer.alloc(arg, 0x62), Buffer.from(`\r\n$${arg}\r\n`)]));
      expect(await c.readLine()).toBe(`-ERR Protocol error: request larger than ${2 * arg} bytes`);
      expect(await c.readChunk()).toBeNull();
      c.destroy();
      expect(replyText(await command(p.port, ["PING"], "cap-pw"))).toBe("PONG");
    }, 60_000);
  }

  test("every master and admin command before AUTH → -NOAUTH, nothing served (see auth.test.ts for each command)", async () => {
    const m = await startKvr("master", ["--generate", "1x1KiB"], { KVR_REQUIREPASS: "pw-before" });
    procs.push(m);
    const c = await connect("127.0.0.1", m.port, { connectMs: 2000, readMs: 3000 });
    // _fetch_file before AUTH must not send a size line or bytes.
    await c.write(encodeCommand(["_fetch_file", "000010.sst"]));
    expect(await c.readLine()).toBe("-NOAUTH Authentication required.");
    // Traversal before AUTH: refused as unauthenticated, not looked at.
    expect(replyText(await call(c, ["_fetch_file", "../../etc/passwd"]))).toBe("-NOAUTH Authentication required.");
    c.destroy();
  });
});
