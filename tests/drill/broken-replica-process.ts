/**
 * The broken replica (broken-replica.ts) as a process of its own, so that its sockets belong to
 * its own pid, as a real Kvrocks node's do (what `kvr guard` matches by).
 *
 *   bun tests/drill/broken-replica-process.ts <hang|leak|good|slow>   # KVR_REQUIREPASS for a password
 *
 * prints one JSON line {"port":N,"pid":N} once it listens and runs until SIGTERM/SIGINT.
 */
import { spawnScript } from "../helpers/script.ts";
import { startBrokenReplica, type BrokenMode } from "./broken-replica.ts";

export interface BrokenReplicaProcess {
  port: number;
  pid: number;
  /** SIGTERM (SIGKILL after 2 s); resolves once it is gone. */
  close(): Promise<void>;
}

/** Start the double in a child process (bun running this file). */
export async function spawnBrokenReplica(mode: BrokenMode, requirepass?: string): Promise<BrokenReplicaProcess> {
  const env = { ...process.env, KVR_REQUIREPASS: requirepass };
  const p = await spawnScript<{ port: number }>(import.meta.path, [mode], env);
  return { port: p.hello.port, pid: p.proc.pid, close: p.close };
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
