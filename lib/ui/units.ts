/**
 * Parsing of command-line sizes, durations and addresses. Each parser throws UsageError
 * naming the flag, so the CLI prints one line and exits 2.
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** "64MiB", "1.5GB", "4096" (bare = bytes) → bytes. */
export function parseSize(flag: string, v: unknown): number {
  const s = String(v).trim();
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(s);
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UsageError(`--${flag}: '${s}' is not a size (examples: 4096, 64KiB, 64MiB, 1.5GB)`);
  return Math.round(Number(m[1]) * unit);
}

const DURATION_UNITS: Record<string, number> = { "": 1, ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 };

/** "3s", "250ms", "1.5s", "2m", "500" (bare = milliseconds) → milliseconds. */
export function parseDuration(flag: string, v: unknown): number {
  const s = String(v).trim();
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(s);
  const unit = m ? DURATION_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UsageError(`--${flag}: '${s}' is not a duration (examples: 3s, 250ms, 1.5s, 2m; bare numbers are ms)`);
  return Math.round(Number(m[1]) * unit);
}

/** A duration above 0 (see parseDuration): a deadline or a period. */
export function parsePositiveDuration(flag: string, v: unknown): number {
  const ms = parseDuration(flag, v);
  if (ms <= 0) throw new UsageError(`--${flag}: must be above 0 (example: 3s)`);
  return ms;
}

/** A non-negative integer, within [min, max]. */
export function parseIntFlag(flag: string, v: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const s = String(v).trim();
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) {
    throw new UsageError(`--${flag}: '${s}' is not a whole number between ${min} and ${max}`);
  }
  return Number(s);
}

/** A TCP port 0..65535 (0 = pick a free one). */
export function parsePort(flag: string, v: unknown): number {
  return parseIntFlag(flag, v, 0, 65535);
}

/** "host:port" or "[v6]:port" → { host, port }. */
export function parseHostPort(flag: string, v: unknown): { host: string; port: number } {
  const s = String(v).trim();
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:\s]+):(\d+)$/.exec(s);
  if (!m) throw new UsageError(`--${flag}: '${s}' is not host:port (example: 127.0.0.1:6666)`);
  if (Number(m[2]) < 1 || Number(m[2]) > 65535) throw new UsageError(`--${flag}: '${s}': port ${m[2]} is out of range (1–65535)`);
  return { host: m[1], port: Number(m[2]) };
}

const HOST_LABEL = "(?!-)[A-Za-z0-9_-]{1,63}(?<!-)";
const HOST_NAME_RE = new RegExp(`^${HOST_LABEL}(\\.${HOST_LABEL})*\\.?$`);

/**
 * True when `host` is a DNS host name (letters, digits, '-', '_' in dot-separated labels of at
 * most 63 bytes, 253 in all), an IPv4 address, or an IPv6 address: nothing else (no spaces, no
 * CR or LF) may name a master.
 */
export function isHostOrAddress(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  if (!host.includes(":")) return HOST_NAME_RE.test(host);
  if (!/^[0-9A-Fa-f:.]+$/.test(host)) return false;
  // The URL parser is a full IPv6 address parser.
  return URL.canParse(`http://[${host}]/`);
}

/** The value of a flag that may be given once, as text (undefined when absent); UsageError when repeated. */
export function single(flag: string, v: unknown): string | undefined {
  if (Array.isArray(v)) throw new UsageError(`--${flag}: give it once`);
  return v === undefined ? undefined : String(v);
}

/** Repeated flags arrive as arrays from the parser; single ones as a value. */
export function list(v: unknown): string[] {
  if (v === undefined || v === null || v === false) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

/** Format bytes for humans: 1.5 MiB. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2)} ${units[i]}`;
}

/** Format milliseconds for humans: 850 ms, 3.20 s. */
export function formatMs(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(ms < 10 ? 1 : 0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** "1 master", "2 masters": a count with its noun, plural by adding s. */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** The one-line error for a listening address another process holds (EADDRINUSE). */
export function portInUse(what: string, addr: string): Error {
  return new Error(`cannot listen on ${what} ${addr}: the port is already in use; choose another --port (--port 0 takes a free one)`);
}
