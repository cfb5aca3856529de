/**
 * `<dir>/kvr-stream.log`: where the incremental stream stands after the checkpoint in the same
 * directory. kvr keeps files, not a database: what a resume needs is the last sequence received
 * without a gap, and the log keeps what proves it.
 *
 * Format: a sequence of records, each u32 LE length word, u32 LE masked CRC32C of the payload,
 * then the payload.
 * - A batch record (length word < 2^31): one WriteBatch exactly as received; its own header
 *   gives its sequence and count. Batches follow each other without a gap.
 * - A resume record (length word = 2^31 + 20, only as the first record): the payload is "kvrR",
 *   u64 LE `base`, u64 LE `last`: the log continues the checkpoint at sequence `base` and the
 *   batches through sequence `last` were received (and dropped by a compaction). The batch
 *   records after it continue at `last + 1`.
 * A log written before resume records existed (batch records only) reads the same way.
 *
 * Recovery reads the log record by record through one fixed buffer (memory stays flat whatever
 * the log's size), keeps the prefix that continues the checkpoint, and cuts the rest (a torn last
 * record after a crash, a CRC mismatch, a gap). Compaction: a log longer than COMPACT_BYTES, at
 * recovery or while the stream is followed, is replaced by a single resume record (written to
 * `kvr-stream.log.tmp`, fsynced, renamed over the log, directory fsynced): a crash at any moment
 * leaves either log, and both give the same resume point.
 *
 * Every open refuses a symbolic link (O_NOFOLLOW) and anything but a regular file: nothing is
 * written outside --dir. A failed fdatasync fails the writer: the records after the last durable
 * one are cut and every later call throws, so the stream restarts from the last durable sequence.
 * A full sync deletes the log with every other file the master does not list.
 */
import { constants } from "node:fs";
import { open, rename, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { crc32c, maskCrc } from "../rocksdb/index.ts";
import { fsyncDir } from "./files.ts";
import { STREAM_LOG } from "./names.ts";

export { STREAM_LOG };
const RECORD_HEADER = 8;
/** The length word of a resume record: a flag no batch length can carry, and its payload size. */
const RESUME_FLAG = 0x8000_0000;
const RESUME_PAYLOAD = 20;
const RESUME_MAGIC = Buffer.from("kvrR", "latin1");
/** Largest WriteBatch the stream accepts (steps.ts); a longer record is corrupt. */
export const MAX_BATCH_BYTES = 256 * 1024 * 1024;
/** A log longer than this is compacted to one resume record (at recovery and while following). */
export const COMPACT_BYTES = 64 * 1024 * 1024;
/** The recovery's read buffer: the most it holds of the log at once. */
const SCAN_BYTES = 1024 * 1024;
const TMP_LOG = `${STREAM_LOG}.tmp`;

/** --stream-fsync: after every write, once a second, or never (the OS decides). */
export type FsyncPolicy = "always" | "1s" | "never";

/** What recovery found. */
export interface StreamLogRecovery {
  /** Last applied sequence: the checkpoint's, or the end of the last good record. */
  lastSeq: number;
  /** Batch records kept (a resume record counts none: its batches were dropped). */
  records: number;
  /** Bytes kept (before any compaction). */
  bytes: number;
  /** Bytes cut off the end (0 when the file was clean). */
  truncated: number;
  /** Why the kept prefix ends early, when it does. */
  reason: string | null;
  /** True when the kept log was replaced by one resume record. */
  compacted: boolean;
}

export interface RecoverOptions {
  /** Aborting ends the scan at the next read (a stop never waits for a long log). */
  signal?: AbortSignal;
  /** Compact a kept log longer than this (default COMPACT_BYTES). */
  compactBytes?: number;
}

/** Open a state file of --dir without following a symbolic link; refuse anything but a regular file. */
async function openState(path: string, flags: number, mode = 0o644): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, flags | constants.O_NOFOLLOW, mode);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw stateError(code, `${path} is a symbolic link: kvr writes only regular files inside --dir (remove the link)`);
    throw e;
  }
  if (!(await fh.stat()).isFile()) {
    await fh.close().catch(() => {});
    throw stateError("EINVAL", `${path} is not a regular file: remove it`);
  }
  return fh;
}

function stateError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Reads a file through one fixed buffer: `view(off, n)` returns bytes [off, off + n), n ≤ SCAN_BYTES. */
class BlockReader {
  private readonly buf = Buffer.allocUnsafe(SCAN_BYTES);
  private start = 0;
  private len = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly signal?: AbortSignal,
  ) {}

  async view(off: number, n: number): Promise<Buffer> {
    if (off < this.start || off + n > this.start + this.len) {
      this.signal?.throwIfAborted();
      this.start = off;
      this.len = 0;
      while (this.len < SCAN_BYTES) {
        const { bytesRead } = await this.fh.read(this.buf, this.len, SCAN_BYTES - this.len, off + this.len);
        if (bytesRead === 0) break;
        this.len += bytesRead;
      }
      if (n > this.len) throw new Error(`kvr-stream.log shrank while it was read (at byte ${off})`);
    }
    return this.buf.subarray(off - this.start, off - this.start + n);
  }
}

/** One parsed record head, or why the log ends before it. */
type Head = { kind: "batch" | "resume"; len: number; crc: number } | { kind: "bad"; reason: string };

function parseHead(h: Buffer, off: number, left: number): Head {
  const word = h.readUInt32LE(0);
  const crc = h.readUInt32LE(4);
  if (word === RESUME_FLAG + RESUME_PAYLOAD) {
    if (off !== 0) return { kind: "bad", reason: `resume record at byte ${off} (only the first record may be one)` };
    if (left < RESUME_PAYLOAD) return { kind: "bad", reason: `torn record at byte ${off} (${RESUME_PAYLOAD} bytes announced, ${left} present)` };
    return { kind: "resume", len: RESUME_PAYLOAD, crc };
  }
  if (word < 12) return { kind: "bad", reason: `record of ${word} bytes at byte ${off} is shorter than a WriteBatch header` };
  if (word > MAX_BATCH_BYTES) return { kind: "bad", reason: `record at byte ${off} announces ${word} bytes, more than a batch can hold` };
  if (left < word) return { kind: "bad", reason: `torn record at byte ${off} (${word} bytes announced, ${left} present)` };
  return { kind: "batch", len: word, crc };
}

/**
 * Check `<dir>/kvr-stream.log` against the checkpoint's sequence `baseSeq`: keep the records that
 * continue it (baseSeq + 1, then each batch's sequence + count; or a resume record for baseSeq),
 * truncate everything after the first record that is torn, fails its CRC, or does not continue,
 * and compact a long log. A missing file is empty. Reads one record at a time: memory is flat.
 */
export async function recoverStreamLog(dir: string, baseSeq: number, opts: RecoverOptions = {}): Promise<StreamLogRecovery> {
  const path = join(dir, STREAM_LOG);
  let fh: FileHandle;
  try {
    fh = await openState(path, constants.O_RDWR);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { lastSeq: baseSeq, records: 0, bytes: 0, truncated: 0, reason: null, compacted: false };
    throw e;
  }
  let off = 0;
  let expected = baseSeq + 1;
  let records = 0;
  let reason: string | null = null;
  let size = 0;
  try {
    size = (await fh.stat()).size;
    const rd = new BlockReader(fh, opts.signal);
    while (off < size) {
      if (size - off < RECORD_HEADER) {
        reason = `torn record header at byte ${off}`;
        break;
      }
      const head = parseHead(await rd.view(off, RECORD_HEADER), off, size - off - RECORD_HEADER);
      if (head.kind === "bad") {
        reason = head.reason;
        break;
      }
      const body = off + RECORD_HEADER;
      let crc = 0;
      for (let p = 0; p < head.len; p += SCAN_BYTES) {
        const n = Math.min(SCAN_BYTES, head.len - p);
        crc = crc32c(await rd.view(body + p, n), crc);
      }
      if (maskCrc(crc) !== head.crc) {
        reason = `CRC mismatch in the record at byte ${off}`;
        break;
      }
      // The first bytes of the payload: a batch's sequence and count, or the resume record.
      const first = await rd.view(body, Math.min(head.len, RESUME_PAYLOAD));
      if (head.kind === "resume") {
        const base = Number(first.readBigUInt64LE(4));
        const last = Number(first.readBigUInt64LE(12));
        if (!first.subarray(0, 4).equals(RESUME_MAGIC) || last < base) {
          reason = `malformed resume record at byte ${off}`;
          break;
        }
        if (base !== baseSeq) {
          reason = `the log continues a checkpoint at sequence ${base}, not ${baseSeq}`;
          break;
        }
        expected = last + 1;
      } else {
        const seq = Number(first.readBigUInt64LE(0));
        const count = first.readUInt32LE(8);
        if (seq !== expected) {
          reason = `record at byte ${off} starts at sequence ${seq}, expected ${expected}`;
          break;
        }
        expected = seq + count;
        records++;
      }
      off = body + head.len;
    }
    if (size > off) {
      await fh.truncate(off);
      await fh.datasync();
    }
  } finally {
    await fh.close().catch(() => {});
  }
  const lastSeq = expected - 1;
  const compacted = off > (opts.compactBytes ?? COMPACT_BYTES);
  if (compacted) await (await writeResumeLog(dir, baseSeq, lastSeq)).close();
  return { lastSeq, records, bytes: off, truncated: size - off, reason, compacted };
}

/** The resume record for a log continuing the checkpoint at `base` through sequence `last`. */
export function encodeResumeRecord(base: number, last: number): Buffer {
  const payload = Buffer.alloc(RESUME_PAYLOAD);
  RESUME_MAGIC.copy(payload, 0);
  payload.writeBigUInt64LE(BigInt(base), 4);
  payload.writeBigUInt64LE(BigInt(last), 12);
  const out = Buffer.allocUnsafe(RECORD_HEADER + RESUME_PAYLOAD);
  out.writeUInt32LE(RESUME_FLAG + RESUME_PAYLOAD, 0);
  out.writeUInt32LE(maskCrc(crc32c(payload)), 4);
  payload.copy(out, RECORD_HEADER);
  return out;
}

/**
 * Replace the log by one resume record, crash-safely: `kvr-stream.log.tmp` written and fsynced,
 * renamed over the log, directory fsynced. Returns the new log, open for appending.
 */
async function writeResumeLog(dir: string, base: number, last: number): Promise<FileHandle> {
  const tmp = join(dir, TMP_LOG);
  await unlink(tmp).catch((e) => {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  });
  const fh = await openState(tmp, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_EXCL);
  try {
    await writeAll(fh, encodeResumeRecord(base, last));
    await fh.datasync();
    await rename(tmp, join(dir, STREAM_LOG));
    await fsyncDir(dir);
    return fh;
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  let off = 0;
  while (off < data.length) off += (await fh.write(data, off, data.length - off)).bytesWritten;
}

/** Encode batches as stream-log records. */
export function encodeRecords(batches: Buffer[]): Buffer {
  let n = 0;
  for (const b of batches) n += RECORD_HEADER + b.length;
  const out = Buffer.allocUnsafe(n);
  let off = 0;
  for (const b of batches) {
    out.writeUInt32LE(b.length, off);
    out.writeUInt32LE(maskCrc(crc32c(b)), off + 4);
    b.copy(out, off + RECORD_HEADER);
    off += RECORD_HEADER + b.length;
  }
  return out;
}

/** The last sequence a batch covers (sequence + count - 1). */
function batchEnd(b: Buffer): number {
  return Number(b.readBigUInt64LE(0)) + b.readUInt32LE(8) - 1;
}

/**
 * The checkpoint sequence an existing log continues, read from its first record (a resume
 * record's base, a batch's sequence - 1); `fallback` for an empty log.
 */
async function logBase(fh: FileHandle, size: number, fallback: number): Promise<number> {
  if (size < RECORD_HEADER + 12) return fallback;
  const h = Buffer.alloc(RECORD_HEADER + 12);
  await fh.read(h, 0, h.length, 0);
  if (h.readUInt32LE(0) === RESUME_FLAG + RESUME_PAYLOAD) return Number(h.readBigUInt64LE(RECORD_HEADER + 4));
  return Number(h.readBigUInt64LE(RECORD_HEADER)) - 1;
}

export interface WriterOptions {
  /** Compact the log once it grows past this many bytes (default COMPACT_BYTES). */
  compactBytes?: number;
}

/**
 * Appends records to kvr-stream.log under an fsync policy. Open it after recovery: it continues
 * the log that recovery kept, at `nextSeq`.
 */
export class StreamLogWriter {
  private dirty = false;
  private timer: ReturnType<typeof setInterval> | null = null;
  private syncing: Promise<void> = Promise.resolve();
  private closed = false;
  /** Set by a failed fdatasync (or compaction): every later call throws it. */
  private failure: Error | null = null;
  /** Bytes in the log, and the last sequence they cover. */
  private size: number;
  private last: number;
  /** Bytes and last sequence known durable (the last fdatasync that succeeded). */
  private durableSize: number;
  private durableSeq: number;

  private constructor(
    private readonly dir: string,
    private fh: FileHandle,
    private readonly policy: FsyncPolicy,
    private readonly base: number,
    size: number,
    nextSeq: number,
    private readonly compactBytes: number,
  ) {
    this.size = this.durableSize = size;
    this.last = this.durableSeq = nextSeq - 1;
    if (policy === "1s") {
      // A failure is kept and thrown by the next append or check().
      this.timer = setInterval(() => void this.sync().catch(() => {}), 1000);
      this.timer.unref?.();
    }
  }

  /**
   * Open `<dir>/kvr-stream.log` for appending after `nextSeq - 1`. A log created here is made
   * durable by a directory fsync.
   */
  static async open(dir: string, policy: FsyncPolicy, nextSeq: number, opts: WriterOptions = {}): Promise<StreamLogWriter> {
    const path = join(dir, STREAM_LOG);
    let fh: FileHandle;
    let created = false;
    try {
      fh = await openState(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_EXCL);
      created = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      fh = await openState(path, constants.O_RDWR | constants.O_APPEND);
    }
    try {
      if (created) await fsyncDir(dir);
      const size = (await fh.stat()).size;
      const base = await logBase(fh, size, nextSeq - 1);
      return new StreamLogWriter(dir, fh, policy, base, size, nextSeq, opts.compactBytes ?? COMPACT_BYTES);
    } catch (e) {
      await fh.close().catch(() => {});
      throw e;
    }
  }

  /** Throw the failure that ended this writer, if any (a 1 s fdatasync that failed meanwhile). */
  check(): void {
    if (this.failure) throw this.failure;
  }

  /** Append batches (one write); with `always`, durable when the promise resolves. */
  async append(batches: Buffer[]): Promise<void> {
    this.check();
    if (batches.length === 0) return;
    const rec = encodeRecords(batches);
    await writeAll(this.fh, rec);
    this.size += rec.length;
    this.last = batchEnd(batches[batches.length - 1]);
    this.dirty = true;
    if (this.policy === "always") await this.sync();
    if (this.size > this.compactBytes) await this.compact();
  }

  /** fdatasync what was appended; a failure ends the writer (see fail()). */
  private sync(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.dirty || this.closed) return this.syncing;
    this.dirty = false;
    const size = this.size;
    const seq = this.last;
    const fh = this.fh;
    this.syncing = this.syncing.then(async () => {
      if (this.failure) throw this.failure;
      try {
        await fh.datasync();
      } catch (e) {
        throw await this.fail(e, "fdatasync");
      }
      this.durableSize = size;
      this.durableSeq = seq;
    });
    return this.syncing;
  }

  /**
   * The log could not be made durable: what is past the last durable record may be lost by the
   * kernel already, so it is cut (the stream restarts after `durableSeq`), and the writer fails.
   */
  private async fail(e: unknown, what: string): Promise<Error> {
    if (this.failure) return this.failure;
    const code = (e as NodeJS.ErrnoException)?.code ?? "IO";
    const msg = (e as Error)?.message ?? String(e);
    this.failure = stateError(code, `kvr-stream.log: ${what} failed (${msg}); the batches after sequence ${this.durableSeq} are not durable and were cut, the stream restarts after it`);
    await this.fh.truncate(this.durableSize).catch(() => {});
    return this.failure;
  }

  /** Replace the log by one resume record for everything appended so far; keep appending to it. */
  private async compact(): Promise<void> {
    // The resume record is made durable on its own: no fdatasync of the old log starts now.
    this.dirty = false;
    await this.syncing.catch(() => {});
    this.check();
    let fh: FileHandle;
    try {
      fh = await writeResumeLog(this.dir, this.base, this.last);
    } catch (e) {
      throw await this.fail(e, "compaction");
    }
    const old = this.fh;
    this.fh = fh;
    await old.close().catch(() => {});
    this.size = this.durableSize = RECORD_HEADER + RESUME_PAYLOAD;
    this.durableSeq = this.last;
  }

  /** Final fsync (unless `never`) and close; throws when the log could not be made durable. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    try {
      if (this.policy !== "never") await this.sync();
      await this.syncing;
    } finally {
      this.closed = true;
      await this.fh.close().catch(() => {});
    }
  }
}
