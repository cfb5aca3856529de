/**
 * Helpers for kvr master tests: an in-process master with captured events, and a scripted
 * client that performs a real Kvrocks replica's full-sync sequence.
 */
import { createHash } from "node:crypto";
import { connect, type Conn } from "../../lib/net/index.ts";
import { RespDecoder, call, encodeCommand, replyText, type RespValue } from "../../lib/resp/index.ts";
import { createOutput } from "../../lib/ui/output.ts";
import { parseFault } from "../../lib/master/faults/spec.ts";
import { parseGenerateSpec } from "../../lib/master/generate.ts";
import { startMaster, type Master, type MasterConfig } from "../../lib/master/server.ts";
import { generatedSource } from "../../lib/master/source.ts";

export interface TestMaster extends Master {
  events: Array<Record<string, unknown>>;
  logs: string[];
}

/** Start a master in this process on a free port; `faults` are spec strings. */
export async function startTestMaster(over: Partial<MasterConfig> & { fault?: string[] } = {}): Promise<TestMaster> {
  const events: Array<Record<string, unknown>> = [];
  const logs: string[] = [];
  const out = createOutput({
    json: true,
    level: "debug",
    color: false,
    stdout: { write: (s: string) => void events.push(JSON.parse(s)) },
    stderr: { write: (s: string) => void logs.push(s) },
  });
  const cfg: MasterConfig = {
    host: "127.0.0.1",
    port: 0,
    source: generatedSource(parseGenerateSpec("4x64KiB")),
    dbName: "change.me.db",
    password: null,
    rate: 0,
    faults: (over.fault ?? []).map(parseFault),
    seq: 100,
    heartbeatMs: 2000,
    sendTimeoutMs: 30_000,
    idleMs: 300_000,
    ...over,
  };
  const m = await startMaster(cfg, out);
  return Object.assign(m, { events, logs });
}

export const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

export async function open(port: number, readMs = 3000): Promise<Conn> {
  return connect("127.0.0.1", port, { connectMs: 2000, readMs });
}

/** Send a command, read one RESP reply as text. */
export async function cmd(c: Conn, ...args: string[]): Promise<string> {
  return replyText(await call(c, args));
}

export async function send(c: Conn, ...args: string[]): Promise<void> {
  await c.write(encodeCommand(args));
}

export async function reply(c: Conn): Promise<RespValue> {
  return c.read(new RespDecoder());
}

/** Read `_fetch_file` output for `names`: size line then bytes, per file; then expect EOF. */
export async function readFiles(c: Conn, names: string[]): Promise<Map<string, Buffer>> {
  const got = new Map<string, Buffer>();
  for (const n of names) {
    const line = await c.readLine();
    if (!/^\d+$/.test(line)) throw new Error(`expected a size line for ${n}, got ${JSON.stringify(line)}`);
    got.set(n, await c.readBytes(Number(line)));
  }
  const tail = await c.readChunk();
  if (tail !== null) throw new Error(`extra bytes after the last file: ${tail.length}`);
  return got;
}

/**
 * The full-sync sequence of a Kvrocks replica: AUTH, _db_name, replconf, PSYNC (expects the
 * out-of-range error), _fetch_meta, then _fetch_file over `workers` parallel connections
 * (worker i takes files i, i+W, ...). Returns every file's bytes.
 */
export async function fullSync(port: number, opts: { password?: string; workers?: number } = {}): Promise<{ files: string[]; data: Map<string, Buffer> }> {
  const auth = async (c: Conn) => {
    if (opts.password !== undefined) {
      const r = await cmd(c, "AUTH", opts.password);
      if (r !== "OK") throw new Error(`AUTH: ${r}`);
    }
  };
  const ctl = await open(port);
  try {
    await auth(ctl);
    await send(ctl, "_db_name");
    const db = await ctl.readLine();
    if (db !== "change.me.db") throw new Error(`_db_name: ${db}`);
    const rc = await cmd(ctl, "replconf", "listening-port", "6667");
    if (rc !== "OK") throw new Error(`replconf: ${rc}`);
    const ps = await cmd(ctl, "PSYNC", "1");
    if (ps !== "-ERR sequence out of range, please use fullsync") throw new Error(`PSYNC: ${ps}`);
  } finally {
    ctl.destroy();
  }
  const meta = await open(port);
  await auth(meta);
  await send(meta, "_fetch_meta");
  const line = await meta.readLine();
  if (line.startsWith("-")) throw new Error(`_fetch_meta: ${line}`);
  if ((await meta.readChunk()) !== null) throw new Error("_fetch_meta: the master did not close");
  meta.destroy();
  const files = line.split(",");
  const W = opts.workers ?? (files.length > 20 ? 4 : 1);
  const data = new Map<string, Buffer>();
  await Promise.all(
    Array.from({ length: W }, async (_, i) => {
      const mine = files.filter((_, j) => j % W === i);
      if (!mine.length) return;
      const c = await open(port);
      try {
        await auth(c);
        await send(c, "_fetch_file", mine.join(","));
        for (const [k, v] of await readFiles(c, mine)) data.set(k, v);
      } finally {
        c.destroy();
      }
    }),
  );
  return { files, data };
}

export { until } from "../helpers/until.ts";
