/** Shared helpers for the rocksdb format tests: fixture path, temp dirs, and the real `ldb`. */
import { cpSync, mkdtempSync, rmSync, chmodSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RocksFormatError } from "../../lib/rocksdb/codec.ts";
import { FIXTURE } from "../helpers/fixture.ts";

/** The real Kvrocks checkpoint (read-only): copy it before changing anything. */
export { FIXTURE };

const made: string[] = [];

/** A fresh temp dir, removed by cleanupTemp(). */
export function tempDir(prefix = "kvr-rocksdb-"): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

/** Removes every dir tempDir() made. */
export function cleanupTemp(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** A writable copy of the fixture checkpoint. */
export function fixtureCopy(): string {
  const d = join(tempDir(), "cp");
  cpSync(FIXTURE, d, { recursive: true });
  chmodSync(d, 0o755);
  for (const n of readdirSync(d)) chmodSync(join(d, n), 0o644);
  return d;
}

/** Path of Debian's RocksDB `ldb`, or null when rocksdb-tools is not installed. */
export const LDB = Bun.which("ldb");

/** Runs ldb; throws with its output when it fails. */
export function ldb(args: string[], stdin?: string): string {
  const r = Bun.spawnSync([LDB!, ...args], { stdin: stdin === undefined ? "ignore" : Buffer.from(stdin), stdout: "pipe", stderr: "pipe" });
  const out = Buffer.from(r.stdout).toString("latin1");
  if (r.exitCode !== 0) throw new Error(`ldb ${args.join(" ")} failed (${r.exitCode}): ${out.slice(-500)} ${Buffer.from(r.stderr).toString().slice(-500)}`);
  return out;
}

/** The last_sequence that `ldb manifest_dump` reports for a MANIFEST file. */
export function ldbManifestSequence(path: string): number {
  const out = ldb(["manifest_dump", `--path=${path}`]);
  const m = /last_sequence (\d+)/.exec(out);
  if (!m) throw new Error(`no last_sequence in ldb manifest_dump output: ${out.slice(-300)}`);
  return Number(m[1]);
}

/** The RocksFormatError `fn` throws (any other outcome fails the test). */
export function errorOf(fn: () => unknown): RocksFormatError {
  try {
    fn();
  } catch (e) {
    if (e instanceof RocksFormatError) return e;
    throw e;
  }
  throw new Error("expected a RocksFormatError");
}

/** The RocksFormatError `p` rejects with (any other outcome fails the test). */
export async function asyncErrorOf(p: Promise<unknown>): Promise<RocksFormatError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RocksFormatError) return e;
    throw e;
  }
  throw new Error("expected a RocksFormatError");
}
