/**
 * slow-replica's stuck replica: the drill connects to the master under test as a replica would
 * (docs/protocol.md §2: AUTH, `_db_name`, `replconf listening-port`, PSYNC; a full sync into a
 * temporary directory when PSYNC is refused, §4), follows its stream for a moment (§3), and then
 * stops reading: the socket stays open and nothing more is read, so the master's send buffer
 * fills — the replica of Kvrocks issue #3356. It announces its own local port as its listening
 * port, which is how the master's INFO replication lists it (`slaveN:…,port=<that>`).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type Conn } from "../net/index.ts";
import { checkpointNextSeq } from "../replica/files.ts";
import { fullSync, SyncTally } from "../replica/fullsync.ts";
import { Status } from "../replica/status.ts";
import { checkDbName, followStream, replconf, sendAuth, sendPsync } from "../replica/steps.ts";
import { createOutput } from "../ui/output.ts";
import { formatBytes } from "../ui/units.ts";
import { DrillError } from "./errors.ts";
import { addrText, info, intField, type NodeAddr } from "./node.ts";
import type { RunContext } from "./phases.ts";

export interface StuckReplica {
  conn: Conn;
  /** The port sent with replconf listening-port (our local port): the master's INFO lists it so. */
  marker: number;
  /** The sequence PSYNC asked for and was granted. */
  psyncFrom: number;
  /** The full sync made first when the master refused PSYNC; null when PSYNC was accepted at once. */
  fullSync: { files: number; bytes: number } | null;
  /** Stream batches and bytes read before it stopped reading. */
  batches: number;
  streamBytes: number;
}

/** How long the stuck replica follows the stream (at least one batch or heartbeat) before it stops reading. */
const FOLLOW_MS = 300;
/** Read deadline while following: a Kvrocks master sends a heartbeat every ~2 s. */
const STREAM_READ_MS = 5000;

/** Thrown by the stream callbacks to stop following (the socket stays open). */
class Enough extends Error {}

/**
 * Connect as a replica, PSYNC from the master's next sequence (full sync first when refused) and
 * follow the stream for a moment. The caller then stops reading (conn.pauseReading()). The
 * connection is closed by the run's cleanup. Any failure is a DrillError: the drill cannot run.
 */
export async function attachStuck(ctx: RunContext, addr: NodeAddr, auth: string | undefined, dbName: string): Promise<StuckReplica> {
  const where = `the drill's replica of ${addrText(addr)}`;
  try {
    const first = await handshake(ctx, addr, auth, dbName);
    const next = await masterNext(first, addr);
    let p = await sendPsync(first, next);
    let conn = first;
    let from = next;
    let synced: StuckReplica["fullSync"] = null;
    if (p.kind === "fullsync") {
      ctx.log(`the master refused PSYNC ${next} (${p.reply}): the drill's replica full-syncs into a temporary directory first`);
      first.destroy();
      const dir = mkdtempSync(join(tmpdir(), "kvr-drill-stuck-"));
      ctx.cleanup.add("removing the stuck replica's directory", () => rmSync(dir, { recursive: true, force: true }));
      synced = await syncInto(ctx, addr, auth, dir);
      const seq = await checkpointNextSeq(dir);
      if (seq === null) throw new DrillError(`${where}: the master's checkpoint has no readable sequence (CURRENT/MANIFEST): cannot PSYNC after the full sync`);
      conn = await handshake(ctx, addr, auth, dbName);
      from = seq;
      p = await sendPsync(conn, seq);
      if (p.kind === "fullsync") throw new DrillError(`${where}: the master refused PSYNC ${seq} right after a full sync (${p.reply})`);
    }
    const read = await follow(conn, from);
    return { conn, marker: conn.localPort, psyncFrom: from, fullSync: synced, ...read };
  } catch (e) {
    if (e instanceof DrillError) throw e;
    throw new DrillError(`${where}: ${(e as Error).message}`);
  }
}

/** A control connection through step 3 of the handshake (AUTH, `_db_name`, replconf with our local port). */
async function handshake(ctx: RunContext, addr: NodeAddr, auth: string | undefined, dbName: string): Promise<Conn> {
  const conn = await connect(addr.host, addr.port, { connectMs: 3000, readMs: 5000, writeMs: 5000, signal: ctx.signal });
  ctx.cleanup.add("closing the stuck replica's connection", () => conn.destroy());
  if (auth) await sendAuth(conn, auth);
  await checkDbName(conn, dbName);
  const rc = await replconf(conn, conn.localPort);
  if (!rc.ok) ctx.log(`replconf answered ${rc.reply}; going on (as a Kvrocks replica does)`);
  return conn;
}

/** The master's next sequence (master_repl_offset + 1), asked on the replication connection itself. */
async function masterNext(conn: Conn, addr: NodeAddr): Promise<number> {
  const i = await info(conn, "replication", 5000, `the master at ${addrText(addr)}`);
  const head = intField(i.master_repl_offset);
  if (head === null) throw new DrillError(`the master at ${addrText(addr)} has no master_repl_offset in INFO replication`);
  conn.readMs = 5000;
  return head + 1;
}

/** A full sync of the master's checkpoint into `dir` (lib/replica/fullsync.ts), quietly. */
async function syncInto(ctx: RunContext, addr: NodeAddr, auth: string | undefined, dir: string): Promise<{ files: number; bytes: number }> {
  const out = createOutput({ json: false, level: "error", color: false });
  const attempt = new AbortController();
  const onStop = () => attempt.abort();
  ctx.signal.addEventListener("abort", onStop, { once: true });
  const tally = new SyncTally();
  tally.begin();
  try {
    const s = await fullSync({
      dir,
      maxFileSize: 64 * 2 ** 30,
      workers: null,
      status: new Status(out),
      out,
      signal: attempt.signal,
      abortAttempt: () => attempt.abort(),
      open: async () => {
        const c = await connect(addr.host, addr.port, { connectMs: 3000, readMs: 5000, writeMs: 5000, signal: attempt.signal });
        if (auth) await sendAuth(c, auth);
        return c;
      },
      tally,
    });
    ctx.log(`the drill's replica fetched ${s.fetched} file(s), ${formatBytes(s.bytes)}`);
    return { files: s.files, bytes: s.bytes };
  } finally {
    ctx.signal.removeEventListener("abort", onStop);
  }
}

/** Follow the stream for FOLLOW_MS and at least one batch or heartbeat; the socket stays open. */
async function follow(conn: Conn, from: number): Promise<{ batches: number; streamBytes: number }> {
  conn.readMs = STREAM_READ_MS;
  const t0 = performance.now();
  const before = conn.bytesRead;
  let batches = 0;
  let seen = false;
  const enough = () => {
    if (seen && performance.now() - t0 >= FOLLOW_MS) throw new Enough();
  };
  try {
    await followStream(
      conn,
      from,
      () => {
        batches++;
        seen = true;
        enough();
      },
      () => {
        seen = true;
        enough();
      },
      () => {
        // nothing buffered: wait for the master, unless followed long enough
        enough();
      },
    );
  } catch (e) {
    if (!(e instanceof Enough)) throw e;
  }
  conn.readMs = 0;
  return { batches, streamBytes: conn.bytesRead - before };
}
