/**
 * The replica's handshake on the control connection, one small function per step (docs/protocol.md
 * §2): AUTH, `_db_name`, replconf, PSYNC. Each either returns how to go on or throws a
 * SyncError / NetError, after which the attempt restarts later.
 */
import type { Conn } from "../net/index.ts";
import { call, encodeCommand, isOk, replyText, RespDecoder, RespError } from "../resp/index.ts";
import type { RespValue, Stream } from "../resp/index.ts";
import { masterRefusal, SyncError } from "./names.ts";
import { MAX_BATCH_BYTES } from "./streamlog.ts";

/** Step 1: `AUTH <pw>` must answer +OK; a refusal (other than -LOADING) cannot fix itself. */
export async function sendAuth(conn: Stream, password: string): Promise<void> {
  const r = await call(conn, ["AUTH", password]);
  if (isOk(r)) return;
  if (r instanceof RespError && r.prefix === "LOADING") throw new SyncError("LOADING", `master is loading: ${r.message}; retrying later`);
  throw new SyncError("AUTH", `master refused AUTH: ${replyText(r)} (check --masterauth / KVR_MASTERAUTH)`);
}

/** Step 2: `_db_name` answers a bare line that must equal our db name. */
export async function checkDbName(conn: Conn, expected: string): Promise<void> {
  await conn.write(encodeCommand(["_db_name"]));
  const line = Buffer.from(await conn.readLine(4096), "latin1").toString("utf8");
  if (line.startsWith("-")) throw masterRefusal("_db_name", line.slice(1));
  if (line !== expected) {
    throw new SyncError("DB_NAME", `Mismatched the db name, local: ${expected}, remote: ${line} (set --db-name to the master's name)`);
  }
}

export type ReplconfResult = { ok: true } | { ok: false; reply: string };

/**
 * Step 3: `replconf listening-port <port> [ip-address <ip>]`. `-ERR unknown option` with an
 * ip-address → sent once more without it. Any other error → go on (old masters lack replconf).
 */
export async function replconf(conn: Conn, port: number, announceIp?: string): Promise<ReplconfResult> {
  const base = ["replconf", "listening-port", String(port)];
  let r = await call(conn, announceIp ? [...base, "ip-address", announceIp] : base);
  if (announceIp && r instanceof RespError && /unknown option/i.test(r.message)) r = await call(conn, base);
  return isOk(r) ? { ok: true } : { ok: false, reply: replyText(r) };
}

export type PsyncResult = { kind: "stream" } | { kind: "fullsync"; reply: string };

/**
 * Step 4: `PSYNC <replid> <next_seq>` (when a replication id is known), else `PSYNC <next_seq>`.
 * +OK → stream; `wrong number of arguments` to the new form → the old form; `-LOADING` →
 * restart later (thrown); anything else → full sync.
 */
export async function sendPsync(conn: Conn, nextSeq: number, replid?: string | null): Promise<PsyncResult> {
  const old = ["PSYNC", String(nextSeq)];
  let r: RespValue = await call(conn, replid ? ["PSYNC", replid, String(nextSeq)] : old);
  if (replid && r instanceof RespError && /wrong number of arguments/i.test(r.message)) r = await call(conn, old);
  if (isOk(r)) return { kind: "stream" };
  if (r instanceof RespError && r.prefix === "LOADING") throw new SyncError("LOADING", `master is loading: ${r.message}; retrying later`);
  return { kind: "fullsync", reply: replyText(r) };
}

/**
 * The incremental stream after PSYNC +OK (docs/protocol.md §3): bulk `ping` heartbeats and
 * WriteBatches whose sequence must be the expected one. Calls `onBatch` with the next expected
 * sequence after each batch and the batch itself, `onPing` at each heartbeat, and `onIdle`
 * whenever the bytes received so far are used up and the read is about to wait for the master
 * (all awaited: backpressure). Returns only by throwing (deadline, EOF, protocol error, abort, a
 * callback's error); every batch before the error was handed over.
 */
export async function followStream(
  conn: Conn,
  nextSeq: number,
  onBatch: (next: number, batch: Buffer) => void | Promise<void>,
  onPing: () => void | Promise<void>,
  onIdle?: () => void | Promise<void>,
): Promise<never> {
  let expected = nextSeq;
  const decoder = new RespDecoder({ maxBulk: MAX_BATCH_BYTES, maxDepth: 1 });
  for (;;) {
    const v = await conn.read(decoder, onIdle);
    if (!Buffer.isBuffer(v) || v.length === 0) throw new SyncError("PROTOCOL", `master sent ${v === null ? "a null" : "an unexpected"} value on the replication stream`);
    if (v.length === 4 && v.toString("latin1") === "ping") {
      await onPing();
      continue;
    }
    if (v.length < 12) throw new SyncError("PROTOCOL", `WriteBatch of ${v.length} bytes is shorter than its 12-byte header`);
    const seq = Number(v.readBigUInt64LE(0));
    const count = v.readUInt32LE(8);
    if (seq !== expected) throw new SyncError("PROTOCOL", `sequence gap on the replication stream: expected ${expected}, got ${seq}`);
    expected = seq + count;
    await onBatch(expected, v);
  }
}
