/**
 * The stall fault and the connection's lifetime: a peer that gives up on a stalled connection
 * frees it (socket, open file, counters) while the fault stays in force; an untriggered stall
 * fires at a new connection's first command other than AUTH, so a control connection (AUTH,
 * KVR FAULT ...) still gets its answers.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generatedContent, parseGenerateSpec } from "../../lib/master/generate.ts";
import { generatedSource } from "../../lib/master/source.ts";
import { connect } from "../../lib/net/index.ts";
import { encodeCommand } from "../../lib/resp/index.ts";
import { runKvr, spawnKvr, tempDir, type KvrProcess } from "../helpers/kvr.ts";
import { cmd, fullSync, open, send, sha, startTestMaster, until, type TestMaster } from "./helpers.ts";

const procs: KvrProcess[] = [];
const masters: TestMaster[] = [];
const cleanups: Array<() => void> = [];
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.stop("SIGKILL")));
  await Promise.all(masters.splice(0).map((m) => m.close()));
  for (const c of cleanups.splice(0)) c();
});

function dir(): string {
  const d = tempDir("kvr-master-stall-");
  cleanups.push(d.cleanup);
  return d.path;
}

async function startProc(args: string[], env: Record<string, string> = {}): Promise<{ p: KvrProcess; port: number }> {
  const p = spawnKvr(["master", "--port", "0", ...args], env);
  procs.push(p);
  const ev = await p.waitEvent((e) => e.event === "listening");
  return { p, port: ev.port as number };
}

/** The targets of a process's open file descriptors. */
function fds(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).map((n) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${n}`);
    } catch {
      return "(gone)";
    }
  });
}

/** Send raw RESP commands back to back and read `n` reply lines. */
async function pipeline(port: number, cmds: string[][], n: number, readMs = 2000): Promise<string[]> {
  const c = await open(port, readMs);
  try {
    await c.write(Buffer.concat(cmds.map((a) => encodeCommand(a))));
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(await c.readLine());
    return lines;
  } finally {
    c.destroy();
  }
}

describe("a peer that gives up on a stalled connection frees it", () => {
  test("kvr replica times out on a stall:after-bytes=1MiB master: the master's fds and kvr_fetch_connections return to their start, the fault stays", async () => {
    const src = dir();
    const names = ["000001.sst", "000002.sst", "000003.sst"];
    for (const [i, n] of names.entries()) writeFileSync(join(src, n), Buffer.alloc(2 * 1024 * 1024, i + 1));
    const { p: m, port } = await startProc(["--dir", src, "--seq", "100", "--fault", "stall:after-bytes=1MiB"]);
    const pid = m.proc.pid;
    const before = fds(pid);
    const r = await runKvr(
      ["replica", "--dir", dir(), "--master", `127.0.0.1:${port}`, "--port", "0", "--once", "--read-timeout", "500ms", "--max-retries", "4", "--retry-delay", "100ms"],
      { timeoutMs: 30_000 },
    );
    expect(r.code).toBe(3);
    // Every attempt reached the stall (1 + 4 retries), each on its own fetch connection.
    await until(() => m.events.filter((e) => e.event === "fault").length >= 5, 3000, "five stalls");
    let now = fds(pid);
    await until(
      () => {
        now = fds(pid);
        return now.length <= before.length && !now.some((f) => f.startsWith(src));
      },
      3000,
      "the master's fds to return to their start",
    ).catch(() => {
      throw new Error(`fds before: ${before.length}, now: ${now.length}\n${now.join("\n")}`);
    });
    console.log(`stalled master fds: ${before.length} before the replica, ${now.length} after it gave up (5 stalled fetch connections)`);
    const c = await open(port);
    try {
      expect(await cmd(c, "INFO")).toContain("kvr_fetch_connections:0\r\n");
      expect(await cmd(c, "KVR", "FAULT", "LIST")).toBe("stall:after-bytes=1MiB");
    } finally {
      c.destroy();
    }
  }, 40_000);

  test("a stalled connection whose peer sent more bytes before closing (FIN behind unread data) is freed", async () => {
    const m = await startTestMaster({ source: generatedSource(parseGenerateSpec("1x64KiB")), fault: ["stall"] });
    masters.push(m);
    const c = await open(m.port, 300);
    await send(c, "PING");
    await until(() => m.events.some((e) => e.event === "fault"), 2000, "the stall to fire");
    // Pipelined commands the stalled master does not run, then FIN.
    await send(c, "PING");
    await send(c, "INFO");
    await Bun.sleep(100);
    expect(m.ctx.faults.liveLinks().length).toBe(1);
    c.end();
    await until(() => m.ctx.faults.liveLinks().length === 0, 2000, "the stalled connection to be detached");
    expect(m.ctx.faults.list()).toEqual(["stall"]);
    c.destroy();
  });

  test("a stalled connection still backs up the peer's writes (bytes are held, not read and discarded)", async () => {
    const m = await startTestMaster({ source: generatedSource(parseGenerateSpec("1x64KiB")), fault: ["stall"] });
    masters.push(m);
    const c = await connect("127.0.0.1", m.port, { connectMs: 2000, readMs: 300, writeMs: 500 });
    try {
      await send(c, "PING");
      await until(() => m.events.some((e) => e.event === "fault"), 2000, "the stall to fire");
      const piece = encodeCommand(["PING", "x".repeat(64 * 1024)]);
      let sent = 0;
      const err = await (async () => {
        try {
          for (; sent < 64 * 1024 * 1024; sent += piece.length) await c.write(piece);
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(err).toMatchObject({ code: "WRITE_TIMEOUT" });
      const held = m.ctx.faults.liveLinks()[0]?.conn.pending ?? 0;
      console.log(`stalled peer: its writes blocked after ${(sent / 1048576).toFixed(1)} MiB; the master holds ${(held / 1048576).toFixed(2)} MiB unread`);
      // lib/net stops reading at 1 MiB, checked after each received chunk.
      expect(held).toBeLessThanOrEqual(2 * 1024 * 1024);
      expect(m.events.filter((e) => e.event === "fault").length).toBe(1);
    } finally {
      c.destroy();
    }
  });

  test("a stalled PSYNC stream whose replica closes is dropped from the replica list", async () => {
    const m = await startTestMaster({ source: generatedSource(parseGenerateSpec("1x64KiB")), seq: 100, heartbeatMs: 50, fault: ["stall:after-ms=200"] });
    masters.push(m);
    const c = await open(m.port, 2000);
    expect(await cmd(c, "PSYNC", "101")).toBe("OK");
    await until(() => m.events.some((e) => e.event === "fault"), 2000, "the stall to fire");
    await Bun.sleep(150);
    expect(m.ctx.slaves.size).toBe(1);
    c.destroy();
    await until(() => m.ctx.slaves.size === 0 && m.ctx.faults.liveLinks().length === 0, 2000, "the stream to end");
  });
});

describe("an untriggered stall spares control connections", () => {
  test("KVR FAULT ADD stall (password set): a new connection's AUTH + KVR FAULT CLEAR get +OK +OK; a sync then completes", async () => {
    const spec = parseGenerateSpec("3x64KiB:seed=7");
    const m = await startTestMaster({ source: generatedSource(spec), password: "pw" });
    masters.push(m);
    const ctl = await open(m.port);
    expect(await cmd(ctl, "AUTH", "pw")).toBe("OK");
    expect(await cmd(ctl, "KVR", "FAULT", "ADD", "stall")).toBe("OK");
    ctl.destroy();
    // A replica-like connection is held from its first command other than AUTH.
    const held = await open(m.port, 300);
    expect(await cmd(held, "AUTH", "pw")).toBe("OK");
    await expect(cmd(held, "_fetch_meta")).rejects.toMatchObject({ code: "READ_TIMEOUT" });
    held.destroy();
    expect(await pipeline(m.port, [["AUTH", "pw"], ["KVR", "FAULT", "CLEAR"]], 2)).toEqual(["+OK", "+OK"]);
    const { files, data } = await fullSync(m.port, { password: "pw" });
    expect(files.length).toBe(6);
    for (const f of files.filter((n) => n.endsWith(".sst"))) expect(sha(data.get(f)!)).toBe(sha(generatedContent(spec, f)));
  });

  test("an untriggered stall holds a new connection's first command even when it is unknown, of the wrong arity or refused with NOAUTH; CLEAR releases the replies", async () => {
    const m = await startTestMaster({ password: "pw" });
    masters.push(m);
    const ctl = await open(m.port);
    expect(await cmd(ctl, "AUTH", "pw")).toBe("OK");
    expect(await cmd(ctl, "KVR", "FAULT", "ADD", "stall")).toBe("OK");
    const held = await Promise.all(
      [["AUTH", "pw", "BGSAVE", "SCHEDULE"], ["AUTH", "pw", "_fetch_file"], ["_db_name"]].map(async (words) => {
        const c = await open(m.port, 2000);
        const authed = words[0] === "AUTH";
        if (authed) expect(await cmd(c, "AUTH", "pw")).toBe("OK");
        const before = c.bytesRead;
        await send(c, ...(authed ? words.slice(2) : words));
        await Bun.sleep(400);
        expect(c.bytesRead).toBe(before); // no reply: held
        return c;
      }),
    );
    expect(await cmd(ctl, "KVR", "FAULT", "CLEAR")).toBe("OK");
    expect(await held[0].readLine()).toBe("-ERR unknown command `BGSAVE`, with args beginning with: `SCHEDULE`");
    expect(await held[1].readLine()).toBe("-ERR wrong number of arguments");
    expect(await held[2].readLine()).toBe("-NOAUTH Authentication required.");
    for (const c of held) c.destroy();
    expect(m.events.filter((e) => e.event === "fault").length).toBe(3);
  });

  test("kvr master --fault stall: a new redis-style connection can AUTH, KVR FAULT LIST and CLEAR; a fetch then works", async () => {
    const { port } = await startProc(["--generate", "1x64KiB", "--fault", "stall"], { KVR_REQUIREPASS: "pw" });
    const stalled = await open(port, 300);
    expect(await cmd(stalled, "AUTH", "pw")).toBe("OK");
    await expect(cmd(stalled, "PING")).rejects.toMatchObject({ code: "READ_TIMEOUT" });
    stalled.destroy();
    expect(await pipeline(port, [["AUTH", "pw"], ["KVR", "FAULT", "LIST"]], 3)).toEqual(["+OK", "*1", "$5"]);
    const c = await open(port);
    try {
      expect(await cmd(c, "AUTH", "pw")).toBe("OK");
      expect(await cmd(c, "KVR", "FAULT", "LIST")).toBe("stall");
      expect(await cmd(c, "KVR", "FAULT", "CLEAR")).toBe("OK");
      expect(await cmd(c, "KVR", "FAULT", "LIST")).toBe("");
    } finally {
      c.destroy();
    }
    const f = await open(port);
    try {
      expect(await cmd(f, "AUTH", "pw")).toBe("OK");
      await send(f, "_fetch_file", "000010.sst");
      expect(await f.readLine()).toBe("65536");
      expect(sha(await f.readBytes(65536))).toBe(sha(generatedContent("1x64KiB", "000010.sst")));
    } finally {
      f.destroy();
    }
  });
});
