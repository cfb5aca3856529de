/**
 * Running system tools (iproute2's `ip` and `ss`) with a deadline, and counting TCP
 * connections by state from `ss` output.
 */

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

/** One TCP connection as `ss -tn` shows it. */
export interface TcpConn {
  local: { host: string; port: number };
  peer: { host: string; port: number };
}

function splitAddr(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(":");
  let host = s.slice(0, i).replace(/^\[|\]$/g, "");
  if (host.startsWith("::ffff:")) host = host.slice(7);
  const pct = host.indexOf("%");
  if (pct >= 0) host = host.slice(0, pct);
  return { host, port: Number(s.slice(i + 1)) };
}

/** Parse `ss -Htn` lines (Recv-Q Send-Q Local:Port Peer:Port ...); header lines are skipped. */
export function parseSs(text: string): TcpConn[] {
  const out: TcpConn[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    // With a state filter ss prints no State column; without one it does. Find the two address fields.
    const addrs = f.filter((x) => /:\d+$/.test(x) && !/^\d+$/.test(x));
    if (addrs.length < 2) continue;
    out.push({ local: splitAddr(addrs[0]), peer: splitAddr(addrs[1]) });
  }
  return out;
}

/**
 * ESTABLISHED TCP connections as the kernel sees them (optionally inside a network namespace).
 * Returns null when `ss` cannot run.
 */
export async function establishedConns(netns?: string): Promise<TcpConn[] | null> {
  const argv = netns ? ["ip", "netns", "exec", netns, "ss", "-Htn", "state", "established"] : ["ss", "-Htn", "state", "established"];
  const r = await runTool(argv);
  if (r.code !== 0) return null;
  return parseSs(r.stdout);
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
