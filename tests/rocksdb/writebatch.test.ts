import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Builder, DecodeError, RocksFormatError } from "../../lib/rocksdb/codec.ts";
import { LogWriter, readLogRecords, writeLogRecords } from "../../lib/rocksdb/log.ts";
import {
  BatchType,
  batchLastSequence,
  decodeWriteBatch,
  encodePutBatch,
  parseWriteBatchHeader,
  readWal,
  readWalFile,
  readWalFiles,
  type PutRecord,
} from "../../lib/rocksdb/writebatch.ts";
import { cleanupTemp, FIXTURE, tempDir } from "./helpers.ts";

afterAll(cleanupTemp);

const bytes = (x: Uint8Array | string): Buffer => (typeof x === "string" ? Buffer.from(x) : Buffer.from(x));

describe("WriteBatch", () => {
  test("encode Put records: exact bytes (header LE, tag 0x1, varint lengths)", () => {
    const b = encodePutBatch(0x0102030405, [{ key: "k", value: "vv" }]);
    expect([...b]).toEqual([0x05, 0x04, 0x03, 0x02, 0x01, 0, 0, 0, 1, 0, 0, 0, 0x01, 1, 0x6b, 2, 0x76, 0x76]);
    expect(parseWriteBatchHeader(b)).toEqual({ sequence: 0x0102030405, count: 1 });
  });

  test("round trip with long keys/values (multi-byte varints) and column families", () => {
    const puts: PutRecord[] = [
      { key: "a", value: "1" },
      { key: Buffer.alloc(300, 7), value: Buffer.alloc(70000, 9) },
      { key: "meta", value: "x", cf: 1 },
      { key: "", value: "" },
    ];
    const seq = 2 ** 45 + 3;
    const d = decodeWriteBatch(encodePutBatch(seq, puts));
    expect(d.sequence).toBe(seq);
    expect(d.count).toBe(4);
    expect(batchLastSequence(d)).toBe(seq + 3);
    expect(d.records.map((r) => [r.type, r.cf, bytes(r.key!), bytes(r.value!)])).toEqual(
      puts.map((p) => [p.cf ? BatchType.ColumnFamilyValue : BatchType.Value, p.cf ?? 0, bytes(p.key), bytes(p.value)]),
    );
  });

  test("other record kinds decode; LogData does not count; count mismatch and bad type are errors", () => {
    const b = new Builder().u64le(10).u32le(3);
    b.byte(BatchType.LogData).slice("blob");
    b.byte(BatchType.Deletion).slice("gone");
    b.byte(BatchType.ColumnFamilySingleDeletion).varint(2).slice("s");
    b.byte(BatchType.RangeDeletion).slice("a").slice("b");
    b.byte(BatchType.Noop);
    const d = decodeWriteBatch(b.finish());
    expect(d.records.map((r) => r.type)).toEqual([3, 0, 8, 0xf, 0xd]);
    expect(d.records[2].cf).toBe(2);
    const wrongCount = encodePutBatch(1, [{ key: "k", value: "v" }]);
    wrongCount.writeUInt32LE(2, 8);
    expect(() => decodeWriteBatch(wrongCount)).toThrow("header count 2 but 1 counted records");
    const badType = Buffer.concat([encodePutBatch(1, []), Buffer.from([0x7f])]);
    expect(() => decodeWriteBatch(badType)).toThrow("unknown WriteBatch record type 0x7f");
    expect(() => parseWriteBatchHeader(new Uint8Array(11))).toThrow(DecodeError);
    expect(() => decodeWriteBatch(encodePutBatch(1, [{ key: "key", value: "value" }]).subarray(0, 16))).toThrow("truncated");
  });

  test("the real Kvrocks WAL: 100 batches 2157..2256, each LogData + one Put in column family 1", () => {
    const data = readFileSync(join(FIXTURE, "000014.log"));
    const batches = [...readLogRecords(data)].map((r) => decodeWriteBatch(r.data));
    expect(batches.length).toBe(100);
    batches.forEach((b, i) => {
      expect(b.sequence).toBe(2157 + i);
      expect(b.count).toBe(1);
    });
    const last = batches[99].records.find((r) => r.type === BatchType.ColumnFamilyValue)!;
    expect(last.cf).toBe(1);
    expect(Buffer.from(last.key!).toString("latin1")).toContain("key:2100");
    expect(readWal(data, "000014.log")).toEqual({ file: "000014.log", batches: 100, firstSequence: 2157, lastSequence: 2256 });
  });
});

describe("WAL files", () => {
  test("a WAL written with the log writer reads back (multi-block, large batches)", async () => {
    const d = tempDir();
    const w = new LogWriter();
    const chunks: Buffer[] = [];
    let seq = 1000;
    for (let i = 0; i < 500; i++) {
      const n = 1 + (i % 7);
      const puts = Array.from({ length: n }, (_, j) => ({ key: `k${i}-${j}`, value: Buffer.alloc(i === 250 ? 100_000 : 40, i) }));
      chunks.push(w.add(encodePutBatch(seq, puts)));
      seq += n;
    }
    writeFileSync(join(d, "000007.log"), Buffer.concat(chunks));
    const s = await readWalFile(join(d, "000007.log"));
    expect(s.batches).toBe(500);
    expect(s.firstSequence).toBe(1000);
    expect(s.lastSequence).toBe(seq - 1);
    // every batch decodes in full too
    let next = 1000;
    for (const r of readLogRecords(Buffer.concat(chunks))) {
      const b = decodeWriteBatch(r.data);
      expect(b.sequence).toBe(next);
      next += b.count;
    }
  });

  test("recycled WAL: records of the file's earlier life (another log number) are not counted", async () => {
    const d = tempDir();
    const live = writeLogRecords([encodePutBatch(50, [{ key: "a", value: "b" }])], { recycleLogNumber: 9 });
    const stale = writeLogRecords([encodePutBatch(900, [{ key: "old", value: "x" }])], { recycleLogNumber: 4, offset: live.length });
    writeFileSync(join(d, "000009.log"), Buffer.concat([live, stale]));
    expect((await readWalFile(join(d, "000009.log"))).lastSequence).toBe(50);
  });

  test("readWalFiles: numeric order, empty WAL, errors name the file", async () => {
    const d = tempDir();
    writeFileSync(join(d, "000100.log"), writeLogRecords([encodePutBatch(20, [{ key: "a", value: "b" }])]));
    writeFileSync(join(d, "99.log"), writeLogRecords([encodePutBatch(10, [{ key: "a", value: "b" }])]));
    writeFileSync(join(d, "000200.log"), new Uint8Array(0));
    writeFileSync(join(d, "LOG"), "not a wal");
    const all = await readWalFiles(d);
    expect(all.map((w) => [w.file.slice(d.length + 1), w.lastSequence])).toEqual([["99.log", 10], ["000100.log", 20], ["000200.log", null]]);
    writeFileSync(join(d, "000300.log"), writeLogRecords([new Uint8Array(5)]));
    try {
      await readWalFiles(d);
      throw new Error("expected an error");
    } catch (e) {
      expect(e).toBeInstanceOf(RocksFormatError);
      expect((e as RocksFormatError).file).toBe(join(d, "000300.log"));
      expect((e as Error).message).toContain("at byte 0: bad WriteBatch");
    }
  });
});
