/**
 * A scripted master that injects faults into the stream: a sequence gap, a zero-length bulk, a
 * silent stream. Each is detected, the good batches before it are kept, and the replica comes
 * back with PSYNC <last good sequence + 1> — never a full sync.
 */
import { afterEach, expect, test } from "bun:test";
import { recoverStreamLog } from "../../lib/replica/streamlog.ts";
import { tempDir } from "../helpers/kvr.ts";
import { info, startReplica, until } from "../replica/helpers.ts";
import { batches, scriptedMaster as scripted, writeCheckpoint } from "./scripted-master.ts";
import type { Conn } from "../../lib/net/index.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const scriptedMaster = (script: (n: number, from: number, conn: Conn) => Promise<void>) => scripted(script, (fn) => cleanups.push(fn));

/** A target holding a checkpoint at sequence `seq` (a MANIFEST and CURRENT). */
function checkpointDir(seq: number): string {
  const d = tempDir("kvr-gap-");
  cleanups.push(d.cleanup);
  return writeCheckpoint(d.path, seq);
}

test("a sequence gap is a protocol error: the batches before it are kept, PSYNC resumes at the last good + 1", async () => {
  const m = await scriptedMaster(async (n, from, conn) => {
    if (n === 0) {
      // 1001…1010, a heartbeat, then a batch claiming 1020: 1011…1019 are missing.
      await conn.write(Buffer.concat([batches(from, 10), Buffer.from("$4\r\nping\r\n"), batches(1020, 1)]));
      await Bun.sleep(2000);
      conn.destroy();
    } else {
      await conn.write(batches(from, 5));
      await Bun.sleep(5000);
      conn.destroy();
    }
  });
  const dir = checkpointDir(1000);
  const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--retry-delay", "100ms"]);
  cleanups.push(() => r.stop());
  const retry = await r.kvr.waitEvent((e) => e.event === "retry", 5000);
  expect(retry).toMatchObject({ code: "PROTOCOL" });
  expect(String(retry.reason)).toContain("expected 1011, got 1020");
  await until(() => m.psyncs.length >= 2, 5000);
  expect(m.psyncs).toEqual([1001, 1011]);
  await until(async () => (await info(r.port)).slave_repl_offset === "1015", 5000);
  expect(m.commands).not.toContain("_fetch_meta");
  await r.stop();
  expect(await recoverStreamLog(dir, 1000)).toMatchObject({ lastSeq: 1015, records: 15, truncated: 0 });
}, 20_000);

test("a zero-length bulk and a silent stream (--stream-timeout) both restart with PSYNC from the last good + 1", async () => {
  const m = await scriptedMaster(async (n, from, conn) => {
    if (n === 0) {
      await conn.write(Buffer.concat([batches(from, 3), Buffer.from("$0\r\n\r\n")]));
      await Bun.sleep(3000);
    } else if (n === 1) {
      await conn.write(batches(from, 2));
      await Bun.sleep(3000); // silent: the replica's stream deadline fires
    } else await Bun.sleep(3000);
    conn.destroy();
  });
  const dir = checkpointDir(500);
  const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--retry-delay", "100ms", "--stream-timeout", "500ms"]);
  cleanups.push(() => r.stop());
  await until(() => m.psyncs.length >= 3, 8000);
  expect(m.psyncs.slice(0, 3)).toEqual([501, 504, 506]);
  const retries = r.kvr.events.filter((e) => e.event === "retry");
  expect(retries[0]).toMatchObject({ code: "PROTOCOL" });
  expect(retries[1]).toMatchObject({ code: "READ_TIMEOUT" });
  expect(m.commands).not.toContain("_fetch_meta");
}, 20_000);
