/**
 * `<dir>/kvr-stream.log`: the WriteBatches received on the incremental stream after the
 * checkpoint in the same directory, in order. One record per batch: u32 LE length, u32 LE
 * masked CRC32C of the batch, the batch bytes (its own header gives sequence and count).
 *
 * The replica's last applied sequence is the checkpoint's sequence advanced by the records that
 * continue it without a gap; recovery keeps exactly that prefix and truncates the rest (a torn
 * last record after a crash, or records that do not follow the checkpoint). A full sync deletes
 * the file with every other file the master does not list.
 */
import { open, readFile, truncate, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { crc32c, maskCrc } from "../rocksdb/index.ts";

export const STREAM_LOG = "kvr-stream.log";
const RECORD_HEADER = 8;

/** --stream-fsync: after every write, once a second, or never (the OS decides). */
export type FsyncPolicy = "always" | "1s" | "never";

/** What recovery found. */
export interface StreamLogRecovery {
  /** Last applied sequence: the checkpoint's, or the end of the last good record. */
  lastSeq: number;
  records: number;
  /** Bytes kept. */
  bytes: number;
  /** Bytes cut off the end (0 when the file was clean). */
  truncated: number;
  /** Why the kept prefix ends early, when it does. */
  reason: string | null;
}

/**
 * Check `<dir>/kvr-stream.log` against the checkpoint's sequence `baseSeq`: keep the records that
 * continue it (baseSeq + 1, then each batch's sequence + count), truncate everything after the
 * first record that is torn, fails its CRC, or does not continue. A missing file is empty.
 */
export async function recoverStreamLog(dir: string, baseSeq: number): Promise<StreamLogRecovery> {
  const path = join(dir, STREAM_LOG);
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { lastSeq: baseSeq, records: 0, bytes: 0, truncated: 0, reason: null };
    throw e;
  }
  let off = 0;
  let expected = baseSeq + 1;
  let records = 0;
  let reason: string | null = null;
  while (off < data.length) {
    if (data.length - off < RECORD_HEADER) {
      reason = `torn record header at byte ${off}`;
      break;
    }
    const len = data.readUInt32LE(off);
    const crc = data.readUInt32LE(off + 4);
    if (len < 12 || data.length - off - RECORD_HEADER < len) {
      reason = len < 12 ? `record of ${len} bytes at byte ${off} is shorter than a WriteBatch header` : `torn record at byte ${off} (${len} bytes announced, ${data.length - off - RECORD_HEADER} present)`;
      break;
    }
    const batch = data.subarray(off + RECORD_HEADER, off + RECORD_HEADER + len);
    if (maskCrc(crc32c(batch)) !== crc) {
      reason = `CRC mismatch in the record at byte ${off}`;
      break;
    }
    const seq = Number(batch.readBigUInt64LE(0));
    const count = batch.readUInt32LE(8);
    if (seq !== expected) {
      reason = `record at byte ${off} starts at sequence ${seq}, expected ${expected}`;
      break;
    }
    expected = seq + count;
    records++;
    off += RECORD_HEADER + len;
  }
  const truncated = data.length - off;
  if (truncated > 0) await truncate(path, off);
  return { lastSeq: expected - 1, records, bytes: off, truncated, reason };
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

/** Appends records to kvr-stream.log under an fsync policy. */
export class StreamLogWriter {
  private dirty = false;
  private timer: ReturnType<typeof setInterval> | null = null;
  private syncing: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly fh: FileHandle,
    private readonly policy: FsyncPolicy,
  ) {
    if (policy === "1s") {
      this.timer = setInterval(() => void this.sync(), 1000);
      this.timer.unref?.();
    }
  }

  /** Open `<dir>/kvr-stream.log` for appending (created when missing). */
  static async open(dir: string, policy: FsyncPolicy): Promise<StreamLogWriter> {
    return new StreamLogWriter(await open(join(dir, STREAM_LOG), "a", 0o644), policy);
  }

  /** Append batches (one write); with `always`, durable when the promise resolves. */
  async append(batches: Buffer[]): Promise<void> {
    if (batches.length === 0) return;
    const rec = encodeRecords(batches);
    let off = 0;
    while (off < rec.length) off += (await this.fh.write(rec, off, rec.length - off)).bytesWritten;
    this.dirty = true;
    if (this.policy === "always") await this.sync();
  }

  private sync(): Promise<void> {
    if (!this.dirty || this.closed) return this.syncing;
    this.dirty = false;
    this.syncing = this.syncing.then(() => this.fh.datasync()).catch(() => {});
    return this.syncing;
  }

  /** Final fsync (unless `never`) and close. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.policy !== "never") await this.sync();
    await this.syncing;
    this.closed = true;
    await this.fh.close().catch(() => {});
  }
}
