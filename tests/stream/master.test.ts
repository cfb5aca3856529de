/**
 * kvr master's stream on the wire (in-process master, scripted client): PSYNC inside the window
 * streams consecutive WriteBatches from the asked sequence, several back to back; outside it (or
 * off a batch boundary) → out of range; ping heartbeats when idle; INFO offsets and lag; the
 * deterministic history and the fast-forward a restarted master does.
 */
import { afterEach, expect, test } from "bun:test";
import { parseInfo } from "../../lib/client/index.ts";
import type { Conn } from "../../lib/net/index.ts";
import { RespDecoder } from "../../lib/resp/index.ts";
import { decodeWriteBatch, parseWriteBatchHeader } from "../../lib/rocksdb/index.ts";
import { batchAt, batchCountAt, WalStream } from "../../lib/master/stream.ts";
import { parseWriteRate } from "../../lib/master/command.ts";
import { cmd, open, startTestMaster, until, type TestMaster } from "../master/helpers.ts";

let master: TestMaster | null = null;
const conns: Conn[] = [];
afterEach(async () => {
  for (const c of conns.splice(0)) c.destroy();
  await master?.close();
  master = null;
});

async function client(port: number, readMs = 3000): Promise<Conn> {
  const c = await open(port, readMs);
  conns.push(c);
  return c;
}

/** Read `n` stream values (batches or "ping"), noting how many arrived in the same chunk. */
async function readStream(c: Conn, n: number): Promise<Buffer[]> {
  const dec = new RespDecoder({ maxBulk: 1 << 20 });
  const out: Buffer[] = [];
  while (out.length < n) out.push((await c.read(dec)) as Buffer);
  return out;
}

test("deterministic history: batch contents depend on (seed, sequence) only; counts 1–4; valid WriteBatches", () => {
  expect(batchAt(7, 1234).equals(batchAt(7, 1234))).toBe(true);
  expect(batchAt(7, 1234).equals(batchAt(8, 1234))).toBe(false);
  const counts = new Set<number>();
  for (let s = 1; s < 2000; s++) {
    const b = decodeWriteBatch(batchAt(3, s));
    expect(b.sequence).toBe(s);
    expect(b.count).toBe(batchCountAt(3, s));
    expect(b.records.length).toBe(b.count);
    expect(b.records[0].key?.toString()).toBe(`kvr:${s}`);
    counts.add(b.count);
  }
  expect([...counts].sort()).toEqual([1, 2, 3, 4]);
  // Two streams with the same seq and seed produce the same boundaries; a late one fast-forwards onto them.
  const a = new WalStream({ seq: 100, seed: 5, rate: 1000, window: 50 });
  a.produce(500);
  const b = new WalStream({ seq: 100, seed: 5, rate: 1000, window: 50 });
  b.produce(10);
  expect(b.accept(a.next)).toBe(true);
  expect(b.head).toBe(a.head);
  expect(b.firstRetained).toBe(a.firstRetained);
  // Older than the window: refused.
  expect(b.accept(b.firstRetained - 1)).toBe(false);
  expect(parseWriteRate("5000/s")).toBe(5000);
  expect(() => parseWriteRate("fast")).toThrow("--write-rate");
});

test("PSYNC inside the window streams every retained batch from there; outside or off a boundary → out of range", async () => {
  master = await startTestMaster({ seq: 1000, writeRate: 20_000, walWindow: 2000, writeTotal: 3000, streamSeed: 2, heartbeatMs: 200 });
  await until(() => master!.ctx.stream.produced === 3000, 5000, "3000 batches");
  const s = master.ctx.stream;
  const first = s.firstRetained;
  expect(s.retained).toBe(2000);
  expect(first).toBeGreaterThan(1001);

  const ctl = await client(master.port);
  expect(await cmd(ctl, "PSYNC", "1001")).toBe("-ERR sequence out of range, please use fullsync");
  expect(await cmd(ctl, "PSYNC", String(first - 1))).toBe("-ERR sequence out of range, please use fullsync");
  // Inside a multi-record batch: not a boundary.
  let mid = first;
  while (batchCountAt(2, mid) === 1) mid += batchCountAt(2, mid);
  expect(await cmd(ctl, "PSYNC", String(mid + 1))).toBe("-ERR sequence out of range, please use fullsync");

  const c = await client(master.port);
  expect(await cmd(c, "PSYNC", String(first))).toBe("OK");
  const got = await readStream(c, 2000);
  let next = first;
  for (const b of got) {
    const h = parseWriteBatchHeader(b);
    expect(h.sequence).toBe(next);
    expect(b.equals(batchAt(2, next))).toBe(true);
    next = h.sequence + h.count;
  }
  expect(next - 1).toBe(s.head);
  // Nothing more to send: heartbeats.
  const t0 = Date.now();
  const [ping] = await readStream(c, 1);
  expect(ping.toString()).toBe("ping");
  expect(Date.now() - t0).toBeLessThan(1500);
  const i = parseInfo(await cmd(ctl, "INFO"));
  expect(i.master_repl_offset).toBe(String(s.head));
  expect(i.connected_slaves).toBe("1");
  expect(i.slave0).toBe(`ip=127.0.0.1,port=0,offset=${s.head},lag=0`);
  expect(i).toMatchObject({ kvr_wal_first_seq: String(first), kvr_wal_batches: "2000", kvr_batches_produced: "3000" });
});

test("a live replica sees new batches as they are written; INFO shows its offset and lag", async () => {
  master = await startTestMaster({ seq: 10, writeRate: 500, heartbeatMs: 5000 });
  const c = await client(master.port);
  expect(await cmd(c, "REPLCONF", "listening-port", "7001")).toBe("OK");
  expect(await cmd(c, "PSYNC", "11")).toBe("OK");
  const got = await readStream(c, 100);
  expect(parseWriteBatchHeader(got[0]).sequence).toBe(11);
  const ctl = await client(master.port);
  const i = parseInfo(await cmd(ctl, "INFO"));
  const m = /^ip=127\.0\.0\.1,port=7001,offset=(\d+),lag=(\d+)$/.exec(i.slave0);
  expect(m).not.toBeNull();
  expect(Number(m![1]) + Number(m![2])).toBe(Number(i.master_repl_offset));
  expect(Number(m![1])).toBeGreaterThan(10);
});

test("without --write-rate: PSYNC only at seq + 1, then pings; a later boundary does not fast-forward", async () => {
  master = await startTestMaster({ seq: 100, heartbeatMs: 100 });
  const c = await client(master.port);
  expect(await cmd(c, "PSYNC", String(101 + batchCountAt(1, 101)))).toBe("-ERR sequence out of range, please use fullsync");
  expect(await cmd(c, "PSYNC", "101")).toBe("OK");
  expect((await readStream(c, 2)).map(String)).toEqual(["ping", "ping"]);
});

test("a restarted master (same --seq, seed) accepts a later boundary of its history: fast-forward, then streams on", async () => {
  const ref = new WalStream({ seq: 5000, seed: 1, rate: 1, window: 10 });
  ref.produce(12_345);
  master = await startTestMaster({ seq: 5000, writeRate: 1000, walWindow: 1000 });
  const c = await client(master.port);
  expect(await cmd(c, "PSYNC", String(ref.next + 1))).toBe("-ERR sequence out of range, please use fullsync");
  expect(await cmd(c, "PSYNC", String(ref.next))).toBe("OK");
  const [b] = await readStream(c, 1);
  expect(b.equals(batchAt(1, ref.next))).toBe(true);
  expect(master.ctx.stream.head).toBeGreaterThanOrEqual(ref.head + 1);
  expect(master.ctx.stream.retained).toBeLessThanOrEqual(1000);
});
