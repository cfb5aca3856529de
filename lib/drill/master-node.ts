/**
 * slow-replica's node under test, a master: a `kvr master` child (generated checkpoint, its
 * --write-rate stream, --send-timeout) or a running node given with --master (Kvrocks, cluster or
 * standalone). What the drill learns of it first: that it is a master, its db name (what a
 * replica must match), whether it is in cluster mode and which slots it owns (for the keys the
 * drill writes there), its version.
 */
import { formatSlotRange, parseClusterNodes } from "../cluster/index.ts";
import type { Conn } from "../net/index.ts";
import { encodeCommand, replyText, RespError } from "../resp/index.ts";
import { formatMs } from "../ui/units.ts";
import { spawnSelf, waitListening, type Child } from "../proc/children.ts";
import { DrillError } from "./errors.ts";
import { addrText, command, info, intField, openNode, type NodeAddr } from "./node.ts";
import type { RunContext } from "./phases.ts";

export interface MasterNode {
  kind: "kvr" | "external";
  addr: NodeAddr;
  child: Child | null;
  dbName: string;
  /** Slots the node owns (CLUSTER NODES, the `myself` line); null in standalone mode. */
  slots: Array<[number, number]> | null;
  /** INFO server kvrocks_version (kvr: kvr-<version>). */
  version: string | null;
  /** master_repl_offset when the drill started. */
  offset: number | null;
}

/** Start the kvr master (or check the --master node) and read what the drill needs of it. */
export async function startMasterNode(ctx: RunContext): Promise<MasterNode> {
  const { cfg, cleanup } = ctx;
  let addr: NodeAddr;
  let child: Child | null = null;
  if (cfg.master) addr = cfg.master;
  else {
    const args = ["master", "--generate", "1x64KiB", "--bind", "127.0.0.1", "--port", "0", "--write-rate", String(cfg.writeRate), "--send-timeout", `${cfg.sendTimeoutMs}ms`];
    child = spawnSelf("kvr master", args, { env: { KVR_REQUIREPASS: cfg.auth ?? "" } });
    cleanup.add("stopping the kvr master", () => child!.stop());
    addr = { host: "127.0.0.1", port: (await waitListening(child)).port };
  }
  const conn = await openNode(addr, "the master under test", { auth: cfg.auth, signal: ctx.signal });
  try {
    const i = await info(conn, null, 5000, "the master under test");
    if (i.role !== "master") {
      throw new DrillError(`the node at ${addrText(addr)} is not a master (role:${i.role ?? "?"}${i.master_host ? `, a replica of ${i.master_host}:${i.master_port}` : ""}): drill its master`);
    }
    return {
      kind: child ? "kvr" : "external",
      addr,
      child,
      dbName: await dbName(conn, addr),
      slots: i.redis_mode === "cluster" ? await ownedSlots(conn, addr) : null,
      version: i.kvrocks_version ?? null,
      offset: intField(i.master_repl_offset),
    };
  } finally {
    conn.destroy();
  }
}

/** `_db_name`: a bare line (docs/protocol.md §1), not a RESP value. */
async function dbName(conn: Conn, addr: NodeAddr): Promise<string> {
  conn.readMs = 5000;
  await conn.write(encodeCommand(["_db_name"]));
  const line = Buffer.from(await conn.readLine(4096), "latin1").toString("utf8");
  if (line.startsWith("-") || line === "") throw new DrillError(`the master at ${addrText(addr)} answered _db_name with '${line}': it does not serve replicas`);
  return line;
}

/** The slots the node owns, from the `myself` line of its CLUSTER NODES. */
async function ownedSlots(conn: Conn, addr: NodeAddr): Promise<Array<[number, number]>> {
  const r = await command(conn, ["CLUSTER", "NODES"], 5000);
  if (r instanceof RespError) throw new DrillError(`the master at ${addrText(addr)} is in cluster mode but answered CLUSTER NODES with -${r.message}: give it a topology first`);
  if (!Buffer.isBuffer(r)) throw new DrillError(`the master at ${addrText(addr)} answered CLUSTER NODES with ${replyText(r)}`);
  let me;
  try {
    me = parseClusterNodes(r.toString("utf8")).myself;
  } catch (e) {
    throw new DrillError(`cannot read the CLUSTER NODES of ${addrText(addr)}: ${(e as Error).message}`);
  }
  if (!me) throw new DrillError(`the CLUSTER NODES of ${addrText(addr)} has no myself line: cannot tell which slots it owns`);
  return me.slots;
}

/** "kvr master 127.0.0.1:p (--send-timeout 3.00 s, 20000 batches/s)" or "node …: Kvrocks 2.10.1, cluster mode, slots …". */
export function describeMaster(m: MasterNode, sendTimeoutMs: number | null, writeRate: number): string {
  if (m.kind === "kvr") {
    const st = sendTimeoutMs ? `--send-timeout ${formatMs(sendTimeoutMs)}` : "--send-timeout 0: never drops a replica";
    return `kvr master ${addrText(m.addr)} (pid ${m.child?.pid}; ${st}; writing ${writeRate} batches/s)`;
  }
  const mode = m.slots === null ? "standalone" : `cluster mode, ${m.slots.length ? `slots ${m.slots.map(formatSlotRange).join(" ")}` : "no slots"}`;
  return `node ${addrText(m.addr)}: ${m.version ? `version ${m.version}` : "version unknown"}, ${mode}, master_repl_offset ${m.offset ?? "?"}, db name ${m.dbName}`;
}
