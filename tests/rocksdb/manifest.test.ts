import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Builder } from "../../lib/rocksdb/codec.ts";
import { BLOCK_SIZE, readLogRecords, writeLogRecords } from "../../lib/rocksdb/log.ts";
import {
  buildManifest,
  currentFileFor,
  decodeVersionEdit,
  encodeVersionEdit,
  internalKey,
  readManifest,
  readManifestSequence,
  Tag,
  type NewFileEntry,
} from "../../lib/rocksdb/manifest.ts";
import { asyncErrorOf, cleanupTemp, errorOf, FIXTURE, fixtureCopy, tempDir } from "./helpers.ts";

afterAll(cleanupTemp);

const MANIFEST = join(FIXTURE, "MANIFEST-000011");



/** A MANIFEST from raw edit records, with the fields RocksDB requires up front. */
function manifestOf(...edits: Uint8Array[]): Buffer {
  return writeLogRecords([encodeVersionEdit({ comparator: "leveldb.BytewiseComparator", logNumber: 0, nextFileNumber: 5, lastSequence: 1 }), ...edits]);
}

describe("MANIFEST of the real Kvrocks checkpoint", () => {
  test("last sequence 2156, seven column families, comparator, live files", () => {
    const m = readManifest(readFileSync(MANIFEST), MANIFEST);
    expect(m.lastSequence).toBe(2156);
    expect(m.comparator).toBe("leveldb.BytewiseComparator");
    expect([...m.columnFamilies.values()]).toEqual(["default", "metadata", "zset_score", "pubsub", "propagate", "stream", "search"]);
    const live = [...m.liveFiles.values()].flat().map((f) => f.number).sort();
    expect(live).toEqual([16, 18]); // the checkpoint's two SST files
    expect(m.logNumber).toBe(14);
  });

  test("readManifestSequence follows CURRENT", async () => {
    expect(await readManifestSequence(FIXTURE)).toBe(2156);
  });

  test("every cut of the file inside a record is a truncation error naming file and offset", () => {
    const data = readFileSync(MANIFEST);
    const ends = new Set([...readLogRecords(data)].map((r) => r.offset));
    ends.add(data.length);
    let checked = 0;
    for (let cut = 1; cut < data.length; cut++) {
      if (ends.has(cut)) continue; // a cut between records is a shorter valid log
      const e = errorOf(() => readManifest(data.subarray(0, cut), "MANIFEST-000011"));
      expect(e.file).toBe("MANIFEST-000011");
      expect(e.offset).not.toBeNull();
      expect(e.offset!).toBeLessThan(cut);
      expect(e.message).toMatch(/^MANIFEST-000011 at byte \d+: .*truncated/);
      checked++;
    }
    expect(checked).toBeGreaterThan(1000);
  });

  test("a flipped byte is a checksum error with the offset of its record", () => {
    const data = Buffer.from(readFileSync(MANIFEST));
    const offsets = [...readLogRecords(data)].map((r) => r.offset);
    const target = offsets[10];
    data[target + 12] ^= 0x10;
    const e = errorOf(() => readManifest(data, "m"));
    expect(e.offset).toBe(target);
    expect(e.message).toContain("checksum mismatch");
  });
});

describe("VersionEdit fields", () => {
  const key = internalKey("user-key", 99);

  test("each field kind is skipped exactly: last sequence after it still decodes", () => {
    const cases: [string, (b: Builder) => void][] = [
      ["compact cursor", (b) => b.varint(Tag.CompactCursor).varint(2).slice(key)],
      ["deleted file", (b) => b.varint(Tag.DeletedFile).varint(1).varint(123456789)],
      ["new file (leveldb)", (b) => b.varint(Tag.NewFile).varint(0).varint(7).varint(1000).slice(key).slice(key)],
      ["new file 2", (b) => b.varint(Tag.NewFile2).varint(1).varint(7).varint(1000).slice(key).slice(key).varint(3).varint(9)],
      ["new file 3", (b) => b.varint(Tag.NewFile3).varint(1).varint(7).varint(2).varint(1000).slice(key).slice(key).varint(3).varint(9)],
      [
        "new file 4 with custom fields (known, unknown-safe, path id)",
        (b) =>
          b.varint(Tag.NewFile4).varint(2).varint(8).varint(5000).slice(key).slice(key).varint(1).varint(99)
            .varint(2).slice(Uint8Array.of(1)) // need compaction
            .varint(5).slice(Uint8Array.of(0x80, 1)) // oldest ancestor time
            .varint(12).slice(new Uint8Array(16)) // unique id
            .varint(37).slice(Buffer.from("future")) // unknown, safe to ignore (bit 6 clear)
            .varint(65).slice(Uint8Array.of(3)) // path id
            .varint(1),
      ],
      ["prev log / min log to keep / max cf", (b) => b.varint(Tag.PrevLogNumber).varint(4).varint(Tag.MinLogNumberToKeep).varint(3).varint(Tag.MaxColumnFamily).varint(6)],
      ["column family add/drop", (b) => b.varint(Tag.ColumnFamily).varint(3).varint(Tag.ColumnFamilyAdd).slice("cf3").varint(Tag.ColumnFamilyDrop)],
      ["blob file addition", (b) => b.varint(Tag.BlobFileAddition).varint(12).varint(100).varint(2000).slice("crc32c").slice("abcd").varint(7).slice("x").varint(0)],
      ["blob file garbage", (b) => b.varint(Tag.BlobFileGarbage).varint(12).varint(5).varint(300).varint(0)],
      ["db id", (b) => b.varint(Tag.DbId).slice("5f3e-db-id")],
      ["wal addition/deletion (both formats)", (b) => b.varint(Tag.WalAddition).slice("a").varint(Tag.WalAddition2).slice(Uint8Array.of(14, 1, 2, 0)).varint(Tag.WalDeletion2).slice(Uint8Array.of(13)).varint(Tag.WalDeletion).slice("d")],
      ["full_history_ts_low", (b) => b.varint(Tag.FullHistoryTsLow).slice(new Uint8Array(8))],
      ["deprecated blob records", (b) => b.varint(Tag.BlobFileAdditionDeprecated).slice("x").varint(Tag.BlobFileGarbageDeprecated).slice("y")],
      ["persist user-defined timestamps", (b) => b.varint(Tag.PersistUserDefinedTimestamps).slice(Uint8Array.of(1))],
      ["unknown tag with the safe-ignore bit", (b) => b.varint(Tag.SafeIgnoreMask + 4242).slice(new Uint8Array(300))],
    ];
    for (const [name, fill] of cases) {
      const b = new Builder();
      fill(b);
      b.varint(Tag.LastSequence).varint(4242424242);
      const e = decodeVersionEdit(b.finish());
      expect({ name, seq: e.lastSequence }).toEqual({ name, seq: 4242424242 });
    }
  });

  test("new file entries decode with their fields", () => {
    const b = new Builder();
    b.varint(Tag.NewFile4).varint(2).varint(8).varint(5000).slice(key).slice(internalKey("z", 5)).varint(1).varint(99).varint(65).slice(Uint8Array.of(3)).varint(1);
    b.varint(Tag.NewFile3).varint(1).varint(7).varint(2).varint(1000).slice(key).slice(key).varint(3).varint(9);
    const e = decodeVersionEdit(b.finish());
    expect(e.newFiles.map((f) => [f.level, f.number, f.size, f.smallestSeqno, f.largestSeqno, f.pathId])).toEqual([
      [2, 8, 5000, 1, 99, 3],
      [1, 7, 1000, 3, 9, 2],
    ]);
    expect(Buffer.from(e.newFiles[0].smallest).equals(key)).toBe(true);
  });

  test("unknown tag without the safe-ignore bit, unsafe custom field, truncated field: errors with offsets", () => {
    const unknown = new Builder().varint(Tag.LastSequence).varint(5).varint(8).varint(1).finish();
    const data = manifestOf(unknown);
    const e = errorOf(() => readManifest(data, "MANIFEST-000007"));
    const second = [...readLogRecords(data)][1].offset;
    expect(e.offset).toBe(second);
    expect(e.message).toContain("unknown VersionEdit tag 8");
    expect(e.message).toContain("byte 2 of it");

    const unsafeCustom = new Builder().varint(Tag.NewFile4).varint(0).varint(8).varint(5).slice(key).slice(key).varint(1).varint(2).varint(66).slice("?").varint(1).finish();
    expect(errorOf(() => readManifest(manifestOf(unsafeCustom))).message).toContain("custom field 66 is not safe to ignore");
    const blobIncompatible = new Builder().varint(Tag.BlobFileGarbage).varint(1).varint(1).varint(1).varint(64 + 3).slice("z").varint(0).finish();
    expect(errorOf(() => readManifest(manifestOf(blobIncompatible))).message).toContain("forward-incompatible");
    const cut = new Builder().varint(Tag.Comparator).varint(50).raw(Buffer.from("short")).finish();
    expect(errorOf(() => readManifest(manifestOf(cut))).message).toContain("truncated comparator name");
    const cutVarint = Uint8Array.of(Tag.LastSequence, 0x80, 0x80);
    expect(errorOf(() => readManifest(manifestOf(cutVarint))).message).toContain("truncated varint (last sequence)");
  });

  test("atomic groups apply when complete; an incomplete group at the end is ignored", () => {
    const g = (remaining: number, seq: number) => encodeVersionEdit({ lastSequence: seq, inAtomicGroup: remaining });
    expect(readManifest(manifestOf(g(1, 50), g(0, 60))).lastSequence).toBe(60);
    expect(readManifest(manifestOf(g(1, 50), g(0, 60), g(2, 70), g(1, 80))).lastSequence).toBe(60);
  });

  test("missing required entries and empty files are errors", () => {
    const noSeq = writeLogRecords([encodeVersionEdit({ comparator: "c", logNumber: 0, nextFileNumber: 3 })]);
    expect(errorOf(() => readManifest(noSeq, "M")).message).toContain("no last sequence entry");
    expect(errorOf(() => readManifest(new Uint8Array(0), "M")).message).toContain("no VersionEdit records");
  });
});

describe("buildManifest", () => {
  test("round trips sequence, files and column families", () => {
    const files: NewFileEntry[] = [
      { level: 0, number: 12, size: 4096, smallest: internalKey("a", 1), largest: internalKey("m", 7), smallestSeqno: 1, largestSeqno: 7 },
      { level: 6, number: 13, size: 1 << 20, smallest: internalKey("n", 8), largest: internalKey("z", 9), smallestSeqno: 8, largestSeqno: 9 },
    ];
    const seq = 2 ** 40 + 17;
    const m = readManifest(buildManifest({ seq, files, columnFamilies: ["metadata", "zset_score"] }));
    expect(m.lastSequence).toBe(seq);
    expect(m.nextFileNumber).toBe(14);
    expect(m.comparator).toBe("leveldb.BytewiseComparator");
    expect([...m.columnFamilies.values()]).toEqual(["default", "metadata", "zset_score"]);
    expect(m.liveFiles.get(0)!.map((f) => [f.number, f.level, f.size])).toEqual([[12, 0, 4096], [13, 6, 1 << 20]]);
    expect(() => buildManifest({ seq: -1 })).toThrow(RangeError);
  });

  test("a manifest larger than one block (many files) round trips", () => {
    const files: NewFileEntry[] = Array.from({ length: 2000 }, (_, i) => ({
      level: 1, number: 100 + i, size: 1000 + i,
      smallest: internalKey(`key-${String(i).padStart(6, "0")}-a`, i + 1),
      largest: internalKey(`key-${String(i).padStart(6, "0")}-z`, i + 1),
      smallestSeqno: i + 1, largestSeqno: i + 1,
    }));
    const bytes = buildManifest({ seq: 5000, files });
    expect(bytes.length).toBeGreaterThan(2 * BLOCK_SIZE);
    const m = readManifest(bytes);
    expect(m.lastSequence).toBe(5000);
    expect(m.liveFiles.get(0)!.length).toBe(2000);
  });

  test("CURRENT + MANIFEST in a directory: readManifestSequence; clear errors for bad directories", async () => {
    const d = tempDir();
    writeFileSync(join(d, "MANIFEST-000003"), buildManifest({ seq: 777 }));
    expect(await asyncErrorOf(readManifestSequence(d)).then((e) => e.message)).toContain("cannot read CURRENT (ENOENT)");
    writeFileSync(join(d, "CURRENT"), "garbage\n");
    expect((await asyncErrorOf(readManifestSequence(d))).message).toContain('CURRENT must hold one line "MANIFEST-<number>"');
    writeFileSync(join(d, "CURRENT"), currentFileFor(4));
    const e = await asyncErrorOf(readManifestSequence(d));
    expect(e.file).toBe(join(d, "MANIFEST-000004"));
    expect(e.message).toContain("cannot read the MANIFEST that CURRENT names (ENOENT)");
    writeFileSync(join(d, "CURRENT"), currentFileFor(3));
    expect(await readManifestSequence(d)).toBe(777);
  });

  test("truncated MANIFEST in a copied checkpoint: error names the path", async () => {
    const d = fixtureCopy();
    const p = join(d, "MANIFEST-000011");
    writeFileSync(p, readFileSync(p).subarray(0, 700));
    const e = await asyncErrorOf(readManifestSequence(d));
    expect(e.file).toBe(p);
    expect(e.message).toContain(`${p} at byte`);
    rmSync(p);
    expect((await asyncErrorOf(readManifestSequence(d))).message).toContain("ENOENT");
  });
});
