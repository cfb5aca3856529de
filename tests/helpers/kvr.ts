/**
 * Test helpers: run the compiled kvr binary as a child process and read its --json events.
 * KVR_BIN overrides the binary (default dist/kvr, built by `npm test`).
 */
import { afterEach } from "bun:test";
import { resolve } from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { readNdjson } from "../../lib/ui/ndjson.ts";

export const KVR_BIN = process.env.KVR_BIN ?? resolve(import.meta.dir, "../../dist/kvr");

export interface KvrEvent {
  event: string;
  [k: string]: unknown;
}

export interface KvrProcess {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  /** Every --json event seen on stdout so far. */
  events: KvrEvent[];
  /** Everything seen on stderr so far. */
  stderr(): string;
  /** Wait for the first event matching `pred` (including ones already seen). */
  waitEvent(pred: (e: KvrEvent) => boolean, timeoutMs?: number): Promise<KvrEvent>;
  /** Send a signal and wait for exit (SIGKILL after `graceMs`). Returns the exit code. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
  exited: Promise<number>;
}

/**
 * Spawn `kvr <args> --json`, collecting NDJSON events from stdout. `prefix` runs it under another
 * program that execs it in place (strace -D: see helpers/strace.ts), so signals still reach kvr.
 */
export function spawnKvr(args: string[], env: Record<string, string> = {}, prefix: string[] = []): KvrProcess {
  const proc = Bun.spawn([...prefix, KVR_BIN, ...args, "--json"], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1", ...env },
  });
  const events: KvrEvent[] = [];
  let err = "";
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  readNdjson(proc.stdout, (v, raw) => events.push((v as KvrEvent | null) ?? { event: "_text", text: raw }), notify).finally(notify);
  (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stderr) err += dec.decode(chunk, { stream: true });
  })();
  const exited = proc.exited;
  exited.then(notify);
  return {
    proc,
    events,
    stderr: () => err,
    exited,
    waitEvent(pred, timeoutMs = 10_000) {
      return new Promise((resolvePromise, reject) => {
        const check = () => {
          const e = events.find(pred);
          if (e) {
            cleanup();
            resolvePromise(e);
          } else if (proc.exitCode !== null || proc.signalCode !== null) {
            cleanup();
            reject(new Error(`kvr exited (${proc.exitCode ?? proc.signalCode}) before the expected event; stderr:\n${err}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no matching event within ${timeoutMs} ms; events: ${JSON.stringify(events).slice(-2000)}\nstderr:\n${err.slice(-2000)}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal = "SIGTERM", graceMs = 3000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

/** Run a program to completion (SIGKILL after `timeoutMs`, default 60 s); returns exit code, stdout, stderr. */
export async function runProcess(argv: string[], opts: { env?: Record<string, string | undefined>; stdin?: string; timeoutMs?: number } = {}) {
  const proc = Bun.spawn(argv, {
    stdin: opts.stdin !== undefined ? new TextEncoder().encode(opts.stdin) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: opts.env ?? process.env,
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Run kvr to completion (under `prefix`, a program that execs it: setpriv, strace); returns exit code, stdout, stderr. */
export function runKvr(args: string[], opts: { env?: Record<string, string>; stdin?: string; timeoutMs?: number; prefix?: string[] } = {}) {
  const env = { ...process.env, NO_COLOR: "1", ...(opts.env ?? {}) };
  return runProcess([...(opts.prefix ?? []), KVR_BIN, ...args], { env, stdin: opts.stdin, timeoutMs: opts.timeoutMs });
}

/** The JSON objects of a --json run's stdout, one per non-empty line. */
export function jsonLines(stdout: string): Array<Record<string, any>> {
  return stdout
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/** A fresh temp directory, removed by the returned cleanup. */
export function tempDir(prefix = "kvr-test-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(resolve(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * Per-file cleanup for tests: `defer(fn)` runs fn after the current test (newest first, on every
 * path); `temp()` is a fresh temp directory removed the same way.
 */
export function cleanupAfterEach(): { defer: (fn: () => unknown) => void; temp: (prefix?: string) => string } {
  const fns: Array<() => unknown> = [];
  afterEach(async () => {
    for (const fn of fns.splice(0).reverse()) await fn();
  });
  return {
    defer: (fn) => void fns.push(fn),
    temp: (prefix) => {
      const d = tempDir(prefix);
      fns.push(d.cleanup);
      return d.path;
    },
  };
}

/**
 * Cleanup scoped to one call, for tests that run concurrently (an afterEach would run one test's
 * cleanup while another is still going): `defer` and `temp` as in cleanupAfterEach, undone when
 * `fn` settles, newest first.
 */
export async function withCleanup<T>(fn: (s: { defer: (fn: () => unknown) => void; temp: (prefix?: string) => string }) => Promise<T>): Promise<T> {
  const fns: Array<() => unknown> = [];
  try {
    return await fn({
      defer: (f) => void fns.push(f),
      temp: (prefix) => {
        const d = tempDir(prefix);
        fns.push(d.cleanup);
        return d.path;
      },
    });
  } finally {
    for (const f of fns.reverse()) await f();
  }
}
