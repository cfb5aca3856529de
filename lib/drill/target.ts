/**
 * The node under test: a `kvr replica` child on free ports, or a running node given with
 * --replica; the drill's connections to it; and joining it to A (node ids, CLUSTERX SETNODES
 * making it A's slave), after recording the topology it had so restore.ts can put it back.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatNodes, formatSlotRange, newNodeId, parseClusterNodes, type ClusterNode, type Topology } from "../cluster/index.ts";
import type { Conn } from "../net/index.ts";
import { replyText, RespError, SimpleString } from "../resp/index.ts";
import { spawnSelf, waitListening, type Child } from "../proc/children.ts";
import { DrillError } from "./errors.ts";
import { addrText, clusterVersion, command, info, intField, openNode, type NodeAddr } from "./node.ts";
import type { RunContext } from "./phases.ts";
import { recordTopology, type SavedTopology } from "./restore.ts";

export interface Target {
  kind: "kvr" | "external";
  addr: NodeAddr;
  child?: Child;
}

export const ALL_SLOTS: Array<[number, number]> = [[0, 16383]];

export function topology(nodes: ClusterNode[]): Topology {
  return { nodes };
}
export function master(id: string, a: NodeAddr, slots: Array<[number, number]>): ClusterNode {
  return { id, host: a.host, port: a.port, role: "master", masterId: "-", slots };
}
export function slave(id: string, a: NodeAddr, masterId: string): ClusterNode {
  return { id, host: a.host, port: a.port, role: "slave", masterId, slots: [] };
}

/** A connection to the node under test (AUTH with --auth), closed by the run's cleanup. */
export async function openTarget(ctx: RunContext, addr: NodeAddr, what: string): Promise<Conn> {
  const c = await openNode(addr, "the node under test", { auth: ctx.cfg.auth, signal: ctx.signal });
  ctx.cleanup.add(`closing the ${what} connection`, () => c.destroy());
  return c;
}

/** The node given with --replica, or a kvr replica started on free ports (its passwords from the environment). */
export async function startTarget(ctx: RunContext): Promise<Target> {
  const { cfg } = ctx;
  if (cfg.replica) return { kind: "external", addr: cfg.replica };
  const env = { KVR_REQUIREPASS: cfg.auth ?? "", KVR_MASTERAUTH: cfg.mastersAuth ?? "" };
  const r = await spawnReplica(ctx, "replica", ["--read-timeout", `${cfg.readTimeoutMs}ms`], env);
  return { kind: "kvr", addr: r.addr, child: r.child };
}

/**
 * Start `kvr replica` on a free admin port of 127.0.0.1 with a temporary --dir (plus `args`);
 * the child and its directory are removed by the run's cleanup.
 */
export async function spawnReplica(ctx: RunContext, name: string, args: string[], env: Record<string, string>): Promise<{ child: Child; addr: NodeAddr; dir: string }> {
  const { cleanup } = ctx;
  const dir = mkdtempSync(join(tmpdir(), "kvr-drill-replica-"));
  cleanup.add(`removing the ${name}'s directory`, () => rmSync(dir, { recursive: true, force: true }));
  const child = spawnSelf(name, ["replica", "--dir", dir, "--bind", "127.0.0.1", "--port", "0", ...args], { env });
  cleanup.add(`stopping the ${name}`, () => child.stop());
  const l = await waitListening(child);
  return { child, addr: { host: "127.0.0.1", port: l.port }, dir };
}

export interface Joined {
  /** The node's id (its own, or one the drill set). */
  nodeId: string;
  /** The version sent. */
  version: number;
  /** True when the node had no id and the drill gave it one (SETNODEID). */
  idSet: boolean;
}

/**
 * Give the node an id when it has none and make it A's slave with SETNODES (its version + 1).
 * Before the first command that changes the node goes out, `onChange` gets the topology the node
 * had (read only when `record`: a --replica node to be put back afterwards; else null). With
 * `keepData`, a node whose data would be lost is refused first (refuseDataLoss).
 */
export async function joinTopology(
  ctl: Conn,
  target: Target,
  idA: string,
  aAddr: NodeAddr,
  b: { id: string; addr: NodeAddr },
  record: boolean,
  keepData: boolean,
  onChange: (saved: SavedTopology | null) => void,
): Promise<Joined> {
  const myid = await command(ctl, ["CLUSTERX", "MYID"], 5000).catch((e) => {
    throw new DrillError(`the node under test did not answer CLUSTERX MYID: ${(e as Error).message}`);
  });
  if (myid instanceof RespError) {
    if (myid.prefix === "NOAUTH") throw new DrillError(`the node under test at ${addrText(target.addr)} needs a password: give --auth or set KVR_AUTH`);
    throw new DrillError(`the node under test refused CLUSTERX MYID (${myid.message}): drill a node in cluster mode`);
  }
  if (keepData) await refuseDataLoss(ctl, target.addr);
  let id = Buffer.isBuffer(myid) ? myid.toString("utf8") : "";
  const ver = await command(ctl, ["CLUSTERX", "VERSION"], 5000);
  const cur = clusterVersion(ver);
  if (cur === null) throw new DrillError(`the node under test answered CLUSTERX VERSION with ${replyText(ver)}`);
  const saved = record ? await recordTopology(ctl, cur, id.length === 40 ? id : null) : null;
  onChange(saved);
  const idSet = id.length !== 40;
  if (idSet) {
    id = newNodeId();
    const r = await command(ctl, ["CLUSTERX", "SETNODEID", id], 5000);
    if (!(r instanceof SimpleString)) throw new DrillError(`the node under test refused CLUSTERX SETNODEID: ${replyText(r)}`);
  }
  const v = Math.max(cur + 1, 1);
  const t = topology([master(idA, aAddr, ALL_SLOTS), slave(id, target.addr, idA), master(b.id, b.addr, [])]);
  const r = await command(ctl, ["CLUSTERX", "SETNODES", formatNodes(t), String(v)], 10_000).catch((e) => {
    throw new DrillError(`the node under test did not answer SETNODES version ${v}: ${(e as Error).message}`);
  });
  if (!(r instanceof SimpleString)) throw new DrillError(`the node under test rejected SETNODES version ${v}: ${replyText(r)}`);
  return { nodeId: id, version: v, idSet };
}

/**
 * The drill makes the node full-sync from A and then from B: whatever data it held is replaced.
 * A replica gets its master's data back once its topology is put back; a master that owns slots
 * or has replicas holds the only copy. Such a node is refused (DrillError, nothing changed on it)
 * unless the caller asked for it (--replace-data).
 */
export async function refuseDataLoss(ctl: Conn, addr: NodeAddr): Promise<void> {
  const i = await info(ctl, "replication", 5000, "the node under test");
  if (i.role !== "master") return;
  const replicas = intField(i.connected_slaves) ?? 0;
  const nodes = await command(ctl, ["CLUSTER", "NODES"], 5000).catch((e: Error) => e);
  let slots: Array<[number, number]> = [];
  // Kvrocks answers CLUSTERDOWN while it has no topology (no slots); anything else unreadable
  // leaves the question open, and the answer decides whether data is lost: refuse.
  const unknown = (why: string) =>
    new DrillError(`cannot tell whether the master at ${addrText(addr)} owns slots (CLUSTER NODES: ${why}); give --replace-data to drill it anyway (its data is replaced)`);
  if (nodes instanceof Error) throw unknown(nodes.message);
  if (nodes instanceof RespError) {
    if (nodes.prefix !== "CLUSTERDOWN") throw unknown(`-${nodes.message}`);
  } else if (Buffer.isBuffer(nodes)) {
    try {
      slots = parseClusterNodes(nodes.toString("utf8")).myself?.slots ?? [];
    } catch (e) {
      throw unknown((e as Error).message);
    }
  } else throw unknown(replyText(nodes));
  if (replicas === 0 && slots.length === 0) return;
  const holds = [slots.length ? `owns slots ${slots.map(formatSlotRange).join(" ")}` : "", replicas ? `has ${replicas} replica${replicas === 1 ? "" : "s"}` : ""]
    .filter(Boolean)
    .join(" and ");
  throw new DrillError(
    `the node at ${addrText(addr)} is a master that ${holds}: the drill makes it full-sync from the drill's masters A and B, which replaces its data. ` +
      `Drill one of its replicas or a staging node running the same build; give --replace-data only if this node's data may be lost`,
  );
}
