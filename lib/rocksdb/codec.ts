/**
 * Byte-level helpers shared by the RocksDB format readers: varints, length-prefixed slices,
 * and the error type that names the file and byte offset of a problem.
 */

/** A malformed or unreadable RocksDB file. `offset` is the byte offset in `file` (null: whole file). */
export class RocksFormatError extends Error {
  readonly file: string;
  readonly offset: number | null;
  constructor(file: string, offset: number | null, detail: string) {
    super(`${file}${offset === null ? "" : ` at byte ${offset}`}: ${detail}`);
    this.name = "RocksFormatError";
    this.file = file;
    this.offset = offset;
  }
}

/** Thrown by Cursor when the data ends early or is malformed; the caller adds file and offset. */
export class DecodeError extends Error {
  readonly pos: number;
  constructor(pos: number, message: string) {
    super(message);
    this.name = "DecodeError";
    this.pos = pos;
  }
}

/** A read position over a byte array, with RocksDB's varint and slice encodings. */
export class Cursor {
  pos: number;
  constructor(
    readonly data: Uint8Array,
    pos = 0,
    readonly end = data.length,
  ) {
    this.pos = pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Unsigned LEB128 varint of up to `maxBytes` bytes (5 for varint32, 10 for varint64). */
  varint(what: string, maxBytes = 10): number {
    const start = this.pos;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < maxBytes; i++) {
      if (this.pos >= this.end) throw new DecodeError(start, `truncated varint (${what})`);
      const b = this.data[this.pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (maxBytes === 5 && result > 0xffffffff) throw new DecodeError(start, `varint32 too large (${what})`);
        return result;
      }
      mul *= 128;
    }
    throw new DecodeError(start, `varint longer than ${maxBytes} bytes (${what})`);
  }

  varint32(what: string): number {
    return this.varint(what, 5);
  }

  varint64(what: string): number {
    return this.varint(what, 10);
  }

  bytes(n: number, what: string): Uint8Array {
    if (n > this.remaining) throw new DecodeError(this.pos, `truncated ${what}: needs ${n} bytes, ${this.remaining} left`);
    const out = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** varint32 length followed by that many bytes. */
  slice(what: string): Uint8Array {
    const n = this.varint32(`${what} length`);
    return this.bytes(n, what);
  }

  u32le(what: string): number {
    const b = this.bytes(4, what);
    return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
  }

  u64le(what: string): number {
    const lo = this.u32le(what);
    const hi = this.u32le(what);
    return hi * 0x100000000 + lo;
  }
}

/** Appends RocksDB encodings to a growing list of chunks. */
export class Builder {
  private chunks: Uint8Array[] = [];
  private scratch: number[] = [];
  length = 0;

  private flushScratch(): void {
    if (this.scratch.length) {
      this.chunks.push(Uint8Array.from(this.scratch));
      this.scratch = [];
    }
  }

  byte(b: number): this {
    this.scratch.push(b & 0xff);
    this.length++;
    return this;
  }

  /** Unsigned varint of a non-negative safe integer. */
  varint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint value must be a non-negative safe integer, got ${v}`);
    while (v >= 0x80) {
      this.byte((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    return this.byte(v);
  }

  raw(b: Uint8Array): this {
    this.flushScratch();
    this.chunks.push(b);
    this.length += b.length;
    return this;
  }

  /** varint length prefix then the bytes. */
  slice(b: Uint8Array | string): this {
    const bytes = typeof b === "string" ? Buffer.from(b) : b;
    return this.varint(bytes.length).raw(bytes);
  }

  u32le(v: number): this {
    return this.byte(v).byte(v >>> 8).byte(v >>> 16).byte(v >>> 24);
  }

  u64le(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`u64 value must be a non-negative safe integer, got ${v}`);
    this.u32le(v % 0x100000000);
    return this.u32le(Math.floor(v / 0x100000000));
  }

  finish(): Buffer {
    this.flushScratch();
    return Buffer.concat(this.chunks, this.length);
  }
}
