/**
 * A hostile master (scripted): bad names, sizes and streams must each fail the full sync with a
 * clear error, write nothing outside --dir, and leave no partial file under a final name.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { runKvr, tempDir } from "../helpers/kvr.ts";
import { fakeCheckpoint, startFakeMaster, type FakeMasterOptions } from "./fake-master.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Run `kvr replica --once --max-retries 0` against a fake master; return exit code, stderr, dir listing. */
async function against(opts: Partial<FakeMasterOptions>, extra: string[] = []) {
  const files = opts.files ?? fakeCheckpoint(3, 200_000);
  const m = await startFakeMaster({ files, ...opts });
  cleanups.push(() => m.close());
  const parent = tempDir();
  cleanups.push(parent.cleanup);
  const dir = join(parent.path, "target");
  mkdirSync(dir);
  const r = await runKvr(
    ["replica", "--dir", dir, "--master", `127.0.0.1:${m.port}`, "--port", "0", "--once", "--max-retries", "0", "--read-timeout", "1s", ...extra],
    { timeoutMs: 15_000 },
  );
  const inDir = readdirSync(dir).sort();
  const sizes = Object.fromEntries(inDir.map((n) => [n, statSync(join(dir, n)).size]));
  return { ...r, parent: readdirSync(parent.path).sort(), inDir, sizes, files };
}

/** Every file under a final name is complete; no .tmp; nothing beside the target dir. */
function assertClean(r: Awaited<ReturnType<typeof against>>) {
  expect(r.parent).toEqual(["target"]);
  expect(r.inDir.filter((n) => n.endsWith(".tmp"))).toEqual([]);
  for (const n of r.inDir) {
    const f = r.files.find((x) => x.name === n);
    expect(f && f.data.length === r.sizes[n]).toBe(true);
  }
}

for (const bad of ["../escape", "..", ".", "", "sub/file", "..\\escape", "nul\0name", "/abs", "x".repeat(256)]) {
  test(`name ${JSON.stringify(bad.length > 20 ? bad.slice(0, 8) + "…" : bad)} in _fetch_meta → clear error, nothing written`, async () => {
    const files = fakeCheckpoint(2, 1000);
    const r = await against({ files, metaLine: [files[0].name, bad, "CURRENT"].join(",") });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("refusing the full sync");
    expect(r.inDir).toEqual([]);
    assertClean(r);
  });
}

test("a '-' _fetch_meta line is the master's refusal, not a file name", async () => {
  const r = await against({ metaLine: "-can't create db checkpoint" });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("master refused _fetch_meta: can't create db checkpoint");
  expect(r.inDir).toEqual([]);
});

test("a size above --max-file-size → protocol error, no file", async () => {
  const r = await against({ sizeLine: (n, s) => (n === "000011.sst" ? "70000000000" : String(s)) });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("master announced 70000000000 bytes for 000011.sst, above --max-file-size");
  expect(r.inDir).not.toContain("000011.sst");
  assertClean(r);
});

test("--max-file-size is honoured", async () => {
  const r = await against({}, ["--max-file-size", "100KB"]);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("above --max-file-size (100000)");
  assertClean(r);
});

for (const garbage of ["12abc", "0x100", " 100", "$200000"]) {
  test(`garbage size line ${JSON.stringify(garbage)} → protocol error`, async () => {
    const r = await against({ sizeLine: (n, s) => (n === "000011.sst" ? garbage : String(s)) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("size line for 000011.sst that is not a decimal");
    assertClean(r);
  });
}

test("EOF mid-file → error naming file and offset; the partial file is gone", async () => {
  const r = await against({ fault: { name: "000011.sst", afterBytes: 50_000, action: "eof" } });
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/CLOSED: fetch worker 1 \(000011\.sst at byte 50000\)/);
  expect(r.inDir).not.toContain("000011.sst");
  expect(r.inDir).toContain("000010.sst");
  assertClean(r);
});

test("reset mid-file → error, the partial file is gone", async () => {
  const r = await against({ fault: { name: "000012.sst", afterBytes: 100_000, action: "reset" } });
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/(RESET|CLOSED): fetch worker 1 \(\d+\.sst at byte \d+\)/);
  expect(r.inDir).not.toContain("000012.sst");
  assertClean(r);
});

test("stall mid-file → read deadline, exit 3 (deadline), the partial file is gone", async () => {
  const t0 = Date.now();
  const r = await against({ fault: { name: "000011.sst", afterBytes: 30_000, action: "stall" } });
  expect(r.code).toBe(3);
  expect(Date.now() - t0).toBeLessThan(8000);
  expect(r.stderr).toMatch(/READ_TIMEOUT: fetch worker 1 \(000011\.sst at byte 30000\): no data from .* for 1000 ms/);
  assertClean(r);
});

test("bytes after the last file → protocol error, CURRENT not put in place", async () => {
  const r = await against({ trailing: Buffer.from("surprise") });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("unexpected bytes after the last file");
  expect(r.inDir).not.toContain("CURRENT");
  assertClean(r);
});

test("a master asking for another db name is refused", async () => {
  const r = await against({ dbName: "other.db" });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("Mismatched the db name, local: change.me.db, remote: other.db");
  expect(r.inDir).toEqual([]);
});
