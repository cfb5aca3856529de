/**
 * Full sync (docs/protocol.md §4): `_fetch_meta` on a new connection, prepare the target directory
 * (clean, skip present files), then W fetch workers, each with its own connection and ONE
 * `_fetch_file` for its round-robin share. Any worker failure aborts the others and fails the
 * attempt; partial files never carry a final name and every `.tmp` is removed.
 *
 * The fetch connections are lib/net's bulk connections where they can run (Linux): the file bytes
 * go from the socket to the `.tmp` on lib/net's own thread, never through Bun's socket reads.
 * Elsewhere (or with RunConfig.bulk false) they are Conns and each chunk is written from here.
 * Everything else (size lines, names, fsync, renames, events) is the same code for both.
 */
import { bulkAvailable, bulkUnavailableReason, BulkConn, type Conn } from "../net/index.ts";
import { encodeCommand } from "../resp/index.ts";
import type { Output } from "../ui/output.ts";
import { count } from "../ui/units.ts";
import { FileSink, fsyncDir, prepareDir, removeTmpFiles } from "./files.ts";
import { located, parseMetaLine, parseSizeLine, splitRoundRobin, SyncError, workerCount } from "./names.ts";
import type { Status } from "./status.ts";
import { rename, stat } from "node:fs/promises";
import { join } from "node:path";

export interface SyncContext {
  dir: string;
  maxFileSize: number;
  /** --workers, or null for auto. */
  workers: number | null;
  status: Status;
  out: Output;
  /** The attempt's signal: aborted by a stop or by the first failing worker. */
  signal: AbortSignal;
  /** Abort the whole attempt (the other workers stop at once). */
  abortAttempt(): void;
  /** Connect to the master (deadlines, signal, AUTH done), labelled for error messages. */
  open(label: string): Promise<Conn>;
  /** The same as a bulk connection (used where the bulk thread runs); absent or null: never. */
  openBulk?: ((label: string) => Promise<BulkConn>) | null;
  /** The run's tally across attempts (files completed by an earlier attempt count as fetched). */
  tally: SyncTally;
}

/**
 * What one run fetched towards its next completed full sync, over all its attempts: a file
 * completed by an attempt that then failed was fetched by this run, not skipped, and the time
 * counts from the run's first attempt.
 */
export class SyncTally {
  startMs = 0;
  attempts = 0;
  /** Files completed by this run, with the size the master announced for each. */
  readonly fetched = new Map<string, number>();

  /** An attempt starts. */
  begin(): void {
    if (this.attempts++ === 0) this.startMs = Date.now();
  }
}

/** A completed full sync, in per-run totals (see SyncTally). */
export interface SyncSummary {
  files: number;
  /** Files that were in the target before this run started. */
  skipped: number;
  /** Files this run fetched, in this attempt or an earlier one. */
  fetched: number;
  /** Bytes of the fetched files. */
  bytes: number;
  /** From the run's first attempt to the last file in place. */
  ms: number;
  attempts: number;
}

/** Longest `_fetch_meta` line accepted (a list of many thousand files). */
const MAX_META_LINE = 16 * 1024 * 1024;

/** `_fetch_meta` on its own connection → the checked list of file names. */
export async function fetchMeta(ctx: SyncContext): Promise<string[]> {
  const conn = await ctx.open("meta connection");
  try {
    await conn.write(encodeCommand(["_fetch_meta"]));
    const line = await conn.readLine(MAX_META_LINE);
    return parseMetaLine(Buffer.from(line, "latin1").toString("utf8"));
  } catch (e) {
    throw located(e, "meta connection");
  } finally {
    conn.destroy();
  }
}

/** Run one full sync; resolves with its summary once every file is in place and durable. */
export async function fullSync(ctx: SyncContext): Promise<SyncSummary> {
  const { status: st, out, dir } = ctx;
  st.beginSync();
  st.setState("fetch_meta");
  // The bulk thread (started once per process) gets ready while the list is fetched.
  const bulk = ctx.openBulk ? bulkAvailable() : Promise.resolve(false);
  const files = await fetchMeta(ctx);
  const present = await prepareDir(dir, files);
  const w = workerCount(files.length, ctx.workers);
  st.filesTotal = files.length;
  st.filesDone = present.size;
  st.bytesSkipped = await sizeOf(dir, present);
  st.bytesDone = st.bytesTotal = st.bytesSkipped;
  out.event("meta", { files, count: files.length, workers: w }, `master lists ${count(files.length, "file")}; ${count(w, "fetch worker")}`);
  out.event("skip", { count: present.size }, `skip count: ${present.size}`);

  st.setState("fetch_files");
  const open = (await bulk) ? ctx.openBulk! : ctx.open;
  if (open !== ctx.open) out.debug("files received on the fetch thread (socket to file, lib/net/bulk.ts)");
  else out.debug(`files received through Bun's sockets: ${ctx.openBulk ? bulkUnavailableReason() : "KVR_FETCH_THREAD=0"}`);
  const groups = splitRoundRobin(files, w).map((g) => g.filter((f) => !present.has(f)));
  // prepareDir removed every stale .tmp: only the workers' own can be in place after this.
  const tmps = new Set<string>();
  const results = await Promise.allSettled(groups.map((g, i) => (g.length ? fetchWorker(ctx, open, i + 1, g, tmps) : Promise.resolve(0))));
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason as SyncError);
  if (failures.length > 0) {
    // Only what may be in place (a few names, not one unlink per listed file: a stop waits on this).
    await removeTmpFiles(dir, tmps);
    // The first failure that is not the knock-on abort of the others is the cause.
    throw failures.find((f) => f.code !== "ABORTED") ?? failures[0];
  }
  try {
    // Every other rename durable first: only then may CURRENT say the checkpoint is complete.
    await fsyncDir(dir);
    if (files.includes("CURRENT")) {
      await rename(join(dir, "CURRENT.tmp"), join(dir, "CURRENT"));
      await fsyncDir(dir);
    }
  } catch (e) {
    await removeTmpFiles(dir, tmps);
    throw located(e, `target directory ${dir}`);
  }
  st.currentFile = "";
  const { tally } = ctx;
  const fetched = files.filter((f) => tally.fetched.has(f));
  const bytes = fetched.reduce((n, f) => n + tally.fetched.get(f)!, 0);
  return { files: files.length, skipped: files.length - fetched.length, fetched: fetched.length, bytes, ms: Date.now() - tally.startMs, attempts: tally.attempts };
}

/** Total size of the files `names` in `dir` (files already in place). */
async function sizeOf(dir: string, names: Iterable<string>): Promise<number> {
  let n = 0;
  for (const name of names) n += (await stat(join(dir, name))).size;
  return n;
}

/**
 * One fetch worker: its own connection (made by `open`), one `_fetch_file a,b,c`, then per file a
 * size line and exactly that many bytes into `<name>.tmp` (fsync, rename). CURRENT stays
 * `CURRENT.tmp` until every worker succeeded. `tmps` holds every name whose `.tmp` may be in place
 * (added before it is created, removed once renamed). Resolves with the bytes received.
 *
 * A file's fsync and rename run while the next file is received (one at a time per worker: the
 * next waits for it), so the connection does not sit idle while the disk catches up. A failed
 * one aborts the attempt at once and is the worker's error.
 */
export async function fetchWorker(
  ctx: SyncContext,
  open: (label: string) => Promise<Conn | BulkConn>,
  index: number,
  names: string[],
  tmps: Set<string>,
): Promise<number> {
  const { status: st, out, dir } = ctx;
  const label = `fetch worker ${index}`;
  let conn: Conn | BulkConn | null = null;
  let sink: FileSink | null = null;
  let committing: Promise<void> | null = null;
  let file = "";
  let total = 0;
  let offset = 0;
  /** fsync, close and rename `s` (CURRENT stays `.tmp`), then count it as fetched. */
  const commit = async (s: FileSink, name: string, size: number): Promise<void> => {
    try {
      await s.commit(name !== "CURRENT");
    } catch (e) {
      await s.discard();
      throw located(e, `${label} (${name} at byte ${size})`);
    }
    if (name !== "CURRENT") tmps.delete(name);
    ctx.tally.fetched.set(name, size);
    total += size;
    st.filesDone++;
    out.event("file-done", { name, bytes: size, worker: index });
  };
  try {
    conn = await open(label);
    await conn.write(encodeCommand(["_fetch_file", names.join(",")]));
    for (const name of names) {
      file = name;
      offset = 0;
      st.currentFile = name;
      out.event("file-start", { name, worker: index });
      const size = parseSizeLine(await conn.readLine(64), name, ctx.maxFileSize);
      st.bytesTotal += size;
      tmps.add(name);
      const s = (sink = await FileSink.create(dir, name));
      if (conn instanceof BulkConn) {
        const c = conn;
        const untrack = st.track({ get bytes() { return c.fileBytes; }, get lastIoMs() { return c.lastIoMs; } });
        try {
          await s.fill(size, (fd) => c.readToFile(size, fd));
        } finally {
          offset = c.fileBytes;
          untrack();
        }
        st.bytesDone += size;
      } else {
        await conn.readExactly(size, (chunk) => {
          offset += chunk.length;
          st.bytesDone += chunk.length;
          st.touch();
          return s.write(chunk);
          // The sink keeps no chunk once written: each is freed at once.
        }, { release: true });
      }
      // The previous file's commit first: should it fail, this file is still `sink`, discarded below.
      await committing;
      sink = null;
      committing = commit(s, name, size);
      committing.catch(() => ctx.abortAttempt());
    }
    await committing;
    const extra = conn instanceof BulkConn ? await conn.available() : conn.pending;
    if (extra > 0) throw new SyncError("PROTOCOL", `master sent ${extra} unexpected bytes after the last file`);
    return total;
  } catch (e) {
    // The file being received is removed; a commit in flight ends first (its failure, when it
    // failed, is the cause: the abort it caused is not).
    const [, failed] = await Promise.all([sink?.discard(), committing?.then(() => null, (c: unknown) => c)]);
    if (!ctx.signal.aborted) ctx.abortAttempt();
    if (failed) throw failed;
    throw located(e, file ? `${label} (${file} at byte ${offset})` : label);
  } finally {
    conn?.destroy();
  }
}
