/**
 * slow-replica's healthy replica: a `kvr replica` child of the master under test that keeps
 * reading. Its offset (INFO slave_repl_offset) must keep advancing while the drill's other
 * replica is stuck: a master whose feed to one replica blocks must not hold up the others.
 */
import type { Conn } from "../net/index.ts";
import { formatMs } from "../ui/units.ts";
import type { Child } from "../proc/children.ts";
import { DrillError } from "./errors.ts";
import { addrText, info, intField, openNode, type NodeAddr } from "./node.ts";
import type { RunContext } from "./phases.ts";
import { spawnReplica } from "./target.ts";

export interface Healthy {
  child: Child;
  addr: NodeAddr;
  /** The drill's connection to its admin port (INFO); replaced when it fails. */
  conn: Conn;
  /** Its slave_repl_offset once streaming. */
  offset: number;
}

/** One look at the healthy replica. */
export interface HealthyView {
  offset: number | null;
  link: string | null;
}

/** Start it from `master` and wait (at most `ms`) until it streams: master_link_status:up. */
export async function startHealthy(ctx: RunContext, master: NodeAddr, dbName: string, ms: number): Promise<Healthy> {
  const env = { KVR_MASTERAUTH: ctx.cfg.auth ?? "", KVR_REQUIREPASS: "" };
  const r = await spawnReplica(ctx, "healthy replica", ["--master", addrText(master), "--db-name", dbName, "--stream-fsync", "never"], env);
  const conn = await openNode(r.addr, "the healthy replica", { signal: ctx.signal });
  const h: Healthy = { child: r.child, addr: r.addr, conn, offset: 0 };
  ctx.cleanup.add("closing the connection to the healthy replica", () => h.conn.destroy());
  const until = performance.now() + ms;
  let last: Record<string, string> = {};
  for (;;) {
    if (r.child.hasExited) throw new DrillError(`the healthy replica exited before it streamed from ${addrText(master)}: ${r.child.stderrTail() || last.kvr_last_error || "no reason given"}`);
    last = await info(conn, "replication", 5000, "the healthy replica");
    const offset = intField(last.slave_repl_offset);
    if (last.master_link_status === "up" && offset !== null) return Object.assign(h, { offset });
    if (performance.now() > until) {
      throw new DrillError(
        `the healthy replica did not stream from ${addrText(master)} within ${formatMs(ms)} (state ${last.kvr_state ?? "?"}${last.kvr_last_error ? `: ${last.kvr_last_error}` : ""})`,
      );
    }
    await Bun.sleep(100);
  }
}

/** Its offset and link now (nulls when it does not answer). */
export async function lookHealthy(h: Healthy): Promise<HealthyView> {
  if (h.conn.isClosed) {
    const c = await openNode(h.addr, "the healthy replica", { connectMs: 2000 }).catch(() => null);
    if (c) h.conn = c;
  }
  const i = await info(h.conn, "replication", 2000, "the healthy replica").catch(() => null);
  return { offset: intField(i?.slave_repl_offset), link: i?.master_link_status ?? null };
}
