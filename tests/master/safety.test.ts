/** kvr master safety: file names, hostile RESP, auth, idle and send timeouts. */
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseGenerateSpec } from "../../lib/master/generate.ts";
import { dirSource, generatedSource, type CheckpointSource } from "../../lib/master/source.ts";
import { tempDir } from "../helpers/kvr.ts";
import { cmd, open, send, startTestMaster, until, type TestMaster } from "./helpers.ts";

let master: TestMaster | null = null;
const cleanups: Array<() => void> = [];
afterEach(async () => {
  await master?.close();
  master = null;
  for (const c of cleanups.splice(0)) c();
});

/** A --dir source that counts every open (to prove refused names never touch the disk). */
function countingDir(): { src: CheckpointSource; opens: string[] } {
  const d = tempDir("kvr-master-safe-");
  cleanups.push(d.cleanup);
  const ckpt = join(d.path, "checkpoint");
  mkdirSync(ckpt);
  writeFileSync(join(d.path, "secret.conf"), "requirepass hunter2\n");
  writeFileSync(join(ckpt, "000001.sst"), "sst data");
  writeFileSync(join(ckpt, "CURRENT"), "MANIFEST-000002\n");
  const inner = dirSource(ckpt);
  const opens: string[] = [];
  return {
    opens,
    src: { ...inner, has: inner.has, open: (n) => (opens.push(n), inner.open(n)) },
  };
}

describe("_fetch_file names", () => {
  const BAD = ["../secret.conf", "", ".", "..", "a/b", "/etc/passwd", "..\\secret.conf", "CURRENT\0x", "nothere.sst", "current"];
  test(`refuses ${BAD.length} unsafe or unknown names with an error line, reading nothing from disk`, async () => {
    const { src, opens } = countingDir();
    master = await startTestMaster({ source: src });
    for (const name of BAD) {
      const c = await open(master.port);
      await send(c, "_fetch_file", name);
      const line = await c.readLine();
      expect(line).toMatch(/^-ERR refused to serve: /);
      expect(await c.readChunk()).toBeNull();
    }
    // A good name before a bad one: refused as a whole, no size line sent.
    const c = await open(master.port);
    await send(c, "_fetch_file", "CURRENT,../secret.conf");
    expect(await c.readLine()).toBe(`-ERR refused to serve: a file name with '/' ("../secret.conf")`);
    expect(opens).toEqual([]);
    // The served names still work.
    const ok = await open(master.port);
    await send(ok, "_fetch_file", "CURRENT");
    expect(await ok.readLine()).toBe("16");
    expect(opens).toEqual(["CURRENT"]);
  });
});

describe("hostile RESP closes that connection only", () => {
  const CASES: Array<[string, string | Buffer]> = [
    ["a 1 GB bulk length", "*2\r\n$1000000000\r\nab"],
    ["a 10^6-element array", "*1000000\r\n"],
    ["a negative bulk length", "*1\r\n$-5\r\n"],
    ["a nested array", "*1\r\n*1\r\n$4\r\nPING\r\n"],
    ["a non-command value", "+OK\r\n"],
    ["an unterminated 100 KB line", Buffer.alloc(100_000, 0x61)],
    ["binary garbage", Buffer.from([0x2a, 0xff, 0x00, 0x0d, 0x0a, 0x24, 0x01, 0x0d, 0x0a])],
    ["an HTTP request", "POST / HTTP/1.1\r\nHost: x\r\n\r\n"],
  ];
  test(`${CASES.length} malformed inputs each close their connection while another keeps working`, async () => {
    master = await startTestMaster();
    const bystander = await open(master.port);
    expect(await cmd(bystander, "PING")).toBe("PONG");
    for (const [what, bytes] of CASES) {
      const c = await open(master.port, 2000);
      await c.write(bytes);
      let closed = false;
      let said = "";
      try {
        for (let chunk; (chunk = await c.readChunk()) !== null; ) said += chunk.toString("latin1");
        closed = true;
      } catch (e) {
        closed = ["CLOSED", "RESET"].includes((e as { code: string }).code);
      }
      expect({ what, closed }).toEqual({ what, closed: true });
      // Malformed framing is answered like Redis and Kvrocks do before the close.
      if (!["a nested array", "a non-command value", "an HTTP request"].includes(what)) expect({ what, said: said.slice(0, 19) }).toEqual({ what, said: "-ERR Protocol error" });
      expect(await cmd(bystander, "PING")).toBe("PONG");
    }
  });
});

describe("authentication", () => {
  test("NOAUTH before AUTH for every command; wrong password; right password; no password set", async () => {
    master = await startTestMaster({ password: "correct horse" });
    const c = await open(master.port);
    for (const args of [["PING"], ["_db_name"], ["replconf", "listening-port", "1"], ["PSYNC", "101"], ["_fetch_meta"], ["_fetch_file", "CURRENT"], ["INFO"], ["KVR", "FAULT", "LIST"]]) {
      expect(await cmd(c, ...args)).toBe("-NOAUTH Authentication required.");
    }
    expect(await cmd(c, "AUTH", "wrong")).toBe("-ERR Invalid password");
    expect(await cmd(c, "AUTH", "correct horsE")).toBe("-ERR Invalid password");
    expect(await cmd(c, "PING")).toBe("-NOAUTH Authentication required.");
    expect(await cmd(c, "AUTH", "correct horse")).toBe("OK");
    expect(await cmd(c, "PING")).toBe("PONG");
    expect(master.logs.join("")).not.toContain("correct horse");
    await master.close();
    master = await startTestMaster();
    expect(await cmd(await open(master.port), "AUTH", "x")).toBe("-ERR Client sent AUTH, but no password is set");
  });
});

describe("timeouts", () => {
  test("an idle client is dropped after --idle-timeout; a streaming one is not", async () => {
    master = await startTestMaster({ idleMs: 200, heartbeatMs: 50 });
    const idle = await open(master.port, 2000);
    const psync = await open(master.port, 2000);
    expect(await cmd(psync, "PSYNC", "101")).toBe("OK");
    const t0 = performance.now();
    expect(await idle.readChunk()).toBeNull();
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThan(150);
    expect(ms).toBeLessThan(1500);
    await Bun.sleep(300);
    expect((await psync.readBytes(10)).toString()).toBe("$4\r\nping\r\n");
  });

  test("a replica that stops reading is dropped after --send-timeout and the drop is logged", async () => {
    master = await startTestMaster({ source: generatedSource(parseGenerateSpec("1x64MiB")), sendTimeoutMs: 300 });
    const c = await open(master.port, 10_000);
    await send(c, "_fetch_file", "000010.sst");
    c.pauseReading();
    await until(() => master!.events.some((e) => e.event === "drop"), 8000, "the drop event");
    const ev = master.events.find((e) => e.event === "drop")!;
    expect(ev).toMatchObject({ reason: "send-timeout", ms: 300 });
    expect(master.ctx.stats.fetchConnections).toBe(0);
    // The master keeps serving others.
    expect(await cmd(await open(master.port), "PING")).toBe("PONG");
    c.destroy();
  });
});

describe("PING's arguments, byte for byte", () => {
  test("no argument → +PONG, one → its bulk, more → -ERR wrong number of arguments; nothing else on the wire", async () => {
    master = await startTestMaster();
    const c = await open(master.port);
    // RESP and inline, then QUIT: everything the server writes until it closes.
    await c.write("*4\r\n$4\r\nPING\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n" + "PING a b c\r\n" + "*2\r\n$4\r\nPING\r\n$1\r\na\r\n" + "PING\r\n" + "QUIT\r\n");
    const got: Buffer[] = [];
    for (let chunk = await c.readChunk(); chunk !== null; chunk = await c.readChunk()) got.push(Buffer.from(chunk));
    expect(Buffer.concat(got).toString("latin1")).toBe("-ERR wrong number of arguments\r\n".repeat(2) + "$1\r\na\r\n+PONG\r\n+OK\r\n");
  });
});
