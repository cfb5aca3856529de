/** kvr-stream.log: records, recovery against the checkpoint's sequence, truncation, fsync policies. */
import { afterEach, expect, test } from "bun:test";
import { appendFileSync, existsSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodePutBatch } from "../../lib/rocksdb/index.ts";
import { encodeRecords, encodeResumeRecord, recoverStreamLog, STREAM_LOG, StreamLogWriter } from "../../lib/replica/streamlog.ts";
import { parseFsync } from "../../lib/replica/command.ts";
import { tempDir } from "../helpers/kvr.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});
function dir(): string {
  const d = tempDir("kvr-streamlog-");
  cleanups.push(d.cleanup);
  return d.path;
}
/** Batches of 2 records each from `from`: sequences from, from+2, … */
const batches = (from: number, n: number) => Array.from({ length: n }, (_, i) => encodePutBatch(from + 2 * i, [{ key: "a", value: "1" }, { key: "b", value: "2" }]));

test("a missing log: the checkpoint's sequence", async () => {
  expect(await recoverStreamLog(dir(), 77)).toEqual({ lastSeq: 77, records: 0, bytes: 0, truncated: 0, reason: null, compacted: false });
});

for (const policy of ["always", "1s", "never"] as const) {
  test(`append and recover (--stream-fsync ${policy})`, async () => {
    const d = dir();
    const w = await StreamLogWriter.open(d, policy, 101);
    await w.append(batches(101, 3));
    await w.append(batches(107, 2));
    await w.close();
    expect(readFileSync(join(d, STREAM_LOG)).equals(encodeRecords(batches(101, 5)))).toBe(true);
    expect(await recoverStreamLog(d, 100)).toMatchObject({ lastSeq: 110, records: 5, truncated: 0 });
  });
}

test("torn header, torn body, CRC mismatch and a record that does not continue are cut off", async () => {
  const good = encodeRecords(batches(11, 4)); // 11..18
  const cases: Array<[string, Buffer, string]> = [
    ["torn header", Buffer.from([1, 2, 3]), "torn record header"],
    ["torn body", encodeRecords(batches(19, 1)).subarray(0, 15), "torn record"],
    ["crc", (() => { const b = encodeRecords(batches(19, 1)); b[b.length - 1] ^= 1; return b; })(), "CRC mismatch"],
    ["gap", encodeRecords(batches(25, 1)), "expected 19"],
  ];
  for (const [what, tail, reason] of cases) {
    const d = dir();
    writeFileSync(join(d, STREAM_LOG), good);
    // A torn record is the end of the file; after a bad or stray one, good-looking records are cut too.
    appendFileSync(join(d, STREAM_LOG), what.startsWith("torn") ? tail : Buffer.concat([tail, encodeRecords(batches(21, 1))]));
    const r = await recoverStreamLog(d, 10);
    expect({ what, ...r }).toMatchObject({ what, lastSeq: 18, records: 4, bytes: good.length });
    expect(r.reason).toContain(reason);
    expect(statSync(join(d, STREAM_LOG)).size).toBe(good.length);
    // Appending after recovery continues the chain.
    const w = await StreamLogWriter.open(d, "never", 19);
    await w.append(batches(19, 1));
    await w.close();
    expect((await recoverStreamLog(d, 10)).lastSeq).toBe(20);
  }
});

test("a log that does not start right after the checkpoint is dropped entirely", async () => {
  const d = dir();
  writeFileSync(join(d, STREAM_LOG), encodeRecords(batches(500, 3)));
  expect(await recoverStreamLog(d, 100)).toMatchObject({ lastSeq: 100, records: 0, truncated: encodeRecords(batches(500, 3)).length });
  expect(statSync(join(d, STREAM_LOG)).size).toBe(0);
});

test("--stream-fsync accepts always|1s|never only", () => {
  expect(parseFsync("always")).toBe("always");
  expect(() => parseFsync("sometimes")).toThrow("--stream-fsync: 'sometimes' is not one of always, 1s, never");
});

test("a resume record stands for the batches it replaced; batch records after it continue the chain", async () => {
  const d = dir();
  writeFileSync(join(d, STREAM_LOG), Buffer.concat([encodeResumeRecord(100, 5000), encodeRecords(batches(5001, 3))]));
  expect(await recoverStreamLog(d, 100)).toMatchObject({ lastSeq: 5006, records: 3, truncated: 0, reason: null, compacted: false });
  // For another checkpoint (a different base), the whole log is dropped.
  expect(await recoverStreamLog(d, 99)).toMatchObject({ lastSeq: 99, records: 0, bytes: 0, reason: "the log continues a checkpoint at sequence 100, not 99" });
  expect(statSync(join(d, STREAM_LOG)).size).toBe(0);
  // Only as the first record, and with a good CRC.
  writeFileSync(join(d, STREAM_LOG), Buffer.concat([encodeRecords(batches(101, 1)), encodeResumeRecord(100, 5000)]));
  expect((await recoverStreamLog(d, 100)).reason).toContain("only the first record");
  const bad = encodeResumeRecord(100, 5000);
  bad[bad.length - 1] ^= 1;
  writeFileSync(join(d, STREAM_LOG), bad);
  expect(await recoverStreamLog(d, 100)).toMatchObject({ lastSeq: 100, reason: "CRC mismatch in the record at byte 0" });
});

test("recovery compacts a log longer than the limit to one resume record; the result recovers the same", async () => {
  const d = dir();
  const all = encodeRecords(batches(11, 200)); // 11..410
  writeFileSync(join(d, STREAM_LOG), Buffer.concat([all, Buffer.from([9, 9, 9])]));
  const r = await recoverStreamLog(d, 10, { compactBytes: 4096 });
  expect(r).toMatchObject({ lastSeq: 410, records: 200, bytes: all.length, truncated: 3, compacted: true });
  expect(readFileSync(join(d, STREAM_LOG)).equals(encodeResumeRecord(10, 410))).toBe(true);
  expect(existsSync(join(d, `${STREAM_LOG}.tmp`))).toBe(false);
  expect(await recoverStreamLog(d, 10, { compactBytes: 4096 })).toMatchObject({ lastSeq: 410, records: 0, truncated: 0, compacted: false });
  // The writer continues after it.
  const w = await StreamLogWriter.open(d, "always", 411);
  await w.append(batches(411, 2));
  await w.close();
  expect(await recoverStreamLog(d, 10)).toMatchObject({ lastSeq: 414, records: 2, truncated: 0 });
});

test("the writer compacts the log while appending: it never grows far past the limit, and recovers to the last batch", async () => {
  const d = dir();
  const w = await StreamLogWriter.open(d, "1s", 11, { compactBytes: 8192 });
  let maxSize = 0;
  for (let i = 0; i < 100; i++) {
    await w.append(batches(11 + 20 * i, 10));
    maxSize = Math.max(maxSize, statSync(join(d, STREAM_LOG)).size);
  }
  await w.close();
  // One append is 10 records of ~50 bytes: the log stays under the limit plus one append.
  expect(maxSize).toBeLessThan(8192 + encodeRecords(batches(11, 10)).length);
  expect(await recoverStreamLog(d, 10)).toMatchObject({ lastSeq: 10 + 2000, truncated: 0, reason: null });
  // A writer opened on a compacted log keeps its base for the next compaction.
  const w2 = await StreamLogWriter.open(d, "never", 2011, { compactBytes: 1024 });
  await w2.append(batches(2011, 30));
  await w2.close();
  expect(await recoverStreamLog(d, 10)).toMatchObject({ lastSeq: 2070, truncated: 0, reason: null });
});

test("a symlinked kvr-stream.log is refused by recovery and by the writer: the file it points to is untouched", async () => {
  const d = dir();
  const outside = join(dir(), "precious.txt");
  writeFileSync(outside, "28 bytes that must not move");
  symlinkSync(outside, join(d, STREAM_LOG));
  await expect(recoverStreamLog(d, 10)).rejects.toThrow("is a symbolic link");
  await expect(StreamLogWriter.open(d, "always", 11)).rejects.toThrow("is a symbolic link");
  expect(readFileSync(outside, "utf8")).toBe("28 bytes that must not move");
});
