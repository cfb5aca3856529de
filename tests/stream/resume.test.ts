/**
 * Resuming the stream: after a master restart (SIGKILL, same flags) and after a replica restart
 * the replica continues by PSYNC <last applied + 1> without a full sync; a sequence outside the
 * master's window falls back to a full sync; a torn kvr-stream.log tail is cut at startup.
 */
import { afterEach, expect, test } from "bun:test";
import { appendFileSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { checkpointSequence } from "../../lib/rocksdb/index.ts";
import { recoverStreamLog, STREAM_LOG } from "../../lib/replica/streamlog.ts";
import { tempDir, type KvrEvent } from "../helpers/kvr.ts";
import { info, startMaster, startReplica, until, type Master } from "../replica/helpers.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
function temp(): string {
  const d = tempDir("kvr-resume-");
  cleanups.push(d.cleanup);
  return d.path;
}
const count = (events: KvrEvent[], pred: (e: KvrEvent) => boolean) => events.filter(pred).length;
const isState = (s: string) => (e: KvrEvent) => e.event === "state" && e.state === s;

/** The last sequence a replica's directory says it applied (checkpoint + kvr-stream.log). */
async function appliedInDir(dir: string): Promise<number> {
  return (await recoverStreamLog(dir, await checkpointSequence(dir))).lastSeq;
}

test("master SIGKILLed mid-stream and restarted with the same flags: the replica resumes by PSYNC, no full sync", async () => {
  const flags = ["--generate", "2x32KiB:seed=9", "--seq", "1000", "--write-rate", "5000", "--wal-window", "200000"];
  let m: Master = await startMaster(flags);
  const port = m.port;
  cleanups.push(() => m.stop());
  const dir = temp();
  const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${port}`, "--retry-delay", "100ms", "--stream-timeout", "2s"]);
  cleanups.push(() => r.stop());
  await r.kvr.waitEvent((e) => e.event === "stream", 10_000);
  await until(async () => Number((await info(r.port)).slave_repl_offset) > 6000, 10_000);
  await m.stop("SIGKILL");
  const before = Number((await info(r.port)).slave_repl_offset);
  await until(async () => (await info(r.port)).master_link_status === "down", 5000);

  m = await startMaster(flags, port);
  const second = await r.kvr.waitEvent((e) => e.event === "stream" && count(r.kvr.events.slice(0, r.kvr.events.indexOf(e) + 1), (x) => x.event === "stream") === 2, 15_000);
  // Resumed exactly after what it had, on the restarted master's regenerated history.
  expect(second.from).toBe(before + 1);
  expect(count(r.kvr.events, isState("fetch_meta"))).toBe(1);
  expect(count(r.kvr.events, (e) => e.event === "psync-refused")).toBe(0);
  await until(async () => Number((await info(r.port)).slave_repl_offset) > before + 5000, 10_000);
  const mi = await m.info();
  expect(Number(mi.master_repl_offset)).toBeGreaterThan(before);
  expect(mi.connected_slaves).toBe("1");
  await r.stop();
  // The log is one unbroken chain from the checkpoint through both masters' batches.
  const rec = await recoverStreamLog(dir, await checkpointSequence(dir));
  expect(rec.truncated).toBe(0);
  expect(rec.lastSeq).toBeGreaterThan(before + 5000);
}, 45_000);

test("replica restarted: resumes from checkpoint + kvr-stream.log (torn tail cut); outside the window → full sync", async () => {
  const m = await startMaster(["--generate", "2x32KiB", "--seq", "50", "--write-rate", "5000", "--wal-window", "3000"]);
  cleanups.push(() => m.stop());
  const dir = temp();
  const args = ["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--retry-delay", "100ms", "--stream-fsync", "always"];
  const r1 = await startReplica(args);
  cleanups.push(() => r1.stop());
  await r1.kvr.waitEvent((e) => e.event === "stream", 10_000);
  await until(async () => Number((await info(r1.port)).slave_repl_offset) > 2000, 10_000);
  expect(await r1.stop()).toBe(0);
  const applied = await appliedInDir(dir);
  // A crash mid-append leaves a torn record: 8 header bytes announcing 100 bytes, then 5.
  const size = statSync(join(dir, STREAM_LOG)).size;
  appendFileSync(join(dir, STREAM_LOG), Buffer.concat([Buffer.from([100, 0, 0, 0, 1, 2, 3, 4]), Buffer.alloc(5)]));

  // Restarted at once: within the window, so PSYNC <applied + 1> → +OK, no full sync.
  const r2 = await startReplica(args);
  cleanups.push(() => r2.stop());
  const s2 = await r2.kvr.waitEvent((e) => e.event === "stream", 10_000);
  expect(s2.from).toBe(applied + 1);
  expect(count(r2.kvr.events, isState("fetch_meta"))).toBe(0);
  expect(r2.kvr.stderr()).toContain("torn record");
  await until(async () => Number((await info(r2.port)).slave_repl_offset) > applied + 1000, 10_000);
  expect(await r2.stop()).toBe(0);
  expect(statSync(join(dir, STREAM_LOG)).size).toBeGreaterThan(size);
  const applied2 = await appliedInDir(dir);

  // Away for longer than the window holds (3000 batches at 5000/s): PSYNC is refused → full sync.
  await until(async () => Number((await m.info()).kvr_wal_first_seq) > applied2 + 1, 10_000);
  const r3 = await startReplica(args);
  cleanups.push(() => r3.stop());
  const s3 = await r3.kvr.waitEvent((e) => e.event === "stream", 15_000);
  const refused = r3.kvr.events.find((e) => e.event === "psync-refused")!;
  expect(refused).toMatchObject({ seq: applied2 + 1, reply: "-ERR sequence out of range, please use fullsync" });
  expect(count(r3.kvr.events, isState("fetch_meta"))).toBe(1);
  const restore = r3.kvr.events.find((e) => e.event === "restore")!;
  expect(restore.seq as number).toBeGreaterThan(applied2);
  expect(s3.from).toBe((restore.seq as number) + 1);
  await until(async () => (await info(r3.port)).master_link_status === "up", 5000);
  await r3.stop();
  // The full sync replaced the checkpoint and started a new log after it.
  expect(await checkpointSequence(dir)).toBe(restore.seq as number);
  expect(existsSync(join(dir, STREAM_LOG))).toBe(true);
  expect(await appliedInDir(dir)).toBeGreaterThanOrEqual(restore.seq as number);
}, 45_000);
