/** Pure parts of the replica and the handshake steps against a scripted control connection. */
import { afterEach, describe, expect, test } from "bun:test";
import { connect, listen, type Conn, type Server } from "../../lib/net/index.ts";
import { bareLine, error, OK, RespDecoder } from "../../lib/resp/index.ts";
import { retryDelayMs, badFileName, parseMetaLine, parseSizeLine, splitRoundRobin, workerCount } from "../../lib/replica/names.ts";
import { checkDbName, followStream, replconf, sendPsync } from "../../lib/replica/steps.ts";

describe("file names from the master", () => {
  test.each([
    ["", "empty"],
    [".", "'.'"],
    ["..", "'..'"],
    ["../etc/passwd", "'/'"],
    ["a/b", "'/'"],
    ["..\\x", "'\\'"],
    ["a\0b", "NUL"],
    ["x".repeat(256), "256 bytes"],
    ["é".repeat(128), "256 bytes"],
  ])("%j is refused (%s)", (name, why) => {
    expect(badFileName(name)).toContain(why);
  });
  test("checkpoint names pass", () => {
    for (const n of ["000012.sst", "CURRENT", "MANIFEST-000009", "OPTIONS-000011", "000014.log", "x".repeat(255)]) expect(badFileName(n)).toBeNull();
  });
  test("meta line: leading '-' is a refusal, names are checked, duplicates refused", () => {
    expect(parseMetaLine("a.sst,CURRENT")).toEqual(["a.sst", "CURRENT"]);
    expect(() => parseMetaLine("-can't create db checkpoint")).toThrow("master refused _fetch_meta: can't create db checkpoint");
    expect(() => parseMetaLine("a.sst,../../x")).toThrow("refusing the full sync");
    expect(() => parseMetaLine("a.sst,a.sst")).toThrow("twice");
    expect(() => parseMetaLine("")).toThrow("empty file list");
  });
  test("size line: decimal only, within --max-file-size", () => {
    expect(parseSizeLine("4194304", "a", 1 << 30)).toBe(4194304);
    expect(parseSizeLine("0", "a", 10)).toBe(0);
    for (const bad of ["", " 12", "12 ", "+1", "0x10", "1e3", "12.5", "abc"]) expect(() => parseSizeLine(bad, "a", 1e9)).toThrow("not a decimal");
    expect(() => parseSizeLine("-ERR cannot open", "a", 1e9)).toThrow("master refused to send a: ERR cannot open");
    expect(() => parseSizeLine("1025", "a", 1024)).toThrow("above --max-file-size");
    expect(() => parseSizeLine("99999999999999999999", "a", 1e18)).toThrow("above --max-file-size");
  });
});

test("workers: 1 for ≤ 20 files, 4 above, --workers wins, never more than files", () => {
  expect(workerCount(20, null)).toBe(1);
  expect(workerCount(21, null)).toBe(4);
  expect(workerCount(3, 8)).toBe(3);
  expect(workerCount(64, 2)).toBe(2);
  expect(splitRoundRobin([0, 1, 2, 3, 4, 5, 6], 3)).toEqual([[0, 3, 6], [1, 4], [2, 5]]);
});

test("backoff: exponential with jitter, capped at 30 s", () => {
  expect(retryDelayMs(1000, 1, () => 1)).toBe(1000);
  expect(retryDelayMs(1000, 1, () => 0)).toBe(500);
  expect(retryDelayMs(1000, 3, () => 1)).toBe(4000);
  expect(retryDelayMs(1000, 30, () => 1)).toBe(30_000);
});

// ---- handshake steps against a scripted peer ----

let server: Server | null = null;
const conns: Conn[] = [];
afterEach(async () => {
  for (const c of conns.splice(0)) c.destroy();
  await server?.close(10);
  server = null;
});

/** A peer that answers each command with the next scripted reply and records the commands. */
async function scripted(replies: Buffer[]): Promise<{ conn: Conn; seen: string[][] }> {
  const seen: string[][] = [];
  server = await listen("127.0.0.1", 0, async (c) => {
    const dec = new RespDecoder();
    try {
      for (const r of replies) {
        const v = (await c.read(dec)) as Buffer[];
        seen.push(v.map((b) => b.toString()));
        await c.write(r);
      }
    } catch {}
  });
  const conn = await connect("127.0.0.1", server.port, { readMs: 2000 });
  conns.push(conn);
  return { conn, seen };
}

test("replconf: unknown option → sent again without ip-address", async () => {
  const { conn, seen } = await scripted([error("ERR unknown option"), OK]);
  expect(await replconf(conn, 6667, "10.0.0.1")).toEqual({ ok: true });
  expect(seen).toEqual([
    ["replconf", "listening-port", "6667", "ip-address", "10.0.0.1"],
    ["replconf", "listening-port", "6667"],
  ]);
});

test("replconf: another error → go on", async () => {
  const { conn } = await scripted([error("ERR unknown command `replconf`")]);
  expect(await replconf(conn, 6667)).toEqual({ ok: false, reply: "-ERR unknown command `replconf`" });
});

test("PSYNC: new form refused for arity → old form; +OK → stream", async () => {
  const { conn, seen } = await scripted([error("ERR wrong number of arguments"), OK]);
  expect(await sendPsync(conn, 2257, "f".repeat(40))).toEqual({ kind: "stream" });
  expect(seen).toEqual([
    ["PSYNC", "f".repeat(40), "2257"],
    ["PSYNC", "2257"],
  ]);
});

test("PSYNC: out of range → full sync; LOADING → restart later", async () => {
  const a = await scripted([error("ERR sequence out of range, please use fullsync")]);
  expect(await sendPsync(a.conn, 5)).toEqual({ kind: "fullsync", reply: "-ERR sequence out of range, please use fullsync" });
  for (const c of conns.splice(0)) c.destroy();
  await server?.close(10);
  const b = await scripted([error("LOADING kvrocks is restoring the db from backup")]);
  await expect(sendPsync(b.conn, 5)).rejects.toThrow("master is loading");
});

test("_db_name: bare line must match", async () => {
  const { conn } = await scripted([bareLine("other.db")]);
  await expect(checkDbName(conn, "change.me.db")).rejects.toThrow("Mismatched the db name, local: change.me.db, remote: other.db");
});

test("stream: pings skipped, batches advance the sequence, a gap is a protocol error", async () => {
  const batch = (seq: number, count: number) => {
    const b = Buffer.alloc(12);
    b.writeBigUInt64LE(BigInt(seq), 0);
    b.writeUInt32LE(count, 8);
    return Buffer.concat([Buffer.from(`$12\r\n`), b, Buffer.from("\r\n")]);
  };
  server = await listen("127.0.0.1", 0, async (c) => {
    await c.write(Buffer.concat([Buffer.from("$4\r\nping\r\n"), batch(101, 3), batch(104, 1), batch(200, 1)]));
  });
  const conn = await connect("127.0.0.1", server.port, { readMs: 2000 });
  conns.push(conn);
  const seen: number[] = [];
  let pings = 0;
  await expect(followStream(conn, 101, (n) => void seen.push(n), () => void pings++)).rejects.toThrow("expected 105, got 200");
  expect(seen).toEqual([104, 105]);
  expect(pings).toBe(1);
});
