/**
 * What the replica counts is on disk: a batch that arrives with a heartbeat, or before part of
 * the next frame, is logged and counted at once (not when the next frame completes); and a
 * failed fdatasync (strace injects EIO) is never counted: the attempt fails, the log is cut back
 * to its last durable batch and the stream restarts from there.
 */
import { expect, test } from "bun:test";
import { checkpointSequence } from "../../lib/rocksdb/index.ts";
import { recoverStreamLog } from "../../lib/replica/streamlog.ts";
import { cleanupAfterEach } from "../helpers/kvr.ts";
import { straced } from "../helpers/strace.ts";
import { info, startReplica, until } from "../replica/helpers.ts";
import { batches, PING, scriptedMaster, writeCheckpoint } from "./scripted-master.ts";

const { defer, temp } = cleanupAfterEach();

/** The last sequence the directory says was received (checkpoint + kvr-stream.log). */
async function inDir(dir: string): Promise<number> {
  return (await recoverStreamLog(dir, await checkpointSequence(dir))).lastSeq;
}

for (const [what, tail] of [
  ["a heartbeat in the same write", PING],
  ["the first half of the next batch in the same write", batches(1002, 1).subarray(0, 20)],
] as const) {
  test(`a batch followed by ${what}: logged and counted at once, kept through a SIGKILL`, async () => {
    const m = await scriptedMaster(async (_n, from, conn) => {
      await conn.write(Buffer.concat([batches(from, 1), tail]));
      await Bun.sleep(8000); // then nothing: the link stays up
      conn.destroy();
    }, defer);
    const dir = writeCheckpoint(temp(), 1000);
    const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--stream-timeout", "30s"]);
    defer(() => r.stop());
    await r.kvr.waitEvent((e) => e.event === "stream", 5000);
    const t0 = performance.now();
    await until(async () => (await info(r.port)).slave_repl_offset === "1001", 2000);
    console.log(`batch + ${what}: offset 1001 after ${(performance.now() - t0).toFixed(0)} ms`);
    expect((await info(r.port)).master_link_status).toBe("up");
    await r.kvr.stop("SIGKILL");
    expect(await inDir(dir)).toBe(1001);
  }, 20_000);
}

for (const policy of ["always", "1s"] as const) {
  test(`--stream-fsync ${policy}: a failing fdatasync (EIO) is never counted; the stream restarts after the last durable batch`, async () => {
    const m = await scriptedMaster(async (n, from, conn) => {
      // 1001…1005 on the first connection; afterwards one new batch, then heartbeats.
      await conn.write(batches(from, n === 0 ? 5 : 1));
      for (let i = 0; i < 10; i++) {
        await Bun.sleep(300);
        await conn.write(PING);
      }
      conn.destroy();
    }, defer);
    const dir = writeCheckpoint(temp(), 1000);
    const args = ["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--stream-fsync", policy, "--retry-delay", "100ms"];
    // First a healthy disk: 1001…1005 durable.
    const r1 = await startReplica(args);
    defer(() => r1.stop());
    await until(async () => (await info(r1.port)).slave_repl_offset === "1005", 5000);
    expect(await r1.stop()).toBe(0);
    expect(await inDir(dir)).toBe(1005);

    // Then a disk whose every fdatasync fails with EIO.
    const r2 = await startReplica(args, {}, straced(["-e", "trace=fdatasync", "-e", "inject=fdatasync:error=EIO"]));
    defer(() => r2.stop());
    const retry = await r2.kvr.waitEvent((e) => e.event === "retry", 10_000);
    expect(retry.code).toBe("EIO");
    expect(String(retry.reason)).toContain("kvr-stream.log: fdatasync failed");
    expect(String(retry.reason)).toContain("the batches after sequence 1005 are not durable");
    expect(r2.kvr.stderr()).toContain("EIO");
    // Every attempt asks again for 1006: the batch that could not be made durable is not counted.
    await until(() => m.psyncs.length >= 4, 10_000);
    expect(m.psyncs.slice(0, 4)).toEqual([1001, 1006, 1006, 1006]);
    // With `always` a batch counts once durable; with `1s` once written, until a sync fails.
    const offset = Number((await info(r2.port)).slave_repl_offset);
    if (policy === "always") expect(offset).toBe(1005);
    else expect(offset).toBeLessThanOrEqual(1006);
    // The stop's final fdatasync fails too: the log ends on the last durable batch.
    expect(await r2.stop()).toBe(0);
    expect(await inDir(dir)).toBe(1005);
  }, 30_000);
}
