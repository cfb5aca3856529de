/**
 * A multi-GiB kvr-stream.log (as a long-lived replica of an older kvr left it): recovery reads it
 * record by record with flat memory, a SIGTERM during the scan stops at once, and the log is
 * compacted to one resume record so the next reconnect reads 28 bytes. The log is sparse (8
 * batches of 256 MiB whose bodies are holes), so writing it costs nothing; the CRCs of its
 * records are computed without touching the zeros.
 */
import { expect, test } from "bun:test";
import { closeSync, ftruncateSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { crc32c, encodePutBatch, maskCrc } from "../../lib/rocksdb/index.ts";
import { encodeRecords, encodeResumeRecord, MAX_BATCH_BYTES, recoverStreamLog, STREAM_LOG } from "../../lib/replica/streamlog.ts";
import { cleanupAfterEach } from "../helpers/kvr.ts";
import { startReplica, until } from "../replica/helpers.ts";
import { scriptedMaster, writeCheckpoint } from "./scripted-master.ts";

const { defer, temp } = cleanupAfterEach();
const POLY = 0x82f63b78;

/** The CRC-32C register map of one zero byte, as 32 columns (it is linear over GF(2)). */
function zeroByteMatrix(): number[] {
  return Array.from({ length: 32 }, (_, j) => {
    let c = (1 << j) >>> 0;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    return c >>> 0;
  });
}
const apply = (m: number[], v: number) => {
  let out = 0;
  for (let j = 0; v; j++, v >>>= 1) if (v & 1) out ^= m[j];
  return out >>> 0;
};
const compose = (a: number[], b: number[]) => b.map((col) => apply(a, col));

/** crc32c(zeros(n), prev) in O(log n): the register after n zero bytes is M^n applied to it. */
function crc32cZeros(prev: number, n: number): number {
  let m = zeroByteMatrix();
  let reg = ~prev >>> 0;
  for (; n > 0; n = Math.floor(n / 2)) {
    if (n % 2) reg = apply(m, reg);
    m = compose(m, m);
  }
  return ~reg >>> 0;
}

/** Peak resident set size of a process (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Sparse log: `big` batches of MAX_BATCH_BYTES from base + 1 (header, then zeros), then real small ones. */
function writeBigLog(dir: string, base: number, big: number, small: Buffer[]): number {
  const fd = openSync(join(dir, STREAM_LOG), "w");
  let off = 0;
  for (let i = 0; i < big; i++) {
    const head = Buffer.alloc(12);
    head.writeBigUInt64LE(BigInt(base + 1 + i), 0);
    head.writeUInt32LE(1, 8);
    const rec = Buffer.alloc(8 + 12);
    rec.writeUInt32LE(MAX_BATCH_BYTES, 0);
    rec.writeUInt32LE(maskCrc(crc32cZeros(crc32c(head), MAX_BATCH_BYTES - 12)), 4);
    head.copy(rec, 8);
    writeSync(fd, rec, 0, rec.length, off);
    off += 8 + MAX_BATCH_BYTES;
  }
  ftruncateSync(fd, off);
  const tail = encodeRecords(small);
  writeSync(fd, tail, 0, tail.length, off);
  closeSync(fd);
  return off + tail.length;
}

test("CRC-32C over zeros without the zeros matches the real thing", () => {
  const head = Buffer.from("0123456789ab");
  for (const n of [0, 1, 7, 1000, 65_537]) expect(crc32cZeros(crc32c(head), n)).toBe(crc32c(Buffer.concat([head, Buffer.alloc(n)])));
});

test("a 2 GiB kvr-stream.log: SIGTERM during recovery exits at once; recovery keeps memory flat, resumes after its last batch and compacts it", async () => {
  const dir = writeCheckpoint(temp(), 1000);
  const small = Array.from({ length: 5 }, (_, i) => encodePutBatch(1009 + i, [{ key: `k${i}`, value: "v" }]));
  const size = writeBigLog(dir, 1000, 8, small);
  expect(size).toBeGreaterThan(2 * 1024 ** 3);
  const m = await scriptedMaster(async (n, _from, conn) => {
    if (n === 0) conn.destroy(); // the first stream drops at once: the replica reconnects
    else await Bun.sleep(5000);
  }, defer);
  const args = ["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--retry-delay", "100ms"];

  // A stop in the middle of the scan does not wait for it, and changes nothing.
  const r1 = await startReplica(args);
  defer(() => r1.stop());
  await r1.kvr.waitEvent((e) => e.event === "state" && e.state === "replconf", 10_000);
  await Bun.sleep(150);
  const t0 = performance.now();
  expect(await r1.kvr.stop("SIGTERM", 10_000)).toBe(0);
  const stopMs = performance.now() - t0;
  expect(m.psyncs).toEqual([]);
  expect(stopMs).toBeLessThan(1000);
  expect(statSync(join(dir, STREAM_LOG)).size).toBe(size);

  const r2 = await startReplica(args);
  defer(() => r2.stop());
  const t1 = performance.now();
  await until(() => m.psyncs.length >= 1, 60_000);
  const scanMs = performance.now() - t1;
  const peak = peakRss(r2.kvr.proc.pid);
  // Every batch kept: PSYNC continues after the last one.
  expect(m.psyncs[0]).toBe(1014);
  expect(readFileSync(join(dir, STREAM_LOG)).equals(encodeResumeRecord(1000, 1013))).toBe(true);
  // The reconnect after the dropped stream reads the compacted log: PSYNC again within the retry delay.
  const t2 = performance.now();
  await until(() => m.psyncs.length >= 2, 5000);
  const reconnectMs = performance.now() - t2;
  expect(m.psyncs[1]).toBe(1014);
  console.log(
    `2 GiB log (${size} bytes): SIGTERM mid-scan → exit in ${stopMs.toFixed(0)} ms; full scan → PSYNC in ${scanMs.toFixed(0)} ms, ` +
      `replica peak RSS ${(peak / 1e6).toFixed(1)} MB; reconnect on the compacted log → PSYNC in ${reconnectMs.toFixed(0)} ms`,
  );
  // Reading the log whole took more than its size; one 1 MiB buffer keeps the peak near an idle replica's.
  expect(peak).toBeLessThan(150e6);
  expect(reconnectMs).toBeLessThan(2000);
  expect(await r2.stop()).toBe(0);
  expect(await recoverStreamLog(dir, 1000)).toMatchObject({ lastSeq: 1013, truncated: 0 });
}, 90_000);
