/**
 * A scripted master that injects faults into the stream: a sequence gap, a zero-length bulk, a
 * silent stream. Each is detected, the good batches before it are kept, and the replica comes
 * back with PSYNC <last good sequence + 1> — never a full sync.
 */
import { afterEach, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { listen, type Conn, type Server } from "../../lib/net/index.ts";
import { bareLine, OK, RespDecoder } from "../../lib/resp/index.ts";
import { buildManifest, currentFileFor, encodePutBatch } from "../../lib/rocksdb/index.ts";
import { recoverStreamLog } from "../../lib/replica/streamlog.ts";
import { tempDir } from "../helpers/kvr.ts";
import { info, startReplica, until } from "../replica/helpers.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const frame = (b: Buffer) => Buffer.concat([Buffer.from(`$${b.length}\r\n`), b, Buffer.from("\r\n")]);
/** `n` one-record batches from `from`. */
const batches = (from: number, n: number) => Buffer.concat(Array.from({ length: n }, (_, i) => frame(encodePutBatch(from + i, [{ key: `k${from + i}`, value: "v" }]))));

/**
 * A master answering the handshake; every PSYNC is recorded and answered +OK, then `script(n,
 * conn)` writes the stream of the n-th PSYNC (0-based).
 */
async function scriptedMaster(script: (n: number, from: number, conn: Conn) => Promise<void>) {
  const psyncs: number[] = [];
  const commands: string[] = [];
  const server: Server = await listen(
    "127.0.0.1",
    0,
    async (conn) => {
      const dec = new RespDecoder({ inline: true });
      try {
        for (;;) {
          const args = ((await conn.read(dec)) as Buffer[]).map((b) => b.toString());
          const cmd = args[0].toLowerCase();
          commands.push(cmd);
          if (cmd === "_db_name") await conn.write(bareLine("change.me.db"));
          else if (cmd === "replconf") await conn.write(OK);
          else if (cmd === "psync") {
            const from = Number(args[args.length - 1]);
            psyncs.push(from);
            await conn.write(OK);
            await script(psyncs.length - 1, from, conn);
            return;
          } else {
            await conn.write("-ERR not in this script\r\n");
            conn.end();
            return;
          }
        }
      } catch {
        conn.destroy();
      }
    },
    { readMs: 0, writeMs: 0 },
  );
  cleanups.push(() => server.close(10));
  return { port: server.port, psyncs, commands };
}

/** A target holding a checkpoint at sequence `seq` (a MANIFEST and CURRENT). */
function checkpointDir(seq: number): string {
  const d = tempDir("kvr-gap-");
  cleanups.push(d.cleanup);
  writeFileSync(join(d.path, "MANIFEST-000003"), buildManifest({ seq }));
  writeFileSync(join(d.path, "CURRENT"), currentFileFor(3));
  return d.path;
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
