/**
 * Request/reply helpers over any framed byte stream (lib/net's Conn satisfies `Stream`).
 */
import { encodeCommand, type Arg } from "./encoder.ts";
import { RespDecoder, RespError, SimpleString, type RespValue } from "./decoder.ts";

export interface Stream {
  write(data: Uint8Array | string): Promise<void>;
  read<T>(parser: { feed(chunk: Uint8Array): { used: number; done: boolean; value?: T } }): Promise<T>;
}

/** Send one command and read one RESP reply. */
export async function call(s: Stream, args: Arg[], decoder: RespDecoder = new RespDecoder()): Promise<RespValue> {
  await s.write(encodeCommand(args));
  return s.read(decoder);
}

/** A reply as text: simple/bulk strings and integers; errors as "-MSG"; null as "(nil)". */
export function replyText(v: RespValue): string {
  if (v === null) return "(nil)";
  if (v instanceof SimpleString) return v.value;
  if (v instanceof RespError) return `-${v.message}`;
  if (Buffer.isBuffer(v)) return v.toString("utf8");
  if (typeof v === "number") return String(v);
  return v.map(replyText).join("\n");
}

/** True for the simple string +OK. */
export function isOk(v: RespValue): boolean {
  return v instanceof SimpleString && v.value === "OK";
}
