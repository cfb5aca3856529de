/**
 * RocksDB's log format, used by MANIFEST and WAL (`*.log`) files: 32 KiB blocks of physical
 * records, each with a header of masked CRC32C (4 bytes LE), payload length (2 bytes LE) and
 * type (1 byte); the recyclable types add the 4-byte log number (11-byte header). A logical
 * record larger than the space left in a block is split into FIRST, MIDDLE…, LAST fragments.
 * A block tail shorter than a header is zero padding.
 */
import { RocksFormatError } from "./codec.ts";
import { crc32c, maskCrc } from "./crc32c.ts";

export const BLOCK_SIZE = 32768;
export const HEADER_SIZE = 7;
export const RECYCLABLE_HEADER_SIZE = 11;

/** Physical record types. */
export const RecordType = {
  Zero: 0,
  Full: 1,
  First: 2,
  Middle: 3,
  Last: 4,
  RecyclableFull: 5,
  RecyclableFirst: 6,
  RecyclableMiddle: 7,
  RecyclableLast: 8,
  SetCompressionType: 9,
  UserDefinedTimestampSize: 10,
  RecyclableUserDefinedTimestampSize: 11,
} as const;

/** One logical record and the byte offset of its first fragment's header. */
export interface LogRecord {
  offset: number;
  data: Uint8Array;
}

export interface ReadLogOptions {
  /** Named in errors (a path or file name). */
  file?: string;
  /**
   * The file's log number (e.g. 14 for `000014.log`). With recyclable records, a record carrying
   * another log number is left over from the file's earlier use and ends the log, as in RocksDB.
   */
  logNumber?: number;
}

const FRAGMENT_NAMES = ["zero", "FULL", "FIRST", "MIDDLE", "LAST"];

function allZero(data: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (data[i] !== 0) return false;
  return true;
}

/**
 * Yields the logical records of a log file, checking every CRC. Throws RocksFormatError naming
 * the file and byte offset for a checksum mismatch, a bad length or type, a fragment out of
 * order, or data that ends inside a record (a truncated file).
 */
export function* readLogRecords(data: Uint8Array, opts: ReadLogOptions = {}): Generator<LogRecord> {
  const file = opts.file ?? "log";
  const len = data.length;
  let pos = 0;
  let parts: Uint8Array[] | null = null; // fragments of the record being reassembled
  let partsStart = 0;
  const fail = (offset: number, detail: string): never => {
    throw new RocksFormatError(file, offset, detail);
  };

  while (pos < len) {
    const blockLeft = BLOCK_SIZE - (pos % BLOCK_SIZE);
    if (blockLeft < HEADER_SIZE) {
      pos += blockLeft; // trailer padding
      continue;
    }
    if (len - pos < HEADER_SIZE) {
      if (allZero(data, pos, len)) break; // zero-filled tail
      fail(pos, `truncated record header (${len - pos} of ${HEADER_SIZE} bytes): the file is incomplete`);
    }
    const length = data[pos + 4] | (data[pos + 5] << 8);
    const type = data[pos + 6];
    if (type === RecordType.Zero && length === 0) {
      // Preallocated, never-written space.
      pos += HEADER_SIZE;
      continue;
    }
    const recyclable = type >= RecordType.RecyclableFull && type <= RecordType.RecyclableLast || type === RecordType.RecyclableUserDefinedTimestampSize;
    const hdr = recyclable ? RECYCLABLE_HEADER_SIZE : HEADER_SIZE;
    if (pos + hdr + length > pos - (pos % BLOCK_SIZE) + BLOCK_SIZE)
      fail(pos, `bad record length ${length}: runs past the end of its ${BLOCK_SIZE}-byte block (corrupt file)`);
    if (pos + hdr + length > len)
      fail(pos, `truncated record: header says ${length} bytes, only ${Math.max(0, len - pos - hdr)} present: the file is incomplete`);
    const stored = (data[pos] | (data[pos + 1] << 8) | (data[pos + 2] << 16) | (data[pos + 3] << 24)) >>> 0;
    // The CRC covers the type byte, the log number of recyclable records, and the payload.
    const actual = maskCrc(crc32c(data, 0, pos + 6, pos + hdr + length));
    if (stored !== actual) {
      fail(pos, `checksum mismatch in record header (stored ${stored.toString(16)}, computed ${actual.toString(16)}): corrupt file`);
    }
    if (recyclable && opts.logNumber !== undefined) {
      const num = (data[pos + 7] | (data[pos + 8] << 8) | (data[pos + 9] << 16) | (data[pos + 10] << 24)) >>> 0;
      if (num !== opts.logNumber % 0x100000000) break; // stale data of a recycled file
    }
    const payload = data.subarray(pos + hdr, pos + hdr + length);
    const recordAt = pos;
    pos += hdr + length;

    const kind = recyclable && type <= RecordType.RecyclableLast ? type - 4 : type;
    switch (kind) {
      case RecordType.Full:
        if (parts) fail(recordAt, `FULL record while a fragmented record that began at byte ${partsStart} was not finished (corrupt file)`);
        yield { offset: recordAt, data: payload };
        break;
      case RecordType.First:
        if (parts) fail(recordAt, `FIRST fragment while a fragmented record that began at byte ${partsStart} was not finished (corrupt file)`);
        parts = [payload];
        partsStart = recordAt;
        break;
      case RecordType.Middle:
      case RecordType.Last:
        if (!parts) fail(recordAt, `${FRAGMENT_NAMES[kind]} fragment without a FIRST fragment before it (corrupt file)`);
        parts!.push(payload);
        if (kind === RecordType.Last) {
          const whole = Buffer.concat(parts!);
          parts = null;
          yield { offset: partsStart, data: whole };
        }
        break;
      case RecordType.UserDefinedTimestampSize:
      case RecordType.RecyclableUserDefinedTimestampSize:
        break; // metadata for user-defined timestamps: not a data record
      case RecordType.SetCompressionType:
        fail(recordAt, "compressed WAL (record type 9) is not supported: disable wal_compression");
        break;
      default:
        fail(recordAt, `unknown record type ${type} (corrupt file)`);
    }
  }
  if (parts) fail(partsStart, "truncated record: the file ends inside a fragmented record (no LAST fragment): the file is incomplete");
}

export interface LogWriterOptions {
  /** Write recyclable records (11-byte header) carrying this log number. */
  recycleLogNumber?: number;
  /** Byte offset already written to the file (to append to an existing log). Default 0. */
  offset?: number;
}

/**
 * Encodes logical records into log-format bytes, fragmenting across 32 KiB blocks exactly as
 * RocksDB's writer does. Each `add` returns the bytes to append for that record.
 */
export class LogWriter {
  private blockOffset: number;
  private readonly recycle: number | undefined;
  private readonly hdr: number;
  /** Total bytes produced, including the starting offset. */
  offset: number;

  constructor(opts: LogWriterOptions = {}) {
    this.offset = opts.offset ?? 0;
    this.blockOffset = this.offset % BLOCK_SIZE;
    this.recycle = opts.recycleLogNumber;
    this.hdr = this.recycle === undefined ? HEADER_SIZE : RECYCLABLE_HEADER_SIZE;
  }

  /** The bytes of one logical record (any length, including 0). */
  add(record: Uint8Array): Buffer {
    const hdr = this.hdr;
    // Worst case: padding + one header per block touched.
    const out = Buffer.alloc(record.length + (Math.ceil(record.length / (BLOCK_SIZE - hdr)) + 2) * (hdr + hdr));
    let w = 0;
    let left = record.length;
    let src = 0;
    let begin = true;
    do {
      const leftover = BLOCK_SIZE - this.blockOffset;
      if (leftover < hdr) {
        w += leftover; // zeros (Buffer.alloc)
        this.blockOffset = 0;
      }
      const avail = BLOCK_SIZE - this.blockOffset - hdr;
      const frag = Math.min(left, avail);
      const end = frag === left;
      let type: number = begin && end ? RecordType.Full : begin ? RecordType.First : end ? RecordType.Last : RecordType.Middle;
      if (this.recycle !== undefined) type += 4;
      out[w + 4] = frag & 0xff;
      out[w + 5] = frag >>> 8;
      out[w + 6] = type;
      if (this.recycle !== undefined) out.writeUInt32LE(this.recycle % 0x100000000, w + 7);
      out.set(record.subarray(src, src + frag), w + hdr);
      out.writeUInt32LE(maskCrc(crc32c(out, 0, w + 6, w + hdr + frag)), w);
      w += hdr + frag;
      this.blockOffset += hdr + frag;
      src += frag;
      left -= frag;
      begin = false;
    } while (left > 0);
    this.offset += w;
    return out.subarray(0, w);
  }
}

/** Encodes a whole log file from its logical records. */
export function writeLogRecords(records: Iterable<Uint8Array>, opts: LogWriterOptions = {}): Buffer {
  const w = new LogWriter(opts);
  const chunks: Buffer[] = [];
  for (const r of records) chunks.push(w.add(r));
  return Buffer.concat(chunks);
}
