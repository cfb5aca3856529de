/** Helpers for replica tests: start a replica child, talk to its admin port, compare dirs. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseInfo } from "../../lib/client/index.ts";
import { connect } from "../../lib/net/index.ts";
import { call, replyText, type RespValue } from "../../lib/resp/index.ts";
import { spawnKvr, type KvrProcess } from "../helpers/kvr.ts";

export interface Replica {
  kvr: KvrProcess;
  port: number;
  stop(): Promise<number | null>;
}

/** Start `kvr replica --port 0 <args>` (under `prefix`, e.g. strace) and wait for its admin port. */
export async function startReplica(args: string[], env: Record<string, string> = {}, prefix: string[] = []): Promise<Replica> {
  const kvr = spawnKvr(["replica", "--port", "0", ...args], env, prefix);
  try {
    const ev = await kvr.waitEvent((e) => e.event === "listening", 10_000);
    return { kvr, port: Number(ev.port), stop: () => kvr.stop("SIGTERM", 3000) };
  } catch (e) {
    await kvr.stop("SIGKILL");
    throw e;
  }
}

/** Send one command to 127.0.0.1:port on a fresh connection. */
export async function admin(port: number, args: string[], timeoutMs = 5000): Promise<RespValue> {
  const conn = await connect("127.0.0.1", port, { connectMs: 2000, readMs: timeoutMs });
  try {
    return await call(conn, args);
  } finally {
    conn.destroy();
  }
}

/** INFO as a key → value map. */
export async function info(port: number, section = "replication"): Promise<Record<string, string>> {
  return parseInfo(replyText(await admin(port, ["INFO", section])));
}

export { until } from "../helpers/until.ts";

/** Sorted file names of a directory. */
export function listDir(dir: string): string[] {
  return readdirSync(dir).sort();
}

/** Assert-friendly: names in `dir` whose content differs from `expected` (missing, different, or extra and not in `ignore`). */
export function diffDir(dir: string, expected: Array<{ name: string; data: Buffer }>, ignore: string[] = []): string[] {
  const bad: string[] = [];
  const names = new Set(listDir(dir).filter((n) => !ignore.includes(n)));
  for (const f of expected) {
    if (!names.has(f.name)) bad.push(`missing ${f.name}`);
    else if (!readFileSync(join(dir, f.name)).equals(f.data)) bad.push(`differs ${f.name}`);
    names.delete(f.name);
  }
  for (const n of names) bad.push(`extra ${n}`);
  return bad;
}

export const ID_A = "a".repeat(40);
export const ID_B = "b".repeat(40);
export const ID_R = "c".repeat(40);

/** A topology where the replica (ID_R at 127.0.0.1:replicaPort) is a slave of the master ID_A or ID_B. */
export function topology(replicaPort: number, masters: { a: number; b: number }, of: "a" | "b"): string {
  return [
    `${ID_A} 127.0.0.1 ${masters.a} master - 0-8191`,
    `${ID_B} 127.0.0.1 ${masters.b} master - 8192-16383`,
    `${ID_R} 127.0.0.1 ${replicaPort} slave ${of === "a" ? ID_A : ID_B}`,
  ].join("\n");
}

export interface Master {
  kvr: KvrProcess;
  port: number;
  /** A command on the master's port (KVR FAULT ..., INFO). */
  cmd(args: string[]): Promise<RespValue>;
  info(): Promise<Record<string, string>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Start `kvr master --port <port|0> <args>` and wait until it listens. */
export async function startMaster(args: string[], port = 0): Promise<Master> {
  const kvr = spawnKvr(["master", "--port", String(port), ...args]);
  try {
    const ev = await kvr.waitEvent((e) => e.event === "listening", 10_000);
    const p = Number(ev.port);
    return { kvr, port: p, cmd: (a) => admin(p, a), info: () => info(p), stop: (s = "SIGTERM") => kvr.stop(s, 2000) };
  } catch (e) {
    await kvr.stop("SIGKILL");
    throw e;
  }
}

/** Established TCP connections of this host whose remote port is `port` (counted by `ss`, independently of kvr). */
export async function establishedTo(port: number): Promise<number> {
  const p = Bun.spawn(["ss", "-tnH", "state", "established", `( dport = :${port} )`], { stdout: "pipe", stderr: "ignore" });
  const text = await new Response(p.stdout).text();
  await p.exited;
  return text.split("\n").filter((l) => l.trim() !== "").length;
}
