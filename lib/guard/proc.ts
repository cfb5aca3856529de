/**
 * What /proc tells about a node's process: the inodes of the sockets it holds (the links
 * `socket:[N]` in /proc/<pid>/fd) and its start time (a pid reused by another process has
 * another start time).
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** The socket inodes held by `pid`, or why they cannot be read (the process is gone, or not ours to inspect). */
export type Inodes = { ok: true; inodes: Set<number> } | { ok: false; code: string; reason: string };

/** Socket inodes of a process (reading /proc/<pid>/fd needs the same user or CAP_SYS_PTRACE). */
export function socketInodes(pid: number): Inodes {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "EIO";
    const reason =
      code === "ENOENT"
        ? `process ${pid} is gone`
        : code === "EACCES" || code === "EPERM"
          ? `cannot read /proc/${pid}/fd (${code}): run the guard as the node's user or as root, or give it CAP_SYS_PTRACE`
          : `cannot read /proc/${pid}/fd: ${(e as Error).message}`;
    return { ok: false, code, reason };
  }
  const inodes = new Set<number>();
  for (const fd of fds) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    if (target.startsWith("socket:[")) inodes.add(Number(target.slice(8, -1)));
  }
  return { ok: true, inodes };
}

/** The process's start time (clock ticks after boot, field 22 of /proc/<pid>/stat); null when it is gone. */
export function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19] ?? null;
  } catch {
    return null;
  }
}
