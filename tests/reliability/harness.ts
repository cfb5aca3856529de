/**
 * Helpers for the reliability suite: kvr master and kvr replica as child processes of the built
 * binary (secrets passed by environment), a directory watcher that checks every observed moment,
 * and a small concurrency limiter so many cases can run at once without overloading the host.
 */
import { copyFileSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { parseInfo } from "../../lib/client/index.ts";
import { connect } from "../../lib/net/index.ts";
import { call, replyText, type RespValue } from "../../lib/resp/index.ts";
import { generatedContent, generatedFiles } from "../../lib/master/generate.ts";
import { spawnKvr, type KvrProcess } from "../helpers/kvr.ts";
import { FIXTURE } from "../helpers/fixture.ts";

/** The real Kvrocks checkpoint (sequence 2256). */
export { FIXTURE };
export const FIXTURE_SEQ = 2256;

export interface ExpectedFile {
  name: string;
  data: Buffer;
}

export function generatedExpected(spec: string): ExpectedFile[] {
  return generatedFiles(spec).map((f) => ({ name: f.name, data: generatedContent(spec, f.name) }));
}

export function fixtureExpected(): ExpectedFile[] {
  return readdirSync(FIXTURE).map((name) => ({ name, data: readFileSync(join(FIXTURE, name)) }));
}

/** Copy the fixture checkpoint into `dir` (a target holding a complete checkpoint → PSYNC). */
export function seedFixture(dir: string): void {
  for (const n of readdirSync(FIXTURE)) copyFileSync(join(FIXTURE, n), join(dir, n));
}

export { diffDir } from "../replica/helpers.ts";

/** Total bytes of the regular files in `dir`. */
export function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir)) {
    try {
      n += statSync(join(dir, e)).size;
    } catch {}
  }
  return n;
}

/**
 * Poll `dir` every few ms while a sync runs. A violation is any moment where a file carries a
 * final name with a size other than its expected size, or a name that is neither an allowed
 * final name nor `<allowed>.tmp`.
 */
export class DirWatcher {
  readonly violations: string[] = [];
  samples = 0;
  tmpSeen = 0;
  private running = true;
  private readonly done: Promise<void>;
  private readonly sizes = new Map<string, number>();

  constructor(
    readonly dir: string,
    allowed: ExpectedFile[][],
    /** Names allowed with any size (the replica's own stream log). */
    readonly anySize: string[] = [],
    everyMs = 4,
  ) {
    for (const set of allowed) for (const f of set) this.sizes.set(f.name, f.data.length);
    this.done = this.loop(everyMs);
  }

  private async loop(everyMs: number): Promise<void> {
    while (this.running) {
      let names: string[] = [];
      try {
        names = await readdir(this.dir);
      } catch {
        return;
      }
      this.samples++;
      for (const n of names) {
        if (n.endsWith(".tmp")) {
          this.tmpSeen++;
          if (!this.sizes.has(n.slice(0, -4))) this.note(`unexpected partial ${n}`);
          continue;
        }
        const want = this.sizes.get(n);
        if (this.anySize.includes(n)) continue;
        if (want === undefined) {
          this.note(`unexpected file ${n}`);
          continue;
        }
        try {
          const size = (await stat(join(this.dir, n))).size;
          if (size !== want) this.note(`${n} under its final name with ${size} of ${want} bytes`);
        } catch {
          // Removed between readdir and stat (prepareDir, a retry): fine.
        }
      }
      await Bun.sleep(everyMs);
    }
  }

  private note(v: string): void {
    if (this.violations.length < 20 && !this.violations.includes(v)) this.violations.push(v);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

export interface Proc {
  kvr: KvrProcess;
  port: number;
  pid: number;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Start `kvr <cmd> --port 0 <args>` and wait for its `listening` event. */
export async function startKvr(cmd: "master" | "replica", args: string[], env: Record<string, string> = {}): Promise<Proc> {
  const kvr = spawnKvr([cmd, "--port", "0", ...args], env);
  try {
    const ev = await kvr.waitEvent((e) => e.event === "listening", 10_000);
    return { kvr, port: Number(ev.port), pid: kvr.proc.pid, stop: (s = "SIGTERM") => kvr.stop(s, 3000) };
  } catch (e) {
    await kvr.stop("SIGKILL");
    throw e;
  }
}

/** One command on a fresh connection to 127.0.0.1:port (AUTH first when `password` is given). */
export async function command(port: number, args: string[], password?: string, readMs = 5000): Promise<RespValue> {
  const conn = await connect("127.0.0.1", port, { connectMs: 2000, readMs });
  try {
    if (password !== undefined) {
      const r = await call(conn, ["AUTH", password]);
      if (replyText(r) !== "OK") throw new Error(`AUTH: ${replyText(r)}`);
    }
    return await call(conn, args);
  } finally {
    conn.destroy();
  }
}

/** INFO replication as a map. */
export async function infoMap(port: number, password?: string): Promise<Record<string, string>> {
  return parseInfo(replyText(await command(port, ["INFO", "replication"], password)));
}

/** A counting semaphore: at most `n` callers inside at once. */
export { limiter } from "../../lib/ui/limit.ts";

export { until } from "../helpers/until.ts";

/**
 * Open file descriptors of a process (entries of /proc/<pid>/fd). With `connsAndFiles`, only
 * sockets, files and pipes: not the eventfd/epoll descriptors a thread's event loop holds for the
 * life of the process (the replica's fetch thread, started at its first full sync).
 */
export function fdCount(pid: number, connsAndFiles = false): number {
  const dir = `/proc/${pid}/fd`;
  const fds = readdirSync(dir);
  if (!connsAndFiles) return fds.length;
  return fds.filter((fd) => {
    try {
      return !readlinkSync(`${dir}/${fd}`).startsWith("anon_inode:");
    } catch {
      return false;
    }
  }).length;
}

/** Resident set size of a process in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** The command line of a process, NUL-separated arguments joined by spaces. */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0").join(" ");
  } catch {
    return "";
  }
}

/** Every descendant pid of `pid` (through /proc/<pid>/task/<tid>/children). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const t of tasks) {
      let kids = "";
      try {
        kids = readFileSync(`/proc/${p}/task/${t}/children`, "utf8");
      } catch {
        continue;
      }
      for (const k of kids.split(/\s+/).filter(Boolean).map(Number)) {
        if (!out.includes(k)) {
          out.push(k);
          walk(k);
        }
      }
    }
  };
  walk(pid);
  return out;
}

/** Nearest-rank percentile of sorted values (the drill's own). */
export { percentile } from "../../lib/drill/report.ts";
