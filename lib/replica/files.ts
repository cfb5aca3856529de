/**
 * The target directory: preparing it for a full sync (clean, skip), streaming one file to
 * `<name>.tmp` with backpressure and renaming it only once complete and fsynced, and the
 * "complete checkpoint" test. A CURRENT in the directory means the checkpoint there is complete,
 * crash or not: a full sync removes CURRENT first and makes that durable (directory fsync)
 * before it deletes anything else, and renames CURRENT into place last, after every other
 * file's rename was made durable by a directory fsync.
 */
import { open, readdir, rename, unlink, lstat, readFile, stat, access, constants } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { checkpointSequence } from "../rocksdb/index.ts";
import { STREAM_LOG, SyncError } from "./names.ts";

export const TMP_SUFFIX = ".tmp";

/**
 * True when `name` looks like part of a RocksDB/Kvrocks checkpoint or kvr's own state: the only
 * files a full sync may delete. Anything else means --dir points at the wrong directory.
 */
export function isReplicaFileName(name: string): boolean {
  return (
    /^\d+\.(sst|log|blob)$/.test(name) ||
    /^(MANIFEST|OPTIONS)-\d+$/.test(name) ||
    name === "CURRENT" ||
    name === "IDENTITY" ||
    name === "LOCK" ||
    name === "LOG" ||
    name.startsWith("LOG.old.") ||
    name.endsWith(TMP_SUFFIX) ||
    name === STREAM_LOG
  );
}

/** The message for files in `dir` that a full sync would delete but that are not the replica's. */
function foreignFilesMessage(dir: string, foreign: string[]): string {
  const more = foreign.length > 1 ? ` (and ${foreign.length - 1} more file${foreign.length > 2 ? "s" : ""})` : "";
  return (
    `--dir ${dir} holds ${foreign[0]}${more}, which is not part of a Kvrocks checkpoint or of kvr's state; ` +
    `a full sync deletes files the master does not list, so nothing was deleted: use an empty directory or a former replica directory`
  );
}

/** Regular files of `dir` (other than `keep`) that do not look like the replica's, sorted. */
async function foreignFiles(dir: string, keep: ReadonlySet<string> = new Set()): Promise<string[]> {
  const out: string[] = [];
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    if (ent.isFile() && !keep.has(ent.name) && !isReplicaFileName(ent.name)) out.push(ent.name);
  }
  return out.sort();
}

/**
 * Throw a clear error unless `dir` exists, is a directory, is writable, and holds nothing but
 * checkpoint files and kvr's state (a full sync may delete those, and only those), each a
 * regular file (never a symbolic link: lstat, not stat).
 */
export async function checkTargetDir(dir: string): Promise<void> {
  let st;
  try {
    st = await stat(dir);
  } catch {
    throw new Error(`--dir ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new Error(`--dir ${dir} is not a directory`);
  try {
    await access(dir, constants.W_OK | constants.X_OK);
  } catch {
    throw new Error(`--dir ${dir} is not writable by this user`);
  }
  const foreign = await foreignFiles(dir);
  if (foreign.length > 0) throw new Error(foreignFilesMessage(dir, foreign));
  // kvr writes, truncates and deletes these names: through a link it would act outside --dir.
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    if (!isReplicaFileName(ent.name) || ent.isFile()) continue;
    const what = ent.isSymbolicLink() ? "a symbolic link" : "not a regular file";
    throw new Error(`--dir ${dir}: ${ent.name} is ${what}; kvr writes only regular files inside --dir: remove it`);
  }
}

/** True when `dir` holds a complete checkpoint: CURRENT names a MANIFEST that is present. */
export async function hasCompleteCheckpoint(dir: string): Promise<boolean> {
  try {
    const cur = (await readFile(join(dir, "CURRENT"), "utf8")).trim();
    if (!/^MANIFEST-\d+$/.test(cur)) return false;
    return (await lstat(join(dir, cur))).isFile();
  } catch {
    return false;
  }
}

/**
 * Prepare `dir` for a full sync of `files` (Kvrocks' sync_checkpoint_dir): delete every regular
 * file not in the list, every stale `.tmp`, and CURRENT; return the listed files already present
 * (complete, since only complete files carry a final name), which are skipped. CURRENT goes
 * first and its removal is made durable before any other file is deleted: a crash in between
 * leaves a checkpoint without CURRENT (incomplete), never a CURRENT over missing files. When a
 * file to be deleted does not look like the replica's (isReplicaFileName), nothing is deleted and
 * the full sync fails (code FOREIGN_FILE): --dir points at the wrong directory.
 */
export async function prepareDir(dir: string, files: string[]): Promise<Set<string>> {
  const listed = new Set(files);
  const present = new Set<string>();
  const doomed: string[] = [];
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    if (!ent.isFile()) continue;
    const keep = listed.has(ent.name) && ent.name !== "CURRENT";
    if (keep) present.add(ent.name);
    else doomed.push(ent.name);
  }
  const foreign = doomed.filter((n) => !isReplicaFileName(n)).sort();
  if (foreign.length > 0) throw new SyncError("FOREIGN_FILE", foreignFilesMessage(dir, foreign));
  if (doomed.includes("CURRENT")) {
    await unlink(join(dir, "CURRENT")).catch(ignoreMissing);
    await fsyncDir(dir);
  }
  for (const name of doomed) if (name !== "CURRENT") await unlink(join(dir, name)).catch(ignoreMissing);
  return present;
}

/** Remove `<name>.tmp` for each name (after an aborted or failed attempt). */
export async function removeTmpFiles(dir: string, names: Iterable<string>): Promise<void> {
  for (const n of names) await unlink(join(dir, n + TMP_SUFFIX)).catch(ignoreMissing);
}

/** fsync a directory, so renames in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function ignoreMissing(e: NodeJS.ErrnoException): void {
  if (e?.code !== "ENOENT") throw e;
}

/**
 * One file being received: bytes go to `<name>.tmp` (a stale one is replaced); `commit()`
 * fsyncs, closes and renames it; `discard()` removes the `.tmp` (waiting for a write in flight).
 */
export class FileSink {
  written = 0;
  private pending: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly name: string,
    private readonly fh: FileHandle,
  ) {}

  get tmpPath(): string {
    return join(this.dir, this.name + TMP_SUFFIX);
  }

  /** Create `<dir>/<name>.tmp`, deleting a stale one first. */
  static async create(dir: string, name: string): Promise<FileSink> {
    const tmp = join(dir, name + TMP_SUFFIX);
    await unlink(tmp).catch(ignoreMissing);
    const fh = await open(tmp, "wx", 0o644);
    return new FileSink(dir, name, fh);
  }

  /** Append a chunk; the returned promise resolves once it is written (backpressure). */
  readonly write = (chunk: Uint8Array): Promise<void> => {
    const p = this.writeAll(chunk);
    this.pending = p.catch(() => {});
    return p;
  };

  /**
   * Let `fill` write `n` bytes straight into the file's descriptor (the bulk thread does, see
   * lib/net/bulk.ts); awaited like write(): commit() and discard() wait for it to settle.
   */
  fill(n: number, fill: (fd: number) => Promise<void>): Promise<void> {
    const p = fill(this.fh.fd).then(() => {
      this.written += n;
    });
    this.pending = p.catch(() => {});
    return p;
  }

  private async writeAll(chunk: Uint8Array): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.length - off);
      off += bytesWritten;
      this.written += bytesWritten;
    }
  }

  /** fsync and close the `.tmp`, then rename it to its final name unless `rename` is false. */
  async commit(doRename = true): Promise<void> {
    await this.pending;
    await this.fh.sync();
    this.closed = true;
    await this.fh.close();
    if (doRename) await rename(this.tmpPath, join(this.dir, this.name));
  }

  /** Close (after any write in flight) and delete the `.tmp`. Never throws. */
  async discard(): Promise<void> {
    await this.pending;
    if (!this.closed) {
      this.closed = true;
      await this.fh.close().catch(() => {});
    }
    await unlink(this.tmpPath).catch(() => {});
  }
}

/**
 * The next sequence to ask PSYNC for, when the target holds a complete checkpoint whose
 * sequence can be read (MANIFEST and WAL files); null → go straight to a full sync (kvr keeps
 * files, not a database: an empty or incomplete target has nothing to continue from).
 */
export async function checkpointNextSeq(dir: string): Promise<number | null> {
  if (!(await hasCompleteCheckpoint(dir))) return null;
  try {
    return (await checkpointSequence(dir)) + 1;
  } catch {
    return null;
  }
}
