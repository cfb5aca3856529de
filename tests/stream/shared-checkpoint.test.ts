/**
 * Replicas full-syncing from a writing kvr master at the same time share its checkpoint, as
 * Kvrocks shares one younger than half its WAL retention: every replica gets a CURRENT naming the
 * MANIFEST its own file list had, restores, and follows the stream.
 */
import { expect, test } from "bun:test";
import { withCleanup } from "../helpers/kvr.ts";
import { startMaster, startReplica } from "../replica/helpers.ts";

test("three replicas full-syncing at once from a master writing 500 batches/s: one checkpoint, each restores it and streams", () =>
  withCleanup(async ({ defer, temp }) => {
    const m = await startMaster(["--generate", "3x64KiB", "--write-rate", "500"]);
    defer(() => m.stop());
    await Bun.sleep(300);
    const replicas = await Promise.all(
      [1, 2, 3].map(async () => {
        const r = await startReplica(["--dir", temp("kvr-shared-"), "--master", `127.0.0.1:${m.port}`, "--retry-delay", "100ms"]);
        defer(() => r.stop());
        return r;
      }),
    );
    const restores = await Promise.all(replicas.map((r) => r.kvr.waitEvent((e) => e.event === "restore", 20_000)));
    await Promise.all(replicas.map((r) => r.kvr.waitEvent((e) => e.event === "stream", 20_000)));
    expect(new Set(restores.map((e) => e.seq)).size).toBe(1);
    expect(restores[0].seq as number).toBeGreaterThan(100);
    for (const r of replicas) expect(r.kvr.stderr()).not.toContain("cannot read the sequence");
  }), 60_000);
