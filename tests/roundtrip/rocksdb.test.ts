/**
 * Real checkpoint round trip: a RocksDB made by Debian's `ldb` (RocksDB 7.8), checkpointed with
 * `ldb checkpoint`, served by `kvr master --dir`, fetched by `kvr replica --once`, then read back
 * by the real RocksDB tools. And the real Kvrocks checkpoint served by kvr master: a replica
 * syncs it and continues with PSYNC 2257 → +OK.
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkpointSequence, currentManifestName, readManifestSequence } from "../../lib/rocksdb/index.ts";
import { runKvr } from "../helpers/kvr.ts";
import { info, startMaster, startReplica } from "../replica/helpers.ts";
import { cleanupTemp, FIXTURE, LDB, ldb, ldbManifestSequence, tempDir } from "../rocksdb/helpers.ts";

const SST_DUMP = Bun.which("sst_dump");
if (!LDB || !SST_DUMP) console.warn("SKIPPED tests/roundtrip/rocksdb.test.ts (real RocksDB part): `ldb`/`sst_dump` not found (install Debian's rocksdb-tools)");

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(cleanupTemp);

function loadInput(n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += `key${String(i).padStart(6, "0")} ==> value-${i}-${"x".repeat(60)}\n`;
  return s;
}

function sstDumpCheck(file: string): string {
  const r = Bun.spawnSync([SST_DUMP!, `--file=${file}`, "--command=check"], { stdout: "pipe", stderr: "pipe" });
  const out = Buffer.from(r.stdout).toString() + Buffer.from(r.stderr).toString();
  if (r.exitCode !== 0 || /corrupt|error/i.test(out)) throw new Error(`sst_dump --command=check failed on ${file} (${r.exitCode}): ${out.slice(-500)}`);
  return out;
}

describe.skipIf(!LDB || !SST_DUMP)("RocksDB (ldb) → kvr master --dir → kvr replica --once → ldb", () => {
  test("scan equal, every SST passes sst_dump check, sequences equal ldb manifest_dump", async () => {
    const db = join(tempDir(), "db");
    // 64 KiB memtables: every ~700 keys a flush, so several SST files; then more writes and a checkpoint.
    ldb([`--db=${db}`, "--create_if_missing", "--write_buffer_size=65536", "load"], loadInput(6000));
    ldb([`--db=${db}`, "batchput", "extra:a", "1", "extra:b", "2"]);
    ldb([`--db=${db}`, "put", "extra:c", "3"]);
    const cp = join(tempDir(), "cp");
    ldb([`--db=${db}`, "checkpoint", `--checkpoint_dir=${cp}`]);
    const served = readdirSync(cp).sort();
    expect(served.filter((n) => n.endsWith(".sst")).length).toBeGreaterThanOrEqual(3);
    const cpSeq = await checkpointSequence(cp);
    expect(cpSeq).toBe(6000 + 2 + 1);
    const sourceScan = ldb([`--db=${db}`, "scan"]);
    expect(sourceScan.split("\n").filter((l) => l.includes(" : ")).length).toBe(6003);

    const m = await startMaster(["--dir", cp]);
    cleanups.push(() => m.stop());
    // Its default --seq is the checkpoint's own sequence.
    expect(m.kvr.events.find((e) => e.event === "source")).toMatchObject({ seq: cpSeq });
    expect((await m.info()).master_repl_offset).toBe(String(cpSeq));

    const rdir = tempDir("kvr-roundtrip-replica-");
    const r = await runKvr(["replica", "--dir", rdir, "--master", `127.0.0.1:${m.port}`, "--port", "0", "--once"], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    expect(readdirSync(rdir).sort()).toEqual(served);
    for (const n of served) expect(readFileSync(join(rdir, n)).equals(readFileSync(join(cp, n)))).toBe(true);

    // The sequence kvr reads from the fetched MANIFEST is what RocksDB's own tool prints.
    const manifest = join(rdir, await currentManifestName(rdir));
    const ldbSeq = ldbManifestSequence(manifest);
    expect(await readManifestSequence(rdir)).toBe(ldbSeq);
    expect(await checkpointSequence(rdir)).toBe(Math.max(ldbSeq, cpSeq));

    const ssts = served.filter((n) => n.endsWith(".sst"));
    for (const n of ssts) expect(sstDumpCheck(join(rdir, n))).toContain("from [] to []");

    // Last: opening with ldb writes to the directory (LOCK, LOG, a new MANIFEST).
    expect(ldb([`--db=${rdir}`, "scan"])).toBe(sourceScan);
  }, 60_000);
});

describe("the real Kvrocks checkpoint served by kvr master --dir", () => {
  test("default --seq 2256 (MANIFEST 2156 + WAL); a replica syncs it, then PSYNC 2257 → +OK → connected", async () => {
    const m = await startMaster(["--dir", FIXTURE]);
    cleanups.push(() => m.stop());
    expect(m.kvr.events.find((e) => e.event === "source")).toMatchObject({ seq: 2256 });
    const dir = tempDir("kvr-roundtrip-fixture-");
    const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`]);
    cleanups.push(() => r.stop());
    const stream = await r.kvr.waitEvent((e) => e.event === "stream", 10_000);
    expect(stream.from).toBe(2257);
    expect(r.kvr.events.find((e) => e.event === "restore")).toMatchObject({ seq: 2256 });
    expect(r.kvr.events.some((e) => e.event === "psync-refused")).toBe(false);
    expect(await info(r.port)).toMatchObject({ kvr_state: "connected", master_link_status: "up", slave_repl_offset: "2256" });
    expect(await m.info()).toMatchObject({ connected_slaves: "1", master_repl_offset: "2256", slave0: expect.stringContaining("offset=2256,lag=0") });
    for (const n of readdirSync(FIXTURE)) if (!n.endsWith(".sha256")) expect(readFileSync(join(dir, n)).equals(readFileSync(join(FIXTURE, n)))).toBe(true);
  }, 30_000);

  test("--seq overrides the checkpoint's; an unreadable checkpoint without --seq is a clear usage error", async () => {
    const m = await startMaster(["--dir", FIXTURE, "--seq", "5000"]);
    cleanups.push(() => m.stop());
    expect(m.kvr.events.find((e) => e.event === "source")).toMatchObject({ seq: 5000 });

    const bad = tempDir("kvr-roundtrip-bad-");
    writeFileSync(join(bad, "CURRENT"), "MANIFEST-000009\n");
    writeFileSync(join(bad, "MANIFEST-000009"), "not a manifest at all, just text of some length");
    const r = await runKvr(["master", "--dir", bad, "--port", "0"], { timeoutMs: 10_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--dir: cannot read the checkpoint's sequence from '${bad}'`);
    expect(r.stderr).toContain("MANIFEST-000009");
    expect(r.stderr).toContain("give --seq <n>");
    expect(r.stderr.trim().split("\n").length).toBe(1);
  }, 20_000);
});

describe.skipIf(!LDB)("kvr master --generate writes a real MANIFEST", () => {
  test("ldb manifest_dump reads --seq back from the fetched MANIFEST, as kvr does", async () => {
    const m = await startMaster(["--generate", "3x16KiB:seed=4", "--seq", "123456"]);
    cleanups.push(() => m.stop());
    const dir = tempDir("kvr-roundtrip-gen-");
    const r = await runKvr(["replica", "--dir", dir, "--master", `127.0.0.1:${m.port}`, "--port", "0", "--once"], { timeoutMs: 20_000 });
    expect(r.code).toBe(0);
    expect(await checkpointSequence(dir)).toBe(123456);
    expect(ldbManifestSequence(join(dir, await currentManifestName(dir)))).toBe(123456);
  }, 30_000);
});
