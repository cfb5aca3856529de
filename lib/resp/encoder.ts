/**
 * RESP2 encoder: commands (arrays of bulk strings) and every reply type.
 */
export type Arg = string | number | Uint8Array;

const CRLF = "\r\n";

function argBuf(a: Arg): Buffer {
  if (typeof a === "string") return Buffer.from(a, "utf8");
  if (typeof a === "number") return Buffer.from(String(a), "latin1");
  return Buffer.isBuffer(a) ? a : Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** `*N\r\n$len\r\narg\r\n...` */
export function encodeCommand(args: Arg[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}${CRLF}`, "latin1")];
  for (const a of args) {
    const b = argBuf(a);
    parts.push(Buffer.from(`$${b.length}${CRLF}`, "latin1"), b, Buffer.from(CRLF, "latin1"));
  }
  return Buffer.concat(parts);
}

/** `+text\r\n` (text must not contain CR or LF). */
export function simple(text: string): Buffer {
  return Buffer.from(`+${text.replace(/[\r\n]/g, " ")}${CRLF}`, "utf8");
}

/** `-<message>\r\n`; the message carries its own prefix word, e.g. "ERR wrong number of arguments". */
export function error(message: string): Buffer {
  return Buffer.from(`-${message.replace(/[\r\n]/g, " ")}${CRLF}`, "utf8");
}

/** `:n\r\n` */
export function integer(n: number | bigint): Buffer {
  return Buffer.from(`:${n}${CRLF}`, "latin1");
}

/** `$len\r\nbytes\r\n`, or the null bulk `$-1\r\n`. */
export function bulk(v: Arg | null): Buffer {
  if (v === null) return Buffer.from(`$-1${CRLF}`, "latin1");
  const b = argBuf(v);
  return Buffer.concat([Buffer.from(`$${b.length}${CRLF}`, "latin1"), b, Buffer.from(CRLF, "latin1")]);
}

/** `*N\r\n` followed by already-encoded items; null → the null array `*-1\r\n`. */
export function array(items: Buffer[] | null): Buffer {
  if (items === null) return Buffer.from(`*-1${CRLF}`, "latin1");
  return Buffer.concat([Buffer.from(`*${items.length}${CRLF}`, "latin1"), ...items]);
}

/** A bare line, as the replication replies `_db_name` and `_fetch_meta` send (no type byte). */
export function bareLine(text: string): Buffer {
  return Buffer.from(`${text}${CRLF}`, "utf8");
}

/** The shared `+OK\r\n`. */
export const OK = Buffer.from(`+OK${CRLF}`, "latin1");
