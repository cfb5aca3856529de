/**
 * Checkpoint sources: the files `_fetch_meta` lists and `_fetch_file` streams. A directory
 * (a real RocksDB/Kvrocks checkpoint, read from disk chunk by chunk) or generated data.
 */
import { close, fstat, open, read, readdirSync, statSync } from "node:fs";
import { promisify } from "node:util";
import { join, resolve } from "node:path";
import { generatedChunks, generatedFiles, generatedManifest, type GenerateSpec } from "./generate.ts";
import { unsafeFileName } from "../rocksdb/names.ts";
import { UsageError } from "../ui/units.ts";

const openAsync = promisify(open);
const fstatAsync = promisify(fstat);
const readAsync = promisify(read);
const closeAsync = promisify(close);

export interface SourceFile {
  name: string;
  size: number;
}

/** An opened file: its size (the size line) and its bytes in chunks. */
export interface OpenFile {
  size: number;
  /**
   * Chunks of at most `max` bytes, exactly `size` bytes in all (throws if the file shrank).
   * `reusable`, when given, is asked before each chunk after the first: true means nothing
   * refers to the previous chunk any more, and its memory is filled again instead of fresh memory
   * (which costs a page fault per 4 KiB and leaves garbage behind).
   */
  chunks(max: number, reusable?: () => boolean): AsyncIterable<Buffer>;
  close(): Promise<void>;
}

export interface CheckpointSource {
  /** Where the data comes from, for the start message. */
  readonly description: string;
  /** The served files, in `_fetch_meta` order. */
  readonly files: SourceFile[];
  /** True when `name` is one of the served files. */
  has(name: string): boolean;
  open(name: string): Promise<OpenFile>;
  /**
   * Generated sources: checkpoints taken by snapshot() carry `now()` (the stream's head); one is
   * shared by the full syncs that start while the head is fewer than `shareWithin` batches past it.
   */
  bindSequence?(now: () => number, shareWithin?: number): void;
  /** The file list of a checkpoint taken now (`_fetch_meta`); absent = `files`. */
  snapshot?(): SourceFile[];
}

/** Total bytes of a source's files. */
export function totalBytes(src: CheckpointSource): number {
  return src.files.reduce((a, f) => a + f.size, 0);
}

/**
 * Why `name` may not be served, or null when it is acceptable. Checked before touching the
 * disk: empty, `.`/`..`, a path separator or NUL, or not in the served list.
 */
export function refuseName(name: string, src: CheckpointSource): string | null {
  const why = unsafeFileName(name);
  if (why) return why;
  if (!src.has(name)) return `'${name}' is not a file of this checkpoint`;
  return null;
}

/** Serve the regular files of a directory, listed in the directory's own order. */
export function dirSource(dir: string): CheckpointSource {
  const root = resolve(dir);
  let st;
  try {
    st = statSync(root);
  } catch {
    throw new UsageError(`--dir: '${dir}' does not exist (give a checkpoint directory)`);
  }
  if (!st.isDirectory()) throw new UsageError(`--dir: '${dir}' is not a directory`);
  const files: SourceFile[] = [];
  for (const ent of readdirSync(root, { withFileTypes: true })) {
    if (!ent.isFile()) continue;
    files.push({ name: ent.name, size: statSync(join(root, ent.name)).size });
  }
  if (files.length === 0) throw new UsageError(`--dir: '${dir}' holds no files to serve`);
  const names = new Set(files.map((f) => f.name));
  return {
    description: `directory ${root}`,
    files,
    has: (n) => names.has(n),
    async open(name) {
      const fd = await openAsync(join(root, name), "r");
      const size = (await fstatAsync(fd)).size;
      let closed = false;
      return {
        size,
        async *chunks(max, reusable) {
          let pos = 0;
          let buf: Buffer | null = null;
          while (pos < size) {
            const n = Math.min(max, size - pos);
            if (!buf || buf.length < n || !reusable?.()) buf = Buffer.allocUnsafe(n);
            const { bytesRead } = await readAsync(fd, buf, 0, n, pos);
            if (bytesRead === 0) throw new Error(`${name} shrank while being served (${pos} of ${size} bytes)`);
            pos += bytesRead;
            yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
          }
        },
        async close() {
          if (closed) return;
          closed = true;
          await closeAsync(fd);
        },
      };
    },
  };
}

/** Number of the MANIFEST of a generated checkpoint taken at a later stream sequence. */
export const SNAPSHOT_MANIFEST_BASE = 1_000_000;

/**
 * Serve a generated checkpoint (see generate.ts). Bound to a stream whose head moved past the
 * spec's sequence, `_fetch_meta` takes a fresh checkpoint as a Kvrocks master does: its MANIFEST
 * is `MANIFEST-<1000000 + head>` recording the head (a new name, since present files are never
 * fetched again) and CURRENT names it. The SST files stay the same. Like Kvrocks, which shares a
 * checkpoint younger than half its WAL retention among the replicas that full-sync, a checkpoint
 * is shared while the head is fewer than `shareWithin` batches past it: replicas syncing at once
 * each get a CURRENT that names the MANIFEST their own file list had.
 */
export function generatedSource(spec: GenerateSpec): CheckpointSource {
  const files = generatedFiles(spec);
  const names = new Set(files.map((f) => f.name));
  const staticManifest = files.find((f) => f.name.startsWith("MANIFEST-"))!.name;
  let now: (() => number) | null = null;
  let shareWithin = 0;
  let taken = spec.seq;
  const manifestName = (seq: number) => `MANIFEST-${String(SNAPSHOT_MANIFEST_BASE + seq).padStart(6, "0")}`;
  const snapshotSeq = (name: string): number | null => {
    const m = /^MANIFEST-(\d+)$/.exec(name);
    if (!m || name === staticManifest) return null;
    const seq = Number(m[1]) - SNAPSHOT_MANIFEST_BASE;
    return seq > spec.seq && now !== null && seq <= now() && name === manifestName(seq) ? seq : null;
  };
  const dynamic = (name: string): Buffer | null => {
    if (name === "CURRENT" && taken !== spec.seq) return Buffer.from(`${manifestName(taken)}\n`, "latin1");
    const seq = snapshotSeq(name);
    return seq === null ? null : generatedManifest(seq, spec.seed, spec.count);
  };
  return {
    description: `generated data ${spec.count}x${spec.size} bytes, seed ${spec.seed}`,
    files,
    has: (n) => names.has(n) || snapshotSeq(n) !== null,
    bindSequence(fn, share = 0) {
      now = fn;
      shareWithin = share;
    },
    snapshot() {
      const head = now ? now() : spec.seq;
      if (taken === spec.seq || head - taken >= shareWithin) taken = head;
      if (taken === spec.seq) return files;
      return files.map((f) => (f.name === staticManifest ? { name: manifestName(taken), size: generatedManifest(taken, spec.seed, spec.count).length } : f));
    },
    async open(name) {
      const data = dynamic(name);
      const size = data ? data.length : files.find((f) => f.name === name)!.size;
      return {
        size,
        async *chunks(max, reusable) {
          if (!data) return yield* generatedChunks(spec, name, max, reusable);
          for (let o = 0; o < data.length; o += max) yield data.subarray(o, Math.min(o + max, data.length));
        },
        async close() {},
      };
    },
  };
}
