/**
 * kvr replica following kvr master's incremental stream: full sync, restore, PSYNC, 10,000
 * batches at --write-rate checked and persisted to kvr-stream.log, offsets equal at the end.
 */
import { afterEach, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generatedContent, generatedFiles, parseGenerateSpec } from "../../lib/master/generate.ts";
import { batchAt } from "../../lib/master/stream.ts";
import { checkpointSequence } from "../../lib/rocksdb/index.ts";
import { recoverStreamLog, STREAM_LOG } from "../../lib/replica/streamlog.ts";
import { tempDir } from "../helpers/kvr.ts";
import { info, startMaster, startReplica, until } from "../replica/helpers.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
function temp(): string {
  const d = tempDir("kvr-stream-");
  cleanups.push(d.cleanup);
  return d.path;
}

/** Put the checkpoint `kvr master --generate <spec> --seq <seq>` serves into `dir` (as if restored). */
function seedTarget(dir: string, spec: string, seq: number): void {
  const s = parseGenerateSpec(spec, seq);
  for (const f of generatedFiles(s)) writeFileSync(join(dir, f.name), generatedContent(s, f.name));
}

/** Every record of kvr-stream.log, checked to be exactly the master's deterministic batches. */
function checkLog(dir: string, base: number, seed: number): { records: number; last: number } {
  const data = readFileSync(join(dir, STREAM_LOG));
  let off = 0;
  let next = base + 1;
  let records = 0;
  while (off < data.length) {
    const len = data.readUInt32LE(off);
    const batch = data.subarray(off + 8, off + 8 + len);
    const seq = Number(batch.readBigUInt64LE(0));
    if (seq !== next) throw new Error(`record ${records} starts at ${seq}, expected ${next}`);
    if (!batch.equals(batchAt(seed, seq))) throw new Error(`record ${records} (sequence ${seq}) differs from the master's batch`);
    next = seq + batch.readUInt32LE(8);
    off += 8 + len;
    records++;
  }
  return { records, last: next - 1 };
}

test("after a full sync the replica restores the checkpoint and follows by PSYNC <its sequence + 1> on a fresh connection", async () => {
  const m = await startMaster(["--generate", "3x64KiB", "--seq", "700", "--write-rate", "2000"]);
  cleanups.push(() => m.stop());
  const dir = temp();
  const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`]);
  cleanups.push(() => r.stop());
  const stream = await r.kvr.waitEvent((e) => e.event === "stream", 10_000);
  const restore = r.kvr.events.find((e) => e.event === "restore")!;
  // The generated MANIFEST carries the master's head when it was fetched; PSYNC continues after it.
  expect(restore.seq as number).toBeGreaterThanOrEqual(700);
  expect(stream.from).toBe((restore.seq as number) + 1);
  const states = r.kvr.events.filter((e) => e.event === "state").map((e) => e.state);
  expect(states).toEqual(["connecting", "check_db_name", "replconf", "fetch_meta", "fetch_files", "synced", "connecting", "check_db_name", "replconf", "send_psync", "connected"]);
  expect(r.kvr.events.findIndex((e) => e.event === "done")).toBeLessThan(r.kvr.events.indexOf(stream));
  await until(async () => Number((await info(r.port)).slave_repl_offset) > (restore.seq as number) + 1000, 10_000);
}, 30_000);

test("follow 10,000 batches at --write-rate 5000: every batch checked and logged, offsets equal at the end", async () => {
  const m = await startMaster(["--generate", "2x64KiB:seed=3", "--seq", "500", "--write-rate", "5000", "--write-total", "10000"]);
  cleanups.push(() => m.stop());
  const dir = temp();
  // The target already holds the master's checkpoint at 500: PSYNC 501 streams all 10,000 batches.
  seedTarget(dir, "2x64KiB:seed=3", 500);
  const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--stream-fsync", "1s"]);
  cleanups.push(() => r.stop());
  const stream = await r.kvr.waitEvent((e) => e.event === "stream", 10_000);
  const t0 = performance.now();
  const base = 500;
  expect(stream.from).toBe(501);
  const done = await until(async () => {
    const mi = await m.info();
    if (mi.kvr_batches_produced !== "10000") return null;
    const ri = await info(r.port);
    return ri.slave_repl_offset === mi.master_repl_offset ? { mi, ri } : null;
  }, 20_000, "the replica at the master's offset after 10,000 batches", 50);
  const ms = performance.now() - t0;
  expect(done.ri).toMatchObject({ kvr_state: "connected", master_link_status: "up" });
  expect(done.mi).toMatchObject({ connected_slaves: "1", slave0: expect.stringContaining(`offset=${done.mi.master_repl_offset},lag=0`) });
  expect(r.kvr.events.filter((e) => e.event === "state" && e.state === "fetch_meta").length).toBe(0);
  const head = Number(done.mi.master_repl_offset);
  await r.stop();
  const log = checkLog(dir, base, 3);
  expect(log.last).toBe(head);
  expect(log.records).toBe(10_000);
  expect(await checkpointSequence(dir)).toBe(base);
  expect((await recoverStreamLog(dir, base)).lastSeq).toBe(head);
  console.log(`followed ${log.records} batches (${head - base} sequences) in ${ms.toFixed(0)} ms since PSYNC (master writes 5000/s)`);
}, 40_000);

test("throughput: 100,000 batches written as fast as the master can, followed to the same offset", async () => {
  const m = await startMaster(["--generate", "1x4KiB", "--seq", "1", "--write-rate", "1000000", "--write-total", "100000"]);
  cleanups.push(() => m.stop());
  const dir = temp();
  seedTarget(dir, "1x4KiB", 1);
  const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--stream-fsync", "never"]);
  cleanups.push(() => r.stop());
  const stream = await r.kvr.waitEvent((e) => e.event === "stream", 10_000);
  const base = (stream.from as number) - 1;
  const t0 = performance.now();
  const end = await until(async () => {
    const mi = await m.info();
    if (mi.kvr_batches_produced !== "100000") return null;
    const ri = await info(r.port);
    return ri.slave_repl_offset === mi.master_repl_offset ? mi : null;
  }, 30_000, "the replica at the master's offset after 100,000 batches");
  const ms = performance.now() - t0;
  await r.stop();
  const log = checkLog(dir, base, 1);
  expect(log.last).toBe(Number(end.master_repl_offset));
  expect(log.records).toBe(100_000);
  console.log(`throughput: ${log.records} batches in ${ms.toFixed(0)} ms = ${Math.round((log.records / ms) * 1000)} batches/s`);
}, 45_000);

test("SIGTERM while following at 5000/s: exits 0 at once; kvr-stream.log ends on a whole record", async () => {
  const m = await startMaster(["--generate", "1x4KiB", "--seq", "10", "--write-rate", "5000"]);
  cleanups.push(() => m.stop());
  const dir = temp();
  seedTarget(dir, "1x4KiB", 10);
  const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--stream-fsync", "never"]);
  cleanups.push(() => r.stop());
  await until(async () => Number((await info(r.port)).slave_repl_offset) > 3000, 10_000);
  const t0 = performance.now();
  expect(await r.kvr.stop("SIGTERM", 3000)).toBe(0);
  const ms = performance.now() - t0;
  expect(ms).toBeLessThan(1000);
  const rec = await recoverStreamLog(dir, 10);
  expect(rec.truncated).toBe(0);
  expect(rec.lastSeq).toBeGreaterThan(3000);
  expect(checkLog(dir, 10, 1).last).toBe(rec.lastSeq);
  console.log(`SIGTERM while following → exit in ${ms.toFixed(0)} ms, ${rec.records} batches logged`);
}, 20_000);
