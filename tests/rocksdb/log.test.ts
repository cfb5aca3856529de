import { describe, expect, test } from "bun:test";
import { RocksFormatError } from "../../lib/rocksdb/codec.ts";
import { crc32c, maskCrc } from "../../lib/rocksdb/crc32c.ts";
import { BLOCK_SIZE, HEADER_SIZE, LogWriter, RECYCLABLE_HEADER_SIZE, readLogRecords, writeLogRecords, type ReadLogOptions } from "../../lib/rocksdb/log.ts";
import { errorOf } from "./helpers.ts";

function rec(n: number, fill: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (fill + i * 7) & 0xff;
  return b;
}

function readAll(data: Uint8Array, opts: ReadLogOptions = {}): Buffer[] {
  return [...readLogRecords(data, opts)].map((r) => Buffer.from(r.data));
}


describe("log format writer + reader", () => {
  test("round trip: empty, small, block-sized and multi-block records", () => {
    const records = [rec(0, 1), rec(10, 2), rec(BLOCK_SIZE - HEADER_SIZE, 3), rec(100, 4), rec(3 * BLOCK_SIZE + 17, 5), rec(1, 6)];
    const bytes = writeLogRecords(records);
    expect(readAll(bytes)).toEqual(records);
    // a 3-block record needs FIRST + MIDDLE… + LAST fragments: more headers than records
    let headers = 0;
    for (let pos = 0; pos < bytes.length; ) {
      const left = BLOCK_SIZE - (pos % BLOCK_SIZE);
      if (left < HEADER_SIZE) {
        pos += left;
        continue;
      }
      headers++;
      pos += HEADER_SIZE + bytes.readUInt16LE(pos + 4);
    }
    expect(headers).toBeGreaterThan(records.length + 2);
  });

  test("block trailers of every size 0..7 are padded and skipped", () => {
    for (let trailer = 0; trailer <= HEADER_SIZE; trailer++) {
      // first record leaves exactly `trailer` bytes in block 0
      const first = rec(BLOCK_SIZE - HEADER_SIZE - trailer, 9);
      const records = [first, rec(50, 1), rec(0, 2)];
      const bytes = writeLogRecords(records);
      if (trailer < HEADER_SIZE) expect(bytes.subarray(BLOCK_SIZE - trailer, BLOCK_SIZE).every((b) => b === 0)).toBe(true);
      expect(readAll(bytes)).toEqual(records);
      // the second record starts in block 1 unless a header fits in the trailer
      const offsets = [...readLogRecords(bytes)].map((r) => r.offset);
      expect(offsets[1]).toBe(trailer < HEADER_SIZE ? BLOCK_SIZE : BLOCK_SIZE - trailer);
    }
  });

  test("incremental writer (appending at an offset) equals the one-shot encoding", () => {
    const records = [rec(40000, 1), rec(5, 2), rec(70000, 3)];
    const whole = writeLogRecords(records);
    const w1 = new LogWriter();
    const part1 = w1.add(records[0]);
    const w2 = new LogWriter({ offset: part1.length });
    const rest = Buffer.concat([w2.add(records[1]), w2.add(records[2])]);
    expect(Buffer.concat([part1, rest]).equals(whole)).toBe(true);
    expect(w2.offset).toBe(whole.length);
  });

  test("recyclable records (11-byte header) round trip; another log number ends the log", () => {
    const records = [rec(3, 1), rec(BLOCK_SIZE, 2), rec(7, 3)];
    const bytes = writeLogRecords(records, { recycleLogNumber: 42 });
    expect(bytes[6]).toBe(5); // kRecyclableFullType
    expect(bytes.readUInt32LE(7)).toBe(42);
    expect(readAll(bytes, { logNumber: 42 })).toEqual(records);
    expect(readAll(bytes)).toEqual(records);
    // stale tail from the file's earlier use (log number 41) is not returned
    const stale = writeLogRecords([rec(5, 8)], { recycleLogNumber: 41, offset: bytes.length });
    const both = Buffer.concat([bytes, stale]);
    expect(readAll(both, { logNumber: 42 })).toEqual(records);
    expect(RECYCLABLE_HEADER_SIZE).toBe(11);
  });

  test("zero-filled (preallocated) tail is the end of the log", () => {
    const records = [rec(20, 1), rec(30, 2)];
    const bytes = Buffer.concat([writeLogRecords(records), Buffer.alloc(5000)]);
    expect(readAll(bytes)).toEqual(records);
  });

  test("a flipped byte anywhere is a checksum (or length) error naming file and offset", () => {
    const records = [rec(100, 1), rec(BLOCK_SIZE + 500, 2), rec(30, 3)];
    const bytes = writeLogRecords(records);
    const secondAt = HEADER_SIZE + 100;
    // payload byte of the second record, in its LAST fragment (second block)
    const bad = Buffer.from(bytes);
    bad[BLOCK_SIZE + HEADER_SIZE + 3] ^= 0x40;
    const e = errorOf(() => readAll(bad, { file: "MANIFEST-000009" }));
    expect(e.file).toBe("MANIFEST-000009");
    expect(e.offset).toBe(BLOCK_SIZE);
    expect(e.message).toContain("MANIFEST-000009 at byte 32768");
    expect(e.message).toContain("checksum mismatch");
    // every single-byte flip in the first two records is detected
    for (let i = 0; i < secondAt + 40; i++) {
      const b = Buffer.from(bytes);
      b[i] ^= 0x01;
      expect(() => readAll(b)).toThrow(RocksFormatError);
    }
  });

  test("truncation inside a header, a payload, or between fragments is an error", () => {
    const records = [rec(100, 1), rec(BLOCK_SIZE + 500, 2)];
    const bytes = writeLogRecords(records);
    const e1 = errorOf(() => readAll(bytes.subarray(0, 3)));
    expect(e1.offset).toBe(0);
    expect(e1.message).toContain("truncated record header");
    const e2 = errorOf(() => readAll(bytes.subarray(0, 50)));
    expect(e2.message).toContain("truncated record");
    expect(e2.offset).toBe(0);
    // cut right at the block boundary: FIRST fragment complete, LAST missing
    const e3 = errorOf(() => readAll(bytes.subarray(0, BLOCK_SIZE), { file: "f" }));
    expect(e3.offset).toBe(HEADER_SIZE + 100);
    expect(e3.message).toContain("no LAST fragment");
    expect(readAll(bytes.subarray(0, HEADER_SIZE + 100))).toEqual([records[0]]);
  });

  test("bad length, fragments out of order, unknown type", () => {
    const w = (t: number, payload: Buffer) => {
      const b = Buffer.from(writeLogRecords([payload]));
      b[6] = t;
      // recompute CRC for the changed type so only the structure is wrong
      b.writeUInt32LE(maskCrc(crc32c(b, 0, 6, HEADER_SIZE + payload.length)), 0);
      return b;
    };
    expect(errorOf(() => readAll(w(3, rec(5, 1)))).message).toContain("MIDDLE fragment without a FIRST");
    expect(errorOf(() => readAll(w(4, rec(5, 1)))).message).toContain("LAST fragment without a FIRST");
    expect(errorOf(() => readAll(Buffer.concat([w(2, rec(5, 1)), w(1, rec(5, 1))]))).message).toContain("FULL record while a fragmented record");
    expect(errorOf(() => readAll(w(77, rec(5, 1)))).message).toContain("unknown record type 77");
    expect(errorOf(() => readAll(w(9, rec(1, 1)))).message).toContain("compressed WAL");
    // user-defined-timestamp metadata records are skipped
    expect(readAll(Buffer.concat([w(10, rec(4, 1)), writeLogRecords([rec(3, 3)]).subarray(0)]))).toEqual([rec(3, 3)]);
    const big = Buffer.from(writeLogRecords([rec(10, 1)]));
    big.writeUInt16LE(BLOCK_SIZE, 4);
    const padded = Buffer.concat([big, Buffer.alloc(2 * BLOCK_SIZE, 1)]);
    expect(errorOf(() => readAll(padded)).message).toContain("runs past the end of its 32768-byte block");
  });
});
