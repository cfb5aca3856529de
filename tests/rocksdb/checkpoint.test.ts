import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkpointSequence, inspectCheckpoint } from "../../lib/rocksdb/checkpoint.ts";
import { buildManifest, currentFileFor } from "../../lib/rocksdb/manifest.ts";
import { LogWriter } from "../../lib/rocksdb/log.ts";
import { encodePutBatch } from "../../lib/rocksdb/writebatch.ts";
import { asyncErrorOf, cleanupTemp, FIXTURE, fixtureCopy, tempDir } from "./helpers.ts";

afterAll(cleanupTemp);


describe("checkpointSequence", () => {
  test("the real Kvrocks checkpoint: MANIFEST 2156, WAL up to 2256 → 2256", async () => {
    const info = await inspectCheckpoint(FIXTURE);
    expect(info.manifestSequence).toBe(2156);
    expect(info.wal.map((w) => [w.firstSequence, w.lastSequence, w.batches])).toEqual([[2157, 2256, 100]]);
    expect(info.sequence).toBe(2256);
    expect(info.manifest).toBe(join(FIXTURE, "MANIFEST-000011"));
    expect(await checkpointSequence(FIXTURE)).toBe(2256);
  });

  test("without the WAL the MANIFEST's sequence is the answer", async () => {
    const d = fixtureCopy();
    rmSync(join(d, "000014.log"));
    expect(await checkpointSequence(d)).toBe(2156);
  });

  test("a WAL older than the MANIFEST does not lower the sequence", async () => {
    const d = tempDir();
    writeFileSync(join(d, "MANIFEST-000005"), buildManifest({ seq: 900 }));
    writeFileSync(join(d, "CURRENT"), currentFileFor(5));
    const w = new LogWriter();
    writeFileSync(join(d, "000004.log"), Buffer.concat([w.add(encodePutBatch(100, [{ key: "a", value: "b" }]))]));
    expect(await checkpointSequence(d)).toBe(900);
    const w2 = new LogWriter();
    writeFileSync(join(d, "000006.log"), Buffer.concat([901, 903].map((s) => w2.add(encodePutBatch(s, [{ key: "a", value: "b" }, { key: "c", value: "d" }])))));
    expect(await checkpointSequence(d)).toBe(904);
  });

  test("a corrupt or truncated WAL in the checkpoint is an error naming it and the offset", async () => {
    const d = fixtureCopy();
    const wal = join(d, "000014.log");
    const data = Buffer.from(readFileSync(wal));
    data[3000] ^= 0xff;
    writeFileSync(wal, data);
    let e = await asyncErrorOf(checkpointSequence(d));
    expect(e.file).toBe(wal);
    expect(e.offset).not.toBeNull();
    expect(e.offset!).toBeLessThanOrEqual(3000);
    expect(e.offset!).toBeGreaterThan(2900);
    writeFileSync(wal, readFileSync(join(FIXTURE, "000014.log")).subarray(0, 5990));
    e = await asyncErrorOf(checkpointSequence(d));
    expect(e.message).toContain("truncated");
  });

  test("not a checkpoint: clear error", async () => {
    const e = await asyncErrorOf(checkpointSequence(tempDir()));
    expect(e.message).toContain("cannot read CURRENT (ENOENT): not a RocksDB directory or an incomplete checkpoint");
  });
});
