/**
 * A scripted master for replica tests: speaks the replication protocol (docs/protocol.md §1–§4) over
 * lib/net, and misbehaves on request (bad names, sizes, EOF/reset/stall mid-file, slow serving).
 */
import { listen, type Conn, type Server } from "../../lib/net/index.ts";
import { bareLine, error, OK, simple } from "../../lib/resp/index.ts";
import { serveCommands } from "../helpers/serve.ts";

export interface FakeFile {
  name: string;
  data: Buffer;
}

export interface FakeMasterOptions {
  files: FakeFile[];
  dbName?: string;
  password?: string;
  /** Replace the _fetch_meta reply line. */
  metaLine?: string;
  /** Replace the size line of a file. */
  sizeLine?: (name: string, size: number) => string;
  /** Misbehave while sending `name`, after `afterBytes` of its data. */
  fault?: { name: string; afterBytes: number; action: "eof" | "reset" | "stall" };
  /** Bytes appended after the last file of a _fetch_file. */
  trailing?: Buffer;
  /** Send file data in chunks of this size with this pause between them (slow master). */
  chunk?: number;
  chunkDelayMs?: number;
  /** Reply to replconf / PSYNC (error text without '-', or "OK"). */
  replconfReply?: string;
  psyncReply?: string;
}

export interface FakeMaster {
  port: number;
  server: Server;
  /** Commands received, first word lowercased plus args. */
  commands: string[][];
  /** Connections currently inside a _fetch_file. */
  fetching: Set<Conn>;
  close(): Promise<void>;
}

/** A buffer of `n` deterministic bytes seeded by `seed`. */
export function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** A small checkpoint-like file set: `count` files of `size` bytes plus CURRENT. */
export function fakeCheckpoint(count: number, size: number): FakeFile[] {
  const files: FakeFile[] = [];
  for (let i = 0; i < count; i++) files.push({ name: `${String(10 + i).padStart(6, "0")}.sst`, data: bytes(size, i + 1) });
  files.push({ name: "CURRENT", data: Buffer.from("MANIFEST-000009\n") });
  return files;
}

export async function startFakeMaster(opts: FakeMasterOptions): Promise<FakeMaster> {
  const commands: string[][] = [];
  const fetching = new Set<Conn>();
  const byName = new Map(opts.files.map((f) => [f.name, f.data]));
  const server = await listen("127.0.0.1", 0, (c) => void serve(c), { readMs: 0, writeMs: 0 });

  function serve(conn: Conn): Promise<void> {
    return serveCommands(
      conn,
      opts.password,
      async (cmd, args) => {
        if (cmd === "_db_name") await conn.write(bareLine(opts.dbName ?? "change.me.db"));
        else if (cmd === "replconf") await conn.write(reply(opts.replconfReply ?? "OK"));
        else if (cmd === "psync") await conn.write(reply(opts.psyncReply ?? "ERR sequence out of range, please use fullsync"));
        else if (cmd === "_fetch_meta") {
          await conn.write(bareLine(opts.metaLine ?? opts.files.map((f) => f.name).join(",")));
          conn.end();
          return "stop";
        } else if (cmd === "_fetch_file") {
          fetching.add(conn);
          conn.closed.then(() => fetching.delete(conn));
          await sendFiles(conn, args[1].split(","));
          return "stop";
        } else if (cmd === "ping") await conn.write(simple("PONG"));
        else await conn.write(error(`ERR unknown command \`${args[0]}\``));
      },
      (cmd, args) => commands.push([cmd, ...args.slice(1)]),
    );
  }

  async function sendFiles(conn: Conn, names: string[]): Promise<void> {
    for (const name of names) {
      const data = byName.get(name);
      if (!data) {
        await conn.write(error(`ERR no such file ${name}`));
        conn.end();
        return;
      }
      await conn.write(bareLine(opts.sizeLine ? opts.sizeLine(name, data.length) : String(data.length)));
      const f = opts.fault && opts.fault.name === name ? opts.fault : null;
      const limit = f ? Math.min(f.afterBytes, data.length) : data.length;
      const step = opts.chunk ?? 256 * 1024;
      for (let off = 0; off < limit; off += step) {
        await conn.write(data.subarray(off, Math.min(limit, off + step)));
        if (opts.chunkDelayMs) await Bun.sleep(opts.chunkDelayMs);
      }
      if (f) {
        if (f.action === "eof") conn.end();
        else if (f.action === "reset") conn.destroy(true);
        else conn.pauseReading(); // stall: keep the socket open, send nothing more
        return;
      }
    }
    if (opts.trailing) await conn.write(opts.trailing);
    conn.end();
  }

  return {
    port: server.port,
    server,
    commands,
    fetching,
    close: () => server.close(50),
  };
}

function reply(text: string): Buffer {
  return text === "OK" ? OK : error(text);
}
