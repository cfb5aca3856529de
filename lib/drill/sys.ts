/**
 * Running system tools (iproute2's `ip`) with a deadline, the established TCP connections of
 * this host (the kernel's socket table), and whether a process is alive.
 */
import { openSockDiag } from "../net/sockdiag.ts";

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a tool to completion (killed after `ms`). A missing binary gives code 127. */
export async function runTool(argv: string[], ms = 5000): Promise<ToolResult> {
  let proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  try {
    proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, LC_ALL: "C" } });
  } catch (e) {
    return { code: 127, stdout: "", stderr: (e as Error).message };
  }
  const timer = setTimeout(() => proc.kill("SIGKILL"), ms);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** One established TCP connection: its two ends. */
export interface TcpConn {
  local: { host: string; port: number };
  peer: { host: string; port: number };
}

/**
 * ESTABLISHED TCP connections of this network namespace, read from the kernel's socket table
 * (sock_diag, as `ss` reads it, without spawning it). Returns null where the table cannot be read.
 */
export function establishedConns(): TcpConn[] | null {
  let diag;
  try {
    diag = openSockDiag();
  } catch {
    return null;
  }
  try {
    return diag.tcp().map((s) => ({ local: s.local, peer: s.remote }));
  } catch {
    return null;
  } finally {
    diag.close();
  }
}

/** True when `pid` names a live process. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
