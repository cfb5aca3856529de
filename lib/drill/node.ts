/**
 * Talking to a node over RESP (the node under test, or master A for its INFO): connect, AUTH,
 * one command under a reply deadline, INFO parsing.
 */
import { connect, isNetError, type Conn } from "../net/index.ts";
import { call, replyText, SimpleString, type RespValue } from "../resp/index.ts";
import { addrText, clusterVersion, intField, parseInfo, slaveLines, type NodeAddr, type SlaveLine } from "../client/index.ts";
import { DrillError } from "./errors.ts";

export { addrText, clusterVersion, intField, parseInfo, slaveLines, type NodeAddr, type SlaveLine };

/**
 * Open a connection to a node (and AUTH when a password is given). Any failure is a DrillError:
 * a node the drill cannot reach or log in to cannot be drilled.
 */
export async function openNode(addr: NodeAddr, what: string, opts: { auth?: string; connectMs?: number; signal?: AbortSignal } = {}): Promise<Conn> {
  let conn: Conn;
  try {
    conn = await connect(addr.host, addr.port, { connectMs: opts.connectMs ?? 3000, readMs: 5000, writeMs: 5000, signal: opts.signal });
  } catch (e) {
    const code = isNetError(e) ? e.code : "IO";
    const hint = code === "REFUSED" ? " (nothing listens there: is the node running?)" : "";
    throw new DrillError(`cannot connect to ${what} at ${addrText(addr)}: ${(e as Error).message}${hint}`);
  }
  if (opts.auth !== undefined && opts.auth !== "") {
    const r = await command(conn, ["AUTH", opts.auth], 5000).catch((e) => {
      conn.destroy();
      throw new DrillError(`${what} at ${addrText(addr)} did not answer AUTH: ${(e as Error).message}`);
    });
    if (!(r instanceof SimpleString)) {
      conn.destroy();
      throw new DrillError(`${what} at ${addrText(addr)} refused AUTH: ${replyText(r)} (check --auth / KVR_AUTH)`);
    }
  }
  return conn;
}

/** Send one command and wait for its reply for at most `ms` without data (0 = no deadline). */
export async function command(conn: Conn, args: string[], ms: number): Promise<RespValue> {
  conn.readMs = ms;
  return call(conn, args);
}


/** INFO [section] as key → value; throws DrillError on an error reply or no reply within `ms`. */
export async function info(conn: Conn, section: string | null, ms: number, what: string): Promise<Record<string, string>> {
  let r: RespValue;
  try {
    r = await command(conn, section ? ["INFO", section] : ["INFO"], ms);
  } catch (e) {
    throw new DrillError(`${what} did not answer INFO: ${(e as Error).message}`);
  }
  if (!Buffer.isBuffer(r)) throw new DrillError(`${what} answered INFO with ${replyText(r)}`);
  return parseInfo(r.toString("utf8"));
}
