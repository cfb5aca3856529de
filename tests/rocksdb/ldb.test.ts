/**
 * Against a real RocksDB: Debian's `ldb` (rocksdb-tools, RocksDB 7.8) makes databases,
 * compactions and checkpoints, and reads the MANIFESTs kvr builds.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { checkpointSequence, inspectCheckpoint } from "../../lib/rocksdb/checkpoint.ts";
import { BLOCK_SIZE, readLogRecords } from "../../lib/rocksdb/log.ts";
import { buildManifest, currentFileFor, currentManifestName, internalKey, readManifestOf, readManifestSequence } from "../../lib/rocksdb/manifest.ts";
import { cleanupTemp, fixtureCopy, LDB, ldb, ldbManifestSequence, tempDir } from "./helpers.ts";

afterAll(cleanupTemp);

if (!LDB) console.warn("SKIPPED tests/rocksdb/ldb.test.ts: `ldb` not found (install Debian's rocksdb-tools to run the real-RocksDB tests)");

async function manifestPath(dir: string): Promise<string> {
  return join(dir, await currentManifestName(dir));
}

/** Checks that kvr's MANIFEST sequence equals what ldb reports, and returns it. */
async function sameAsLdb(dir: string): Promise<number> {
  const ours = await readManifestSequence(dir);
  expect(ours).toBe(ldbManifestSequence(await manifestPath(dir)));
  return ours;
}

function loadInput(n: number, keyLen = 10, valueLen = 40, from = 0): string {
  let s = "";
  for (let i = from; i < from + n; i++) s += `${"k".repeat(Math.max(0, keyLen - 6))}${String(i).padStart(6, "0")} ==> ${"v".repeat(valueLen)}${i}\n`;
  return s;
}

describe.skipIf(!LDB)("real RocksDB (ldb)", () => {
  test("put, batchput, thousands of keys with several flushes, compact, checkpoint: sequences match ldb", async () => {
    const db = join(tempDir(), "db");
    // 64 KiB memtables (RocksDB's minimum): several SST files. (Given to a fresh DB only: Debian's
    // ldb asserts when an existing DB's OPTIONS are combined with a smaller write buffer.)
    ldb([`--db=${db}`, "--create_if_missing", "--write_buffer_size=65536", "load"], loadInput(5000));
    // each open flushes the previous WAL; these two stay in the WAL
    ldb([`--db=${db}`, "put", "first", "1"]);
    ldb([`--db=${db}`, "batchput", "a", "1", "b", "2", "c", "3"]);
    const total = 1 + 3 + 5000;
    const live = await readManifestOf(db);
    expect([...live.liveFiles.values()].flat().length).toBeGreaterThan(2);
    const m = await sameAsLdb(db);
    expect(m).toBeLessThan(total); // unflushed writes are only in the WAL
    const info = await inspectCheckpoint(db);
    expect(info.sequence).toBe(total);
    expect(info.wal.some((w) => w.lastSequence === total)).toBe(true);

    ldb([`--db=${db}`, "compact"]);
    expect(await sameAsLdb(db)).toBe(total);
    expect(await checkpointSequence(db)).toBe(total);

    const cp = join(tempDir(), "cp");
    ldb([`--db=${db}`, "checkpoint", `--checkpoint_dir=${cp}`]);
    expect(await sameAsLdb(cp)).toBe(total);
    expect(await checkpointSequence(cp)).toBe(total);
    expect(readdirSync(cp).filter((n) => n.endsWith(".sst")).length).toBeGreaterThan(0);
  });

  test("multi-block MANIFEST (many flushes of large keys) and its WAL", async () => {
    const db = join(tempDir(), "big");
    ldb([`--db=${db}`, "--create_if_missing", "--write_buffer_size=65536", "load"], loadInput(600, 3000, 3000));
    const path = await manifestPath(db);
    const size = statSync(path).size;
    expect(size).toBeGreaterThan(4 * BLOCK_SIZE);
    // records really cross block boundaries (fragmented): some record's data runs past its block
    const records = [...readLogRecords(readFileSync(path))];
    expect(records.some((r) => (r.offset % BLOCK_SIZE) + r.data.length + 7 > BLOCK_SIZE)).toBe(true);
    const m = await sameAsLdb(db);
    expect(m).toBeGreaterThan(100);
    expect(await checkpointSequence(db)).toBe(600);

    // a cut inside a fragmented record, and a flipped byte in a later block: errors with offsets
    const data = readFileSync(path);
    const cutAt = records.find((r) => r.offset > 2 * BLOCK_SIZE && (r.offset % BLOCK_SIZE) + r.data.length + 7 > BLOCK_SIZE)!;
    const cutDir = join(tempDir(), "cut");
    mkdirSync(cutDir);
    writeFileSync(join(cutDir, "CURRENT"), readFileSync(join(db, "CURRENT")));
    writeFileSync(join(cutDir, basename(path)), data.subarray(0, cutAt.offset + 100));
    await expect(readManifestSequence(cutDir)).rejects.toThrow(`${join(cutDir, basename(path))} at byte ${cutAt.offset}: truncated`);
    const flipped = Buffer.from(data);
    flipped[3 * BLOCK_SIZE + 1000] ^= 0x20;
    writeFileSync(join(cutDir, basename(path)), flipped);
    await expect(readManifestSequence(cutDir)).rejects.toThrow(/at byte \d+: checksum mismatch/);
  });

  test("the real Kvrocks checkpoint: ldb agrees on 2156, and replaying its WAL on open gives 2256", async () => {
    const d = fixtureCopy();
    expect(await sameAsLdb(d)).toBe(2156);
    expect(await checkpointSequence(d)).toBe(2256);
    // RocksDB 7.8 opens it (with --ignore_unknown_options for the 9.3 OPTIONS), replays the WAL,
    // and continues after 2256
    ldb([`--db=${d}`, "--ignore_unknown_options", "put", "after", "x"]);
    expect(await sameAsLdb(d)).toBe(2256);
    expect(await checkpointSequence(d)).toBe(2257);
  });

  test("generated MANIFESTs: ldb reads the sequence and column families, RocksDB continues after it", async () => {
    const d = tempDir();
    writeFileSync(join(d, "MANIFEST-000001"), buildManifest({ seq: 12345, columnFamilies: ["metadata", "zset_score"] }));
    writeFileSync(join(d, "CURRENT"), currentFileFor(1));
    expect(await sameAsLdb(d)).toBe(12345);
    expect(ldb([`--db=${d}`, "list_column_families"])).toContain("{default, metadata, zset_score}");
    ldb([`--db=${d}`, "put", "a", "b"]);
    expect(await checkpointSequence(d)).toBe(12346); // RocksDB's next write got 12345 + 1
    expect(ldb([`--db=${d}`, "get", "a"]).trim()).toBe("b");

    // many files: a multi-block generated MANIFEST
    const files = Array.from({ length: 2000 }, (_, i) => ({
      level: 1, number: 100 + i, size: 1000 + i,
      smallest: internalKey(`key-${String(i).padStart(6, "0")}-a`, i + 1),
      largest: internalKey(`key-${String(i).padStart(6, "0")}-z`, i + 1),
      smallestSeqno: i + 1, largestSeqno: i + 1,
    }));
    const big = join(d, "MANIFEST-009000");
    writeFileSync(big, buildManifest({ seq: 99999, files }));
    expect(statSync(big).size).toBeGreaterThan(2 * BLOCK_SIZE);
    expect(ldbManifestSequence(big)).toBe(99999);
  });

  test("a generated MANIFEST over real SST files: RocksDB serves the same data", async () => {
    const src = join(tempDir(), "src");
    ldb([`--db=${src}`, "--create_if_missing", "--write_buffer_size=65536", "load"], loadInput(3000));
    ldb([`--db=${src}`, "compact"]);
    const srcScan = ldb([`--db=${src}`, "scan"]);
    const files = (await readManifestOf(src)).liveFiles.get(0)!;
    expect(files.length).toBeGreaterThan(0);
    const dst = join(tempDir(), "dst");
    mkdirSync(dst);
    for (const f of files) {
      const name = `${String(f.number).padStart(6, "0")}.sst`;
      copyFileSync(join(src, name), join(dst, name));
    }
    writeFileSync(join(dst, "MANIFEST-000500"), buildManifest({ seq: 3000, files }));
    writeFileSync(join(dst, "CURRENT"), currentFileFor(500));
    expect(ldb([`--db=${dst}`, "scan"])).toBe(srcScan);
    expect(srcScan.split("\n").filter(Boolean).length).toBe(3000);
  });
});
