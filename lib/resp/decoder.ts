/**
 * Incremental RESP2 decoder: fed chunk by chunk, keeps its partial state between chunks (no
 * re-parsing, no per-byte string building), and stops after each complete top-level value so
 * that the bytes after it can be read in another mode (bare line, raw bytes). Limits turn an
 * oversized or malformed input into a protocol error, never a hang or unbounded memory.
 * Knows nothing of sockets: lib/net drives it through the FrameParser interface.
 */

export class RespError {
  /** The whole error text after '-', e.g. "ERR unknown command" or "NOAUTH Authentication required.". */
  constructor(readonly message: string) {}
  /** The prefix word ("ERR", "NOAUTH", "LOADING", ...). */
  get prefix(): string {
    const sp = this.message.indexOf(" ");
    return sp < 0 ? this.message : this.message.slice(0, sp);
  }
  toString(): string {
    return this.message;
  }
}

/** A simple string reply (+OK). Distinct from bulk strings, which decode to Buffer. */
export class SimpleString {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export type RespValue = SimpleString | RespError | number | Buffer | null | RespValue[];

export interface DecoderLimits {
  /** Largest bulk string accepted, in bytes (default 512 MiB, as Redis' proto-max-bulk-len). */
  maxBulk?: number;
  /** Largest array accepted (default 1,048,576). */
  maxArray?: number;
  /** Longest line (type line, inline command) in bytes (default 64 KiB). */
  maxLine?: number;
  /** Deepest nesting of arrays (default 8). */
  maxDepth?: number;
  /** Accept inline commands ("PING\r\n", telnet style): server side only. */
  inline?: boolean;
  /**
   * Largest top-level value in bytes, every line and bulk of it counted with its framing (a
   * server's cap on one request), checked at each header before its bytes are buffered. A
   * function is read at each header: a server returns a lower cap until the client has
   * authenticated. Default: no cap beyond the others.
   */
  maxTotal?: number | (() => number);
}

/**
 * Largest request a server takes from a client that has not authenticated: an AUTH with a long
 * password fits many times over (Redis allows 16 KiB per bulk before AUTH).
 */
export const MAX_UNAUTHENTICATED_BYTES = 64 * 1024;

const CR = 13;
const LF = 10;

/** Malformed or oversized RESP input. `code` matches lib/net's PROTOCOL code. */
export class RespProtocolError extends Error {
  readonly code = "PROTOCOL";
  constructor(message: string) {
    super(message);
    this.name = "RespProtocolError";
  }
}

function perr(msg: string): RespProtocolError {
  return new RespProtocolError(`Protocol error: ${msg}`);
}

function parseInt64(line: Buffer, from: number): number {
  const s = line.toString("latin1", from);
  if (!/^-?\d{1,18}$/.test(s)) throw perr(`invalid integer '${s.slice(0, 32)}'`);
  return Number(s);
}

/** One decoder per stream. `feed` implements lib/net's FrameParser<RespValue>. */
export class RespDecoder {
  private readonly maxBulk: number;
  private readonly maxArray: number;
  private readonly maxLine: number;
  private readonly maxDepth: number;
  private readonly inline: boolean;
  private readonly maxTotal: number | (() => number);
  /** Bytes of the current top-level value announced so far (lines, and bulks at their header). */
  private total = 0;
  private stack: { items: RespValue[]; remaining: number }[] = [];
  private lineParts: Buffer[] = [];
  private lineLen = 0;
  private bulkLen = -1;
  private bulkParts: Buffer[] = [];
  private bulkGot = 0;
  private out: RespValue = null;

  constructor(limits: DecoderLimits = {}) {
    this.maxBulk = limits.maxBulk ?? 512 * 1024 * 1024;
    this.maxArray = limits.maxArray ?? 1024 * 1024;
    this.maxLine = limits.maxLine ?? 64 * 1024;
    this.maxDepth = limits.maxDepth ?? 8;
    this.inline = limits.inline ?? false;
    this.maxTotal = limits.maxTotal ?? Infinity;
  }

  /** True when a value is partly decoded. */
  get busy(): boolean {
    return this.stack.length > 0 || this.lineLen > 0 || this.bulkLen >= 0;
  }

  /** Consume from `chunk` up to the end of one complete top-level value. */
  feed(chunk: Uint8Array): { used: number; done: boolean; value?: RespValue } {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let pos = 0;
    while (pos < buf.length) {
      if (this.bulkLen >= 0) {
        const want = this.bulkLen + 2 - this.bulkGot;
        const n = Math.min(want, buf.length - pos);
        this.bulkParts.push(buf.subarray(pos, pos + n));
        this.bulkGot += n;
        pos += n;
        if (this.bulkGot < this.bulkLen + 2) continue;
        const all = this.bulkParts.length === 1 ? this.bulkParts[0] : Buffer.concat(this.bulkParts, this.bulkGot);
        if (all[this.bulkLen] !== CR || all[this.bulkLen + 1] !== LF) throw perr("bulk string not terminated by CRLF");
        const value = all.subarray(0, this.bulkLen);
        this.bulkLen = -1;
        this.bulkParts = [];
        this.bulkGot = 0;
        if (this.emit(value)) return { used: pos, done: true, value: this.take() };
        continue;
      }
      const nl = buf.indexOf(LF, pos);
      if (nl < 0) {
        this.lineLen += buf.length - pos;
        if (this.lineLen > this.maxLine) throw perr(`line longer than ${this.maxLine} bytes`);
        this.lineParts.push(buf.subarray(pos));
        pos = buf.length;
        break;
      }
      let line: Buffer;
      if (this.lineParts.length) {
        this.lineParts.push(buf.subarray(pos, nl + 1));
        line = Buffer.concat(this.lineParts);
        this.lineParts = [];
        this.lineLen = 0;
      } else line = buf.subarray(pos, nl + 1);
      pos = nl + 1;
      if (line.length - 1 > this.maxLine) throw perr(`line longer than ${this.maxLine} bytes`);
      if (this.line(line)) return { used: pos, done: true, value: this.take() };
    }
    return { used: pos, done: false };
  }

  private take(): RespValue {
    const v = this.out;
    this.out = null;
    this.total = 0;
    return v;
  }

  /** Count `n` more bytes of the current value against maxTotal. */
  private charge(n: number): void {
    this.total += n;
    const max = typeof this.maxTotal === "number" ? this.maxTotal : this.maxTotal();
    if (this.total > max) throw perr(`request larger than ${max} bytes`);
  }

  /** Handle one line including its LF; true when a top-level value completed. */
  private line(raw: Buffer): boolean {
    this.charge(raw.length);
    const hasCR = raw.length >= 2 && raw[raw.length - 2] === CR;
    const line = raw.subarray(0, raw.length - (hasCR ? 2 : 1));
    const t = line[0];
    const typed = t === 43 || t === 45 || t === 58 || t === 36 || t === 42; // + - : $ *
    if (!typed || !hasCR) {
      if (this.inline && this.stack.length === 0) {
        const args = splitInline(line);
        if (args.length === 0) {
          this.total = 0;
          return false; // empty line: ignored, as Redis does
        }
        this.out = args;
        return true;
      }
      if (!typed) throw perr(`expected '$', '*', '+', '-' or ':', got ${JSON.stringify(line.toString("latin1", 0, 16))}`);
      throw perr("line not terminated by CRLF");
    }
    switch (t) {
      case 43:
        return this.emit(new SimpleString(line.toString("utf8", 1)));
      case 45:
        return this.emit(new RespError(line.toString("utf8", 1)));
      case 58:
        return this.emit(parseInt64(line, 1));
      case 36: {
        const n = parseInt64(line, 1);
        if (n === -1) return this.emit(null);
        if (n < 0) throw perr(`invalid bulk length ${n}`);
        if (n > this.maxBulk) throw perr(`bulk length ${n} above the limit of ${this.maxBulk}`);
        this.charge(n + 2);
        this.bulkLen = n;
        this.bulkGot = 0;
        return false;
      }
      default: {
        const n = parseInt64(line, 1);
        if (n === -1) return this.emit(null);
        if (n < 0) throw perr(`invalid multibulk length ${n}`);
        if (n > this.maxArray) throw perr(`array length ${n} above the limit of ${this.maxArray}`);
        if (n === 0) return this.emit([]);
        if (this.stack.length >= this.maxDepth) throw perr(`arrays nested deeper than ${this.maxDepth}`);
        this.stack.push({ items: [], remaining: n });
        return false;
      }
    }
  }

  private emit(v: RespValue): boolean {
    for (;;) {
      const top = this.stack[this.stack.length - 1];
      if (!top) {
        this.out = v;
        return true;
      }
      top.items.push(v);
      if (--top.remaining > 0) return false;
      this.stack.pop();
      v = top.items;
    }
  }
}

/** Split an inline command like Redis: spaces/tabs separate, double and single quotes group. */
export function splitInline(line: Buffer): Buffer[] {
  const s = line.toString("utf8");
  const out: Buffer[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && (s[i] === " " || s[i] === "\t")) i++;
    if (i >= s.length) break;
    let cur = "";
    if (s[i] === '"' || s[i] === "'") {
      const q = s[i++];
      while (i < s.length && s[i] !== q) {
        if (q === '"' && s[i] === "\\" && i + 1 < s.length) {
          const n = s[++i];
          cur += n === "n" ? "\n" : n === "r" ? "\r" : n === "t" ? "\t" : n;
        } else cur += s[i];
        i++;
      }
      if (i >= s.length) throw perr("unbalanced quotes in request");
      i++;
    } else {
      while (i < s.length && s[i] !== " " && s[i] !== "\t") cur += s[i++];
    }
    out.push(Buffer.from(cur, "utf8"));
  }
  return out;
}
