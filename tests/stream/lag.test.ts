/**
 * --lag-probe: the replica polls the master's INFO master_repl_offset over its own connection
 * and reports the lag in INFO (kvr_master_repl_offset, kvr_lag) and as `lag` --json events.
 */
import { afterEach, expect, test } from "bun:test";
import { replyText } from "../../lib/resp/index.ts";
import { runKvr, tempDir, type KvrEvent } from "../helpers/kvr.ts";
import { info, startMaster, startReplica, until } from "../replica/helpers.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
function temp(): string {
  const d = tempDir("kvr-lag-");
  cleanups.push(d.cleanup);
  return d.path;
}

test("lag grows while the stream is held back, and falls to ~0 once the replica follows", async () => {
  // The connection that sends PSYNC stalls (its +OK never arrives); INFO connections are not affected.
  const m = await startMaster(["--generate", "2x32KiB", "--seq", "100", "--write-rate", "2000", "--fault", "stall:on=psync"]);
  cleanups.push(() => m.stop());
  const r = await startReplica(["--dir", temp(), "--master", `127.0.0.1:${m.port}`, "--lag-probe", "--read-timeout", "400ms", "--retry-delay", "100ms"]);
  cleanups.push(() => r.stop());
  const behind = await r.kvr.waitEvent((e) => e.event === "lag" && (e.lag as number) > 5000, 10_000);
  expect(behind.masterOffset as number).toBeGreaterThan(behind.offset as number);
  const i1 = await info(r.port);
  expect(Number(i1.kvr_lag)).toBeGreaterThan(0);
  expect(Number(i1.kvr_master_repl_offset)).toBeGreaterThan(Number(i1.slave_repl_offset));

  expect(replyText(await m.cmd(["KVR", "FAULT", "CLEAR"]))).toBe("OK");
  const n = r.kvr.events.length;
  const caught = await r.kvr.waitEvent(
    (e) => r.kvr.events.indexOf(e) >= n && e.event === "lag" && e.state === "connected" && (e.lag as number) < 1000,
    15_000,
  );
  console.log(`lag while held back: ${behind.lag} sequences; once following (2000 batches/s): ${caught.lag} sequences`);
  const lags = r.kvr.events.filter((e: KvrEvent) => e.event === "lag").map((e) => e.lag as number);
  expect(Math.max(...lags)).toBeGreaterThan(5000);
  await until(async () => (await info(r.port)).master_link_status === "up", 5000);
  const i2 = await info(r.port);
  expect(Number(i2.kvr_master_repl_offset)).toBeGreaterThan(Number(i1.kvr_master_repl_offset));
  expect(Number(i2.kvr_lag)).toBeLessThan(5000);
}, 40_000);

test("without --lag-probe: no lag events and no kvr_lag in INFO", async () => {
  const m = await startMaster(["--generate", "1x4KiB", "--write-rate", "1000"]);
  cleanups.push(() => m.stop());
  const r = await startReplica(["--dir", temp(), "--master", `127.0.0.1:${m.port}`]);
  cleanups.push(() => r.stop());
  await r.kvr.waitEvent((e) => e.event === "stream", 10_000);
  await Bun.sleep(1300);
  expect(r.kvr.events.some((e) => e.event === "lag")).toBe(false);
  const i = await info(r.port);
  expect(i.kvr_lag).toBeUndefined();
  expect(i.kvr_state).toBe("connected");
}, 20_000);

test("--lag-probe with --once: the probe ends with the run and the command exits", async () => {
  const m = await startMaster(["--generate", "2x256KiB", "--rate", "0.5", "--write-rate", "100"]);
  cleanups.push(() => m.stop());
  const t0 = performance.now();
  const r = await runKvr(["replica", "--dir", temp(), "--master", `127.0.0.1:${m.port}`, "--port", "0", "--once", "--lag-probe", "--json"], { timeoutMs: 15_000 });
  expect(r.code).toBe(0);
  expect(performance.now() - t0).toBeLessThan(10_000);
  // The full sync takes ~1 s at 0.5 MiB/s: the probe reported meanwhile.
  expect(r.stdout).toContain('"event":"lag"');
}, 20_000);
