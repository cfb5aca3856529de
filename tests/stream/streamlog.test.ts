/** kvr-stream.log: records, recovery against the checkpoint's sequence, truncation, fsync policies. */
import { afterEach, expect, test } from "bun:test";
import { appendFileSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodePutBatch } from "../../lib/rocksdb/index.ts";
import { encodeRecords, recoverStreamLog, STREAM_LOG, StreamLogWriter } from "../../lib/replica/streamlog.ts";
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
  expect(await recoverStreamLog(dir(), 77)).toEqual({ lastSeq: 77, records: 0, bytes: 0, truncated: 0, reason: null });
});

for (const policy of ["always", "1s", "never"] as const) {
  test(`append and recover (--stream-fsync ${policy})`, async () => {
    const d = dir();
    const w = await StreamLogWriter.open(d, policy);
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
    const w = await StreamLogWriter.open(d, "never");
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
