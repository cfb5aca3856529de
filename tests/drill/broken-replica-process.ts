/**
 * The broken replica (broken-replica.ts) as a process of its own, so that its sockets belong to
 * its own pid, as a real Kvrocks node's do (what `kvr guard` matches by).
 *
 *   bun tests/drill/broken-replica-process.ts <hang|leak|good|slow>   # KVR_REQUIREPASS for a password
 *
 * prints one JSON line {"port":N,"pid":N} once it listens and runs until SIGTERM/SIGINT.
 */
import { startBrokenReplica, type BrokenMode } from "./broken-replica.ts";

export interface BrokenReplicaProcess {
  port: number;
  pid: number;
  /** True once the process has exited. */
  readonly exited: boolean;
  /** SIGTERM (SIGKILL after 2 s); resolves once it is gone. */
  close(): Promise<void>;
}

/** Start the double in a child process (bun running this file). */
export async function spawnBrokenReplica(mode: BrokenMode, requirepass?: string): Promise<BrokenReplicaProcess> {
  const env: Record<string, string> = { ...(process.env as Record<string, string>) };
  if (requirepass !== undefined) env.KVR_REQUIREPASS = requirepass;
  else delete env.KVR_REQUIREPASS;
  const proc = Bun.spawn([process.execPath, import.meta.path, mode], { stdin: "ignore", stdout: "pipe", stderr: "inherit", env });
  let exited = false;
  proc.exited.then(() => (exited = true));
  const close = async () => {
    if (exited) return;
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 2000);
    await proc.exited;
    clearTimeout(t);
  };
  const reader = proc.stdout.getReader();
  let text = "";
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the broken replica (${mode}) exited before it listened`);
      text += new TextDecoder().decode(value);
    }
  } catch (e) {
    await close();
    throw e;
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  const { port } = JSON.parse(text.split("\n")[0]) as { port: number };
  return {
    port,
    pid: proc.pid,
    get exited() {
      return exited;
    },
    close,
  };
}

if (import.meta.main) {
  const mode = process.argv[2] as BrokenMode;
  if (!["hang", "leak", "good", "slow"].includes(mode)) {
    process.stderr.write("usage: bun broken-replica-process.ts <hang|leak|good|slow>\n");
    process.exit(2);
  }
  const node = await startBrokenReplica(mode, process.env.KVR_REQUIREPASS || undefined);
  const stop = async () => {
    await node.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdout.write(JSON.stringify({ port: node.port, pid: process.pid }) + "\n");
}
