/**
 * kvr child processes for the benchmarks: spawned with --json, every NDJSON line kept with the
 * time it arrived, tracked so they die with the run, their peak RSS sampled from /proc while
 * they run (see watchPeakRss) and their CPU time read after exit.
 */
import { readFileSync } from "node:fs";
import { connect, type Conn } from "../../lib/net/index.ts";
import { call, replyText, type RespValue } from "../../lib/resp/index.ts";
import { readNdjson } from "../../lib/ui/ndjson.ts";
import { spawnTracked, watchPeakRss } from "./harness.ts";

export interface Event {
  event?: string;
  /** performance.now() when the line arrived on our side of the pipe. */
  at: number;
  [k: string]: unknown;
}

export interface Child {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  /** Every stdout JSON line so far (events and the final result). */
  lines: Event[];
  stderr(): string;
  /** The first line matching `pred` (already seen or future). */
  wait(pred: (e: Event) => boolean, timeoutMs?: number): Promise<Event>;
  /** Wait for the first line matching `pred` that arrives after index `from`. */
  waitAfter(from: number, pred: (e: Event) => boolean, timeoutMs?: number): Promise<Event>;
  exited: Promise<number>;
  /** Resolves once stdout reached EOF and every line was parsed. */
  drained: Promise<void>;
  /** Signal, then SIGKILL after graceMs; resolves with the exit code. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
  /** Peak RSS in bytes so far (VmHWM, sampled every 20 ms; null before the first sample). */
  maxRss(): number | null;
}

/** Spawn `<bin> <args> --json`. */
export function spawnKvr(bin: string, args: string[], env: Record<string, string> = {}): Child {
  const proc = spawnTracked(() =>
    Bun.spawn([bin, ...args, "--json"], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1", ...env } }),
  );
  const peakRss = watchPeakRss(proc);
  const lines: Event[] = [];
  let err = "";
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  // Lines of one chunk are handled synchronously as it arrives: `at` is the chunk's arrival.
  const drained = readNdjson(proc.stdout, (v, raw) => lines.push(v ? { ...v, at: performance.now() } : { event: "_text", text: raw, at: performance.now() }), notify).finally(notify);
  (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stderr) err = (err + dec.decode(chunk, { stream: true })).slice(-20_000);
  })();
  proc.exited.then(notify);
  const waitAfter = (from: number, pred: (e: Event) => boolean, timeoutMs = 30_000) =>
    new Promise<Event>((resolve, reject) => {
      const check = () => {
        for (let i = from; i < lines.length; i++) {
          if (pred(lines[i])) {
            done();
            return resolve(lines[i]);
          }
        }
        if (proc.exitCode !== null || proc.signalCode !== null) {
          done();
          reject(new Error(`kvr ${args[0]} exited (${proc.exitCode ?? proc.signalCode}) before the expected event; stderr: ${err.slice(-600)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`kvr ${args[0]}: no expected event within ${timeoutMs} ms; stderr: ${err.slice(-600)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  return {
    proc,
    lines,
    stderr: () => err,
    wait: (pred, timeoutMs) => waitAfter(0, pred, timeoutMs),
    waitAfter,
    exited: proc.exited,
    drained,
    async stop(signal = "SIGTERM", graceMs = 3000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      const code = await proc.exited;
      clearTimeout(t);
      return code;
    },
    maxRss: peakRss,
  };
}

export interface Master {
  child: Child;
  port: number;
  /** User + system CPU the master used so far, ms (10 ms resolution; from /proc). */
  cpuMs(): number;
  stop(): Promise<void>;
}

/** User + system CPU of a running process so far, ms, from /proc/<pid>/stat (NaN when unreadable). */
export function processCpuMs(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are 14th and 15th.
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}
/** sysconf(_SC_CLK_TCK): 100 on every Linux build in use. */
const CLOCK_TICKS = 100;

/** `kvr master --port 0 <args>`, waiting until it listens. */
export async function startMaster(bin: string, args: string[]): Promise<Master> {
  const child = spawnKvr(bin, ["master", "--port", "0", "--log-level", "warn", ...args]);
  try {
    const ev = await child.wait((e) => e.event === "listening", 15_000);
    return { child, port: Number(ev.port), cpuMs: () => processCpuMs(child.proc.pid), stop: async () => void (await child.stop("SIGTERM", 2000)) };
  } catch (e) {
    await child.stop("SIGKILL");
    throw e;
  }
}

export interface Replica {
  child: Child;
  port: number;
  stop(): Promise<void>;
}

/** `kvr replica --port 0 <args>`, waiting for its admin port. */
export async function startReplica(bin: string, args: string[]): Promise<Replica> {
  const child = spawnKvr(bin, ["replica", "--port", "0", "--log-level", "warn", ...args]);
  try {
    const ev = await child.wait((e) => e.event === "listening", 15_000);
    return { child, port: Number(ev.port), stop: async () => void (await child.stop("SIGTERM", 3000)) };
  } catch (e) {
    await child.stop("SIGKILL");
    throw e;
  }
}

export interface OnceResult {
  ok: boolean;
  bytes: number;
  /** The replica's own full-sync time (its run's first connect → last fsync + rename; one attempt here). */
  syncMs: number;
  /** Spawn → exit, as seen from here. */
  wallMs: number;
  /** Peak RSS of the replica process, bytes. */
  maxRss: number | null;
  /** User + system CPU of the replica process, ms. */
  cpuMs: number;
  result: Event | undefined;
}

/** `kvr replica --once --dir <dir> --master 127.0.0.1:<port>` to completion. */
export async function replicaOnce(bin: string, dir: string, masterPort: number, extra: string[] = [], timeoutMs = 600_000): Promise<OnceResult> {
  const t0 = performance.now();
  const child = spawnKvr(bin, ["replica", "--port", "0", "--log-level", "warn", "--dir", dir, "--master", `127.0.0.1:${masterPort}`, "--once", ...extra]);
  const timer = setTimeout(() => child.proc.kill("SIGKILL"), timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  const wallMs = performance.now() - t0;
  await child.drained;
  const result = child.lines.find((l) => typeof l.ok === "boolean");
  if (code !== 0 || !result?.ok) throw new Error(`replica --once exited ${code}: ${JSON.stringify(result ?? null)} ${child.stderr().slice(-400)}`);
  const cpu = child.proc.resourceUsage()?.cpuTime.total;
  return { ok: true, bytes: Number(result.bytes), syncMs: Number(result.ms), wallMs, maxRss: child.maxRss(), cpuMs: cpu === undefined ? NaN : Number(cpu) / 1000, result };
}

/** A persistent RESP client connection (admin or master control port). */
export async function client(port: number, readMs = 10_000): Promise<{ conn: Conn; call(args: string[]): Promise<RespValue>; close(): void }> {
  const conn = await connect("127.0.0.1", port, { connectMs: 3000, readMs, writeMs: readMs });
  return { conn, call: (args) => call(conn, args), close: () => conn.destroy() };
}

/** One command on a fresh connection. */
export async function command(port: number, args: string[]): Promise<string> {
  const c = await client(port);
  try {
    return replyText(await c.call(args));
  } finally {
    c.close();
  }
}

/** INFO replication of a replica or master as key → value. */
export async function info(port: number): Promise<Record<string, string>> {
  const text = await command(port, ["INFO", "replication"]);
  const out: Record<string, string> = {};
  for (const line of text.split("\r\n")) {
    const i = line.indexOf(":");
    if (i > 0 && !line.startsWith("#")) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}
