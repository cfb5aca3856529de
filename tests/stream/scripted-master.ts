/**
 * A scripted replication master for stream tests: answers the handshake, records every PSYNC and
 * answers +OK, then lets the test write the stream byte for byte (heartbeats and batches in the
 * same write, frames split anywhere, silences).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { listen, type Conn, type Server } from "../../lib/net/index.ts";
import { bareLine, OK } from "../../lib/resp/index.ts";
import { buildManifest, currentFileFor, encodePutBatch } from "../../lib/rocksdb/index.ts";
import { serveCommands } from "../helpers/serve.ts";

/** One bulk-string frame of the stream. */
export const frame = (b: Buffer) => Buffer.concat([Buffer.from(`$${b.length}\r\n`), b, Buffer.from("\r\n")]);
/** The heartbeat frame. */
export const PING = Buffer.from("$4\r\nping\r\n");
/** `n` one-record batches from `from`, framed. */
export const batches = (from: number, n: number) => Buffer.concat(Array.from({ length: n }, (_, i) => frame(encodePutBatch(from + i, [{ key: `k${from + i}`, value: "v" }]))));

/**
 * A master answering the handshake; every PSYNC is recorded and answered +OK, then `script(n,
 * from, conn)` writes the stream of the n-th PSYNC (0-based). `defer` registers its cleanup.
 */
export async function scriptedMaster(script: (n: number, from: number, conn: Conn) => Promise<void>, defer: (fn: () => unknown) => void) {
  const psyncs: number[] = [];
  const commands: string[] = [];
  const server: Server = await listen(
    "127.0.0.1",
    0,
    (conn) =>
      serveCommands(
        conn,
        undefined,
        async (cmd, args) => {
          if (cmd === "_db_name") await conn.write(bareLine("change.me.db"));
          else if (cmd === "replconf") await conn.write(OK);
          else if (cmd === "psync") {
            const from = Number(args[args.length - 1]);
            psyncs.push(from);
            await conn.write(OK);
            await script(psyncs.length - 1, from, conn);
            return "stop";
          } else {
            await conn.write("-ERR not in this script\r\n");
            conn.end();
            return "stop";
          }
        },
        (cmd) => commands.push(cmd),
      ),
    { readMs: 0, writeMs: 0 },
  );
  defer(() => server.close(10));
  return { port: server.port, psyncs, commands };
}

/** Put a checkpoint at sequence `seq` (a MANIFEST and CURRENT) into `dir`; returns `dir`. */
export function writeCheckpoint(dir: string, seq: number): string {
  writeFileSync(join(dir, "MANIFEST-000003"), buildManifest({ seq }));
  writeFileSync(join(dir, "CURRENT"), currentFileFor(3));
  return dir;
}
