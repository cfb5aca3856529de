/**
 * Checks on what a master sends during a full sync: file names from `_fetch_meta` and size
 * lines from `_fetch_file`. A master is untrusted input: a name that could leave the target
 * directory, or a size that is not a plain decimal, fails the full sync.
 */
import { unsafeFileName } from "../rocksdb/names.ts";
import { backoffMs } from "../ui/time.ts";

/** The replica's own state file in --dir (lib/replica/streamlog.ts). */
export const STREAM_LOG = "kvr-stream.log";

/** Why `name` may not be written into the target directory, or null when it may. */
export function badFileName(name: string): string | null {
  const why = unsafeFileName(name);
  if (why) return why;
  if (name.endsWith(".tmp")) return `the file name '${name}' (names ending in .tmp are kvr's partial files)`;
  return null;
}

/** An error raised by the replica itself (not the network), with a stable code. */
export class SyncError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "SyncError";
    this.code = code;
  }
}

/**
 * Codes of failures a retry cannot fix: the master refused our password (AUTH), needs one we did
 * not give (NOAUTH), or serves another database (DB_NAME). A run that meets one ends at once.
 */
export const UNRECOVERABLE: ReadonlySet<string> = new Set(["AUTH", "NOAUTH", "DB_NAME"]);

/** The master's `-` line (without the '-') refusing `what`: NOAUTH gets its own code and the fix. */
export function masterRefusal(what: string, text: string): SyncError {
  if (/^NOAUTH\b/.test(text)) return new SyncError("NOAUTH", `master refused ${what}: ${text} (the master needs a password: set --masterauth or KVR_MASTERAUTH)`);
  return new SyncError("MASTER_ERROR", `master refused ${what}: ${text}`);
}

/**
 * Parse the `_fetch_meta` reply line (already decoded as UTF-8) into file names. A leading '-' is
 * the master's refusal. Every name is checked; duplicates are refused.
 */
export function parseMetaLine(line: string): string[] {
  if (line.startsWith("-")) throw masterRefusal("_fetch_meta", line.slice(1));
  if (line.length === 0) throw new SyncError("PROTOCOL", "master sent an empty file list for _fetch_meta");
  const names = line.split(",");
  const seen = new Set<string>();
  for (const n of names) {
    const why = badFileName(n);
    if (why) throw new SyncError("BAD_NAME", `master sent ${why} in the _fetch_meta list; refusing the full sync (nothing is written outside the target directory)`);
    if (seen.has(n)) throw new SyncError("PROTOCOL", `master listed '${n}' twice in the _fetch_meta list`);
    seen.add(n);
  }
  return names;
}

/** Parse a `_fetch_file` size line for `name`; a '-' line is the master's refusal. */
export function parseSizeLine(line: string, name: string, maxFileSize: number): number {
  if (line.startsWith("-")) throw masterRefusal(`to send ${name}`, line.slice(1));
  if (!/^\d{1,20}$/.test(line)) {
    throw new SyncError("PROTOCOL", `master sent a size line for ${name} that is not a decimal: ${JSON.stringify(line.slice(0, 40))}`);
  }
  const size = Number(line);
  if (!Number.isSafeInteger(size) || size > maxFileSize) {
    throw new SyncError("PROTOCOL", `master announced ${line} bytes for ${name}, above --max-file-size (${maxFileSize})`);
  }
  return size;
}

/** Round-robin split: worker i takes files i, i+W, i+2W, … (Kvrocks' order). */
export function splitRoundRobin<T>(items: T[], workers: number): T[][] {
  const out: T[][] = Array.from({ length: workers }, () => []);
  items.forEach((it, i) => out[i % workers].push(it));
  return out;
}

/** Number of fetch workers: --workers, else 1 for ≤ 20 files and 4 above (Kvrocks). */
export function workerCount(files: number, flag: number | null): number {
  const w = flag ?? (files <= 20 ? 1 : 4);
  return Math.max(1, Math.min(w, Math.max(files, 1)));
}

/** Retry delay: exponential from `baseMs`, with jitter (50–100 %), capped at 30 s. */
export function retryDelayMs(baseMs: number, failures: number, random = Math.random): number {
  return backoffMs(baseMs, failures, { capMs: 30_000, jitter: true, random });
}

/**
 * Re-throw `e` (a NetError, SyncError or file-system error) as a SyncError that keeps its code
 * and says where it happened: "fetch worker 2 (000012.sst at byte 1048576): no data from …".
 */
export function located(e: unknown, where: string): SyncError {
  const err = e as { code?: unknown; message?: unknown; where?: unknown };
  if (e instanceof SyncError && (e as SyncError & { located?: boolean }).located) return e;
  const code = typeof err?.code === "string" ? err.code : "IO";
  const msg = typeof err?.message === "string" ? err.message : String(e);
  const out = new SyncError(code, `${where}: ${msg}`);
  (out as SyncError & { located?: boolean }).located = true;
  return out;
}
