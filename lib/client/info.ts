/** Reading a node's replies: INFO as key → value, a master's `slaveN:` lines, decimal fields, CLUSTERX VERSION. */
import { SimpleString, type RespValue } from "../resp/index.ts";

/** Parse an INFO reply into key → value (section headers and blank lines skipped). */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const i = line.indexOf(":");
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** One replica as its master lists it: `slave0:ip=127.0.0.1,port=7113,offset=500,lag=0`. */
export interface SlaveLine {
  /** The N of `slaveN`. */
  index: number;
  ip: string;
  port: number;
  offset: number | null;
  lag: number | null;
}

/** The `slaveN:` lines of a parsed INFO replication, in N order; lines without ip or a valid port are skipped. */
export function slaveLines(info: Record<string, string>): SlaveLine[] {
  const out: SlaveLine[] = [];
  for (const [k, v] of Object.entries(info)) {
    const m = /^slave(\d+)$/.exec(k);
    if (!m) continue;
    const f: Record<string, string> = {};
    for (const part of v.split(",")) {
      const eq = part.indexOf("=");
      if (eq > 0) f[part.slice(0, eq)] = part.slice(eq + 1);
    }
    const port = intField(f.port);
    if (!f.ip || port === null || port < 1 || port > 65535) continue;
    out.push({ index: Number(m[1]), ip: f.ip, port, offset: intField(f.offset), lag: intField(f.lag) });
  }
  return out.sort((a, b) => a.index - b.index);
}

/** A whole decimal integer (optionally negative), or null for anything else (missing, empty, "abc", "1.5"). */
export function intField(v: string | undefined): number | null {
  if (v === undefined) return null;
  const s = v.trim();
  return /^-?\d{1,18}$/.test(s) ? Number(s) : null;
}

/**
 * A CLUSTERX VERSION reply as a number (Kvrocks answers a bulk string such as "-1"; a simple
 * string or an integer is read the same), or null when it is not a whole number.
 */
export function clusterVersion(reply: RespValue): number | null {
  if (typeof reply === "number") return Number.isSafeInteger(reply) ? reply : null;
  if (Buffer.isBuffer(reply)) return intField(reply.toString("utf8"));
  return reply instanceof SimpleString ? intField(reply.value) : null;
}
