/**
 * The reference replica of fullsync-throughput, written outside Bun (see refreplica.c): compiled
 * with `cc -O2` into the benchmark's temp dir when a C compiler is found, else run with python3
 * (refreplica.py, the same program in Python's standard library). Both do the same work as
 * `kvr replica --once` into an empty directory and print their own sync time.
 */
import { join, resolve } from "node:path";
import { spawnTracked, watchPeakRss } from "./harness.ts";

export interface Reference {
  /** "C (cc -O2, 4 threads)" or "Python 3 (stdlib, 4 threads)", for the table. */
  label: string;
  argv(port: number, dir: string): string[];
}

export interface ReferenceRun {
  /** The reference's own sync time: first connect → last directory fsync. */
  ms: number;
  bytes: number;
  files: number;
  /** User + system CPU of the process, ms. */
  cpuMs: number;
  maxRss: number | null;
}

const HERE = import.meta.dir;

/** Compile the C reference into `tmp` (cc, else gcc, else clang); fall back to Python. */
export function prepareReference(tmp: string): Reference {
  const src = resolve(HERE, "refreplica.c");
  const out = join(tmp, "refreplica");
  for (const cc of ["cc", "gcc", "clang"]) {
    if (!Bun.which(cc)) continue;
    const r = Bun.spawnSync([cc, "-O2", "-pthread", "-o", out, src], { stdout: "pipe", stderr: "pipe" });
    if (r.exitCode === 0) return { label: `C (${cc} -O2, pthreads)`, argv: (port, dir) => [out, String(port), dir] };
  }
  const py = Bun.which("python3");
  if (py) return { label: "Python 3 (stdlib, threads)", argv: (port, dir) => [py, resolve(HERE, "refreplica.py"), String(port), dir] };
  throw new Error("no reference replica: neither a C compiler (cc, gcc, clang) nor python3 was found");
}

/** One full sync by the reference from 127.0.0.1:`port` into the empty directory `dir`. */
export async function runReference(ref: Reference, port: number, dir: string, timeoutMs = 600_000): Promise<ReferenceRun> {
  const proc = spawnTracked(() => Bun.spawn(ref.argv(port, dir), { stdin: "ignore", stdout: "pipe", stderr: "pipe" }));
  const peakRss = watchPeakRss(proc);
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`reference replica exited ${code}: ${err.slice(-400)}`);
  const r = JSON.parse(out) as { ms: number; bytes: number; files: number };
  const ru = proc.resourceUsage();
  return { ...r, cpuMs: ru ? Number(ru.cpuTime.total) / 1000 : NaN, maxRss: peakRss() };
}
