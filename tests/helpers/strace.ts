/**
 * Fault injection for the promises kvr makes about disks and crashes: run a kvr child under
 * `strace -D -f` with `-e inject=…` (a slow fsync, an fdatasync failing with EIO, a SIGKILL at
 * the Nth unlink). With -D the tracer is a grandchild, so the spawned PID is kvr itself: its
 * signals, exit code and pipes are kvr's. Needs the strace package (.ci/run installs it).
 */
import { readFileSync } from "node:fs";

/** The command prefix: `strace -D -f -qq -o <log> <exprs…> --`; `log` defaults to /dev/null. */
export function straced(exprs: string[], log = "/dev/null"): string[] {
  const bin = Bun.which("strace");
  if (!bin) throw new Error("strace not found: these tests inject faults with it (apt-get install strace)");
  return [bin, "-D", "-f", "-qq", "-o", log, ...exprs, "--"];
}

/** The lines of a strace log written with `straced(…, log)`. */
export function straceLines(log: string): string[] {
  return readFileSync(log, "utf8").split("\n").filter((l) => l.trim() !== "");
}
