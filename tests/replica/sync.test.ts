/** Full syncs from a real `kvr master`: byte-identical files, workers, resume, read deadline. */
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { generatedContent, generatedFiles } from "../../lib/master/generate.ts";
import { cleanupAfterEach } from "../helpers/kvr.ts";
import { bytes } from "./fake-master.ts";
import { diffDir, info, listDir, startMaster, startReplica } from "./helpers.ts";

const { defer, temp } = cleanupAfterEach();
function expected(spec: string) {
  return generatedFiles(spec).map((f) => ({ name: f.name, data: generatedContent(spec, f.name) }));
}

test("64-file checkpoint: 4 workers, byte-identical, no .tmp, summary correct", async () => {
  const spec = "64x64KiB";
  const m = await startMaster(["--generate", spec]);
  defer(() => m.stop());
  const dir = temp();
  const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--once"]);
  defer(() => r.stop());
  expect(await r.kvr.exited).toBe(0);
  const meta = r.kvr.events.find((e) => e.event === "meta")!;
  expect(meta.count).toBe(67);
  expect(meta.workers).toBe(4);
  const summary = r.kvr.events.find((e) => "ok" in e)!;
  const exp = expected(spec);
  const total = exp.reduce((n, f) => n + f.data.length, 0);
  expect(summary).toMatchObject({ ok: true, files: 67, skipped: 0, fetched: 67, bytes: total });
  expect(diffDir(dir, exp)).toEqual([]);
  // Each worker connection sent exactly one _fetch_file.
  expect(r.kvr.events.filter((e) => e.event === "file-done").length).toBe(67);
});

test("on Linux the files go through the fetch thread; KVR_FETCH_THREAD=0 takes Bun's sockets: both byte-identical", async () => {
  const spec = "8x256KiB";
  const m = await startMaster(["--generate", spec]);
  defer(() => m.stop());
  for (const [env, path] of [
    [{}, process.platform === "linux" ? "on the fetch thread" : "through Bun's sockets"],
    [{ KVR_FETCH_THREAD: "0" }, "through Bun's sockets: KVR_FETCH_THREAD=0"],
  ] as const) {
    const dir = temp();
    const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--once", "--log-level", "debug"], env);
    defer(() => r.stop());
    expect(await r.kvr.exited).toBe(0);
    expect(r.kvr.stderr()).toContain(`files received ${path}`);
    expect(diffDir(dir, expected(spec))).toEqual([]);
  }
});

test("3-file checkpoint served from a directory: 1 worker, byte-identical", async () => {
  const src = temp();
  const files = [
    { name: "000007.sst", data: bytes(300_000, 7) },
    { name: "CURRENT", data: Buffer.from("MANIFEST-000003\n") },
    { name: "MANIFEST-000003", data: bytes(1234, 3) },
  ];
  for (const f of files) writeFileSync(join(src, f.name), f.data);
  // Not a RocksDB checkpoint (random MANIFEST bytes): --seq, as its sequence cannot be read.
  const m = await startMaster(["--dir", src, "--seq", "100"]);
  defer(() => m.stop());
  const dir = temp();
  writeFileSync(join(dir, "000099.sst"), "not in the list");
  writeFileSync(join(dir, "LOG.old.1700000000"), "a former node's log");
  writeFileSync(join(dir, "000007.sst.tmp"), "stale partial");
  const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--once"]);
  defer(() => r.stop());
  expect(await r.kvr.exited).toBe(0);
  expect(r.kvr.events.find((e) => e.event === "meta")).toMatchObject({ count: 3, workers: 1 });
  expect(r.kvr.events.find((e) => "ok" in e)).toMatchObject({ files: 3, skipped: 0, bytes: 300_000 + 16 + 1234 });
  expect(diffDir(dir, files)).toEqual([]);
});

test("resume: master SIGKILLed mid-sync and restarted → completed files skipped, identical at the end", async () => {
  const spec = "24x64KiB";
  const m1 = await startMaster(["--generate", spec, "--rate", "0.5"]);
  defer(() => m1.stop("SIGKILL"));
  const dir = temp();
  // The master is down for a while: more retries than --once's default 5.
  const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m1.port}`, "--once", "--max-retries", "50", "--retry-delay", "100ms", "--read-timeout", "1s"]);
  defer(() => r.stop());
  await r.kvr.waitEvent((e) => e.event === "file-done" && r.kvr.events.filter((x) => x.event === "file-done").length >= 6, 15_000);
  await m1.stop("SIGKILL");
  // Bytes already in the kernel's buffers may still complete a file after the kill: count once
  // the failed attempt has ended (its workers are settled before the retry is announced).
  await r.kvr.waitEvent((e) => e.event === "retry", 5000);
  const doneBefore = listDir(dir).filter((n) => !n.endsWith(".tmp") && n !== "CURRENT").length;
  expect(doneBefore).toBeGreaterThanOrEqual(6);
  expect(doneBefore).toBeLessThan(27);
  const m2 = await startMaster(["--generate", spec], m1.port);
  defer(() => m2.stop());
  expect(await r.kvr.exited).toBe(0);
  const skips = r.kvr.events.filter((e) => e.event === "skip").map((e) => e.count as number);
  expect(skips[0]).toBe(0);
  expect(skips[skips.length - 1]).toBe(doneBefore);
  // Per-run totals: the files the failed attempt completed were fetched by this run, not skipped.
  const total = expected(spec).reduce((n, f) => n + f.data.length, 0);
  const summary = r.kvr.events.find((e) => "ok" in e)!;
  expect(summary).toMatchObject({ files: 27, skipped: 0, fetched: 27, bytes: total });
  expect(summary.attempts as number).toBeGreaterThanOrEqual(2);
  expect(diffDir(dir, expected(spec))).toEqual([]);
}, 30_000);

test("a sync resumed after a failed attempt: kvr_bytes_total is the sum of the master's announced sizes; the --once summary counts the run", async () => {
  const spec = "8x64KiB";
  // The first fetch connection is closed (FIN) after 3 whole files: the next attempt skips them.
  const m = await startMaster(["--generate", spec, "--fault", "close:after-files=3,once"]);
  defer(() => m.stop());
  const total = expected(spec).reduce((n, f) => n + f.data.length, 0);
  const announced = (events: Array<Record<string, unknown>>) => {
    const size = new Map<string, number>();
    for (const e of events) if (e.event === "file-done") size.set(String(e.name), Number(e.bytes));
    return [...size.values()].reduce((a, b) => a + b, 0);
  };

  const r = await startReplica(["--dir", temp(), "--master", `127.0.0.1:${m.port}`, "--retry-delay", "10ms"]);
  defer(() => r.stop());
  await r.kvr.waitEvent((e) => e.event === "state" && e.state === "connected", 15_000);
  expect(r.kvr.events.filter((e) => e.event === "skip").map((e) => e.count)).toEqual([0, 3]);
  expect(announced(r.kvr.events)).toBe(total);
  expect(await info(r.port)).toMatchObject({ kvr_bytes_total: String(total), kvr_bytes_done: String(total), kvr_files_done: "11", kvr_files_total: "11" });
  expect(r.kvr.events.find((e) => e.event === "done")).toMatchObject({ files: 11, skipped: 0, fetched: 11, bytes: total, attempts: 2 });

  await m.cmd(["KVR", "FAULT", "CLEAR"]);
  await m.cmd(["KVR", "FAULT", "ADD", "close:after-files=3,once"]);
  const once = await startReplica(["--dir", temp(), "--master", `127.0.0.1:${m.port}`, "--once", "--retry-delay", "10ms"]);
  defer(() => once.stop());
  expect(await once.kvr.exited).toBe(0);
  // The done event carries every summary field, rate included; the final result line repeats them with ok.
  const done = once.kvr.events.find((e) => e.event === "done")!;
  expect(done).toMatchObject({ files: 11, skipped: 0, fetched: 11, bytes: total, attempts: 2, rate: Math.round((total / Number(done.ms)) * 1000) });
  const last: Record<string, unknown> = once.kvr.events[once.kvr.events.length - 1];
  expect(last).toEqual({ ok: true, files: 11, skipped: 0, fetched: 11, bytes: total, ms: done.ms, rate: done.rate, attempts: 2 });
}, 30_000);

test("master stalls mid-file: the 1 s read deadline fires within [0.8, 2.5] s, retried; cleared → completes", async () => {
  const spec = "24x64KiB";
  const m = await startMaster(["--generate", spec, "--rate", "0.5"]);
  defer(() => m.stop());
  const dir = temp();
  const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--once", "--read-timeout", "1s", "--retry-delay", "200ms"]);
  defer(() => r.stop());
  await r.kvr.waitEvent((e) => e.event === "file-done", 10_000);
  const t0 = Date.now();
  m.kvr.proc.kill("SIGUSR1"); // stall every live connection now (no FIN, no RST)
  const retry = await r.kvr.waitEvent((e) => e.event === "retry", 5000);
  const fired = Date.parse(retry.ts as string) - t0;
  console.log(`read deadline fired ${fired} ms after the stall (read timeout 1000 ms)`);
  expect(fired).toBeGreaterThanOrEqual(800);
  expect(fired).toBeLessThanOrEqual(2500);
  expect(retry.code).toBe("READ_TIMEOUT");
  expect(String(retry.reason)).toMatch(/fetch worker \d \(\d+\.sst at byte \d+\): no data from/);
  expect(await info(r.port)).toMatchObject({ kvr_last_error: expect.stringContaining("no data from") });
  m.kvr.proc.kill("SIGUSR2"); // clear the fault
  expect(await r.kvr.exited).toBe(0);
  expect(diffDir(dir, expected(spec))).toEqual([]);
}, 30_000);

test("INFO during the fetch and after it", async () => {
  const spec = "32x64KiB";
  const m = await startMaster(["--generate", spec, "--rate", "1"]);
  defer(() => m.stop());
  const dir = temp();
  const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`]);
  defer(() => r.stop());
  await r.kvr.waitEvent((e) => e.event === "file-done", 10_000);
  const during = await info(r.port);
  expect(during).toMatchObject({
    role: "slave",
    master_host: "127.0.0.1",
    master_port: String(m.port),
    master_link_status: "down",
    master_sync_in_progress: "1",
    kvr_state: "fetch_files",
    kvr_files_total: "35",
    kvr_fetch_connections: "4",
    kvr_attempt: "1",
  });
  expect(Number(during.kvr_files_done)).toBeGreaterThan(0);
  expect(Number(during.kvr_files_done)).toBeLessThan(35);
  expect(Number(during.kvr_bytes_done)).toBeGreaterThan(0);
  expect(during.kvr_current_file).toMatch(/\.sst$/);
  await r.kvr.waitEvent((e) => e.event === "done", 15_000);
  // After the full sync it restores the checkpoint (sequence 100) and follows by PSYNC 101.
  await r.kvr.waitEvent((e) => e.event === "state" && e.state === "connected", 10_000);
  const total = expected(spec).reduce((n, f) => n + f.data.length, 0);
  expect(await info(r.port)).toMatchObject({
    master_sync_in_progress: "0",
    master_link_status: "up",
    kvr_state: "connected",
    slave_repl_offset: "100",
    kvr_files_done: "35",
    kvr_files_total: "35",
    kvr_bytes_done: String(total),
    kvr_bytes_total: String(total),
    kvr_current_file: "",
    kvr_fetch_connections: "1",
    kvr_last_error: "",
  });
  // Stays up after the sync (no --once).
  expect(r.kvr.proc.exitCode).toBeNull();
}, 30_000);

test("--once into a target that already holds the complete checkpoint: full sync again (no PSYNC), every file but CURRENT skipped, exit 0", async () => {
  const spec = "8x16KiB";
  const m = await startMaster(["--generate", spec]);
  defer(() => m.stop());
  const dir = temp();
  const exp = expected(spec);
  for (const run of [1, 2]) {
    const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--once"]);
    defer(() => r.stop());
    // Before the fix the second run sent PSYNC, got +OK and followed the stream forever.
    const code = await Promise.race([r.kvr.exited, Bun.sleep(10_000).then(() => "still running")]);
    expect(code).toBe(0);
    expect(r.kvr.events.some((e) => e.event === "stream" || e.event === "psync-refused")).toBe(false);
    const skipped = run === 1 ? 0 : exp.length - 1;
    expect(r.kvr.events.find((e) => e.event === "skip")).toMatchObject({ count: skipped });
    expect(r.kvr.events.find((e) => "ok" in e)).toMatchObject({ ok: true, files: exp.length, skipped, fetched: exp.length - skipped });
    if (run === 2) expect(r.kvr.events.filter((e) => e.event === "file-done").map((e) => e.name)).toEqual(["CURRENT"]);
    expect(diffDir(dir, exp)).toEqual([]);
  }
}, 30_000);
