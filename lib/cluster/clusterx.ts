/**
 * CLUSTERX semantics as a pure function: current state + command → new state, reply, and the
 * replication change it implies. The caller (kvr replica's admin port) performs the change and
 * only then sends the reply; when the change fails it replies replicationFailure(reason).
 *
 * Rules: docs/protocol.md §6 (Kvrocks' CommandClusterX::Parse/Execute and Cluster::SetClusterNodes).
 */
import { bulk, error, integer, OK } from "../resp/encoder.ts";
import { findMyself, masterOf, nodeById, NODE_ID_LEN, parseNodes, TopologyError, type ClusterNode, type Topology } from "./topology.ts";

export interface ClusterState {
  /** Set by SETNODEID, or picked by SETNODES (port + bind address); null = none yet. */
  nodeId: string | null;
  /** -1 before any SETNODES. */
  version: number;
  topology: Topology | null;
}

export type RoleChange = { kind: "none" } | { kind: "master" } | { kind: "replicate"; host: string; port: number; masterId: string };

export type Reply =
  | { type: "ok" }
  | { type: "error"; message: string /* with prefix word, e.g. "ERR Invalid cluster version" */ }
  | { type: "bulk"; value: string }
  | { type: "integer"; value: number };

export interface ClusterxContext {
  /** The node's listening port. */
  port: number;
  /** The node's bind addresses. */
  binds: string[];
  /** The master currently replicated from; null = none (a master). */
  current: { host: string; port: number } | null;
}

export interface ClusterxResult {
  state: ClusterState;
  reply: Reply;
  change: RoleChange;
}

/** The initial state of a node in cluster mode. */
export function initialClusterState(): ClusterState {
  return { nodeId: null, version: -1, topology: null };
}

/** Kvrocks' usage error for an unknown or malformed CLUSTERX subcommand. */
export const CLUSTERX_USAGE = "ERR CLUSTERX command, CLUSTERX VERSION|MYID|SETNODEID|SETNODES|SETSLOT|MIGRATE";

/** The reply when the role change that SETNODES implied failed. */
export function replicationFailure(reason: string): Reply {
  return { type: "error", message: `ERR failed to set master-replica replication: ${reason}` };
}

const NONE: RoleChange = { kind: "none" };
const err = (message: string): Reply => ({ type: "error", message });

/** ParseInt<int64_t>(s, 10): C whitespace, optional sign, digits, nothing after; 64-bit range. */
function parseInt64(s: string): bigint | null {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)$/.exec(s);
  if (!m) return null;
  const v = m[1] === "-" ? -BigInt(m[2]) : BigInt(m[2]);
  return v > 0x7fff_ffff_ffff_ffffn || v < -0x8000_0000_0000_0000n ? null : v;
}

/**
 * The replication change for "myself" (Kvrocks' SetMasterSlaveRepl): a master stops replicating
 * (a change only when it replicates now); a slave whose master is in the topology replicates
 * from it (no change when that is already the current master); otherwise nothing.
 */
export function roleChangeFor(t: Topology, myself: ClusterNode | null, current: { host: string; port: number } | null): RoleChange {
  if (!myself) return NONE;
  if (myself.role === "master") return current ? { kind: "master" } : NONE;
  const m = masterOf(t, myself);
  if (!m) return NONE;
  if (current && current.host === m.host && current.port === m.port) return NONE;
  return { kind: "replicate", host: m.host, port: m.port, masterId: m.id };
}

/** Apply one CLUSTERX command (`args` are the words after CLUSTERX). Pure: `state` is not mutated. */
export function clusterx(state: ClusterState, args: string[], ctx: ClusterxContext): ClusterxResult {
  const same = (reply: Reply): ClusterxResult => ({ state, reply, change: NONE });
  if (args.length === 0) return same(err("ERR wrong number of arguments"));
  const sub = args[0].toLowerCase();

  if (args.length === 1 && sub === "version") return same({ type: "bulk", value: String(state.version) });
  if (args.length === 1 && sub === "myid") return same({ type: "bulk", value: state.nodeId ?? "" });

  if (sub === "setnodeid" && args.length === 2) {
    const id = args[1];
    if (Buffer.byteLength(id, "utf8") !== NODE_ID_LEN) return same(err("ERR Invalid cluster node id"));
    const next: ClusterState = { ...state, nodeId: id };
    const myself = state.version >= 0 && state.topology ? nodeById(state.topology, id) : null;
    const change = myself && state.topology ? roleChangeFor(state.topology, myself, ctx.current) : NONE;
    return { state: next, reply: { type: "ok" }, change };
  }

  if (sub === "setnodes" && args.length >= 3) {
    const parsed = parseInt64(args[2]);
    if (parsed === null) return same(err("ERR Invalid version"));
    let force = false;
    if (args.length === 4 && args[3].toLowerCase() === "force") force = true;
    else if (args.length !== 3) return same(err("ERR Invalid setnodes options"));
    return setNodes(state, args[1], parsed, force, ctx);
  }

  if ((sub === "setslot" && args.length === 5) || sub === "migrate") {
    return same(err(`ERR CLUSTERX ${sub.toUpperCase()} is not supported by kvr`));
  }
  return same(err(CLUSTERX_USAGE));
}

function setNodes(state: ClusterState, nodesText: string, version: bigint, force: boolean, ctx: ClusterxContext): ClusterxResult {
  const same = (reply: Reply): ClusterxResult => ({ state, reply, change: NONE });
  if (version < 0n) return same(err("ERR Invalid cluster version"));
  const current = BigInt(state.version);
  if (!force) {
    if (current > version) return same(err("ERR Invalid cluster version"));
    if (current === version) return same({ type: "ok" });
  }
  let topology: Topology;
  try {
    topology = parseNodes(nodesText);
  } catch (e) {
    if (e instanceof TopologyError) return same(err(`ERR ${e.kvrocksMessage}`));
    throw e;
  }
  let nodeId = state.nodeId;
  if (!nodeId || force) {
    const byAddr = findMyself(topology, { port: ctx.port, binds: ctx.binds });
    if (byAddr) nodeId = byAddr.id;
  }
  const myself = nodeId ? nodeById(topology, nodeId) : null;
  const next: ClusterState = { nodeId, version: Number(version), topology };
  return { state: next, reply: { type: "ok" }, change: roleChangeFor(topology, myself, ctx.current) };
}

/** A CLUSTERX reply as RESP bytes, for a server answering it. */
export function encodeReply(r: Reply): Buffer {
  switch (r.type) {
    case "ok":
      return OK;
    case "error":
      return error(r.message);
    case "bulk":
      return bulk(r.value);
    case "integer":
      return integer(r.value);
  }
}
