/**
 * Putting a --replica node back: its topology is read before the drill changes anything
 * (CLUSTERX VERSION, CLUSTER NODES) and pushed back at the end of every run, pass or fail, as
 * the version after the drill's last (CLUSTERX SETNODES). This is the run's final phase; with
 * --keep the node is left as the drill left it.
 */
import { formatNodes, formatSlotRange, nodeById, parseClusterNodes, topologyFromClusterNodes, type Topology } from "../cluster/index.ts";
import type { Conn } from "../net/index.ts";
import { replyText, SimpleString } from "../resp/index.ts";
import { count } from "../ui/units.ts";
import { DrillError } from "./errors.ts";
import { addrText, clusterVersion, command, openNode, type NodeAddr } from "./node.ts";

export interface SavedTopology {
  /** CLUSTERX VERSION before the drill (-1: the node had no topology). */
  version: number;
  /** CLUSTERX MYID before the drill (null: none). */
  nodeId: string | null;
  /** The topology from CLUSTER NODES (null when version < 0). */
  topology: Topology | null;
}

export interface RestoreResult {
  /** restored: pushed back; kept: --keep; nothing: the node had no topology; failed: see detail. */
  status: "restored" | "kept" | "nothing" | "failed";
  detail: string;
  /** The version pushed (restored) or left (kept/nothing/failed). */
  version: number | null;
  /** The nodes string the node had, to push by hand (kvr setnodes) when the restore failed. */
  nodes: string | null;
}

/**
 * Read the node's topology before the drill changes it. A node with a version whose CLUSTER
 * NODES cannot be read or understood is not drilled (DrillError): it could not be put back.
 */
export async function recordTopology(ctl: Conn, version: number, nodeId: string | null): Promise<SavedTopology> {
  if (version < 0) return { version, nodeId, topology: null };
  const cannot = (why: string) =>
    new DrillError(`cannot read the node's topology to put it back afterwards (${why}); give --keep to drill it anyway and leave it as the drill leaves it`);
  const r = await command(ctl, ["CLUSTER", "NODES"], 5000).catch((e) => {
    throw cannot(`CLUSTER NODES: ${(e as Error).message}`);
  });
  if (!Buffer.isBuffer(r)) throw cannot(`CLUSTER NODES answered ${replyText(r)}`);
  try {
    return { version, nodeId, topology: topologyFromClusterNodes(parseClusterNodes(r.toString("utf8"))) };
  } catch (e) {
    throw cannot(`CLUSTER NODES: ${(e as Error).message}`);
  }
}

/** "slave of <host:port>", "a master of slots 0-16383", … : the node's place in `t`. */
function placeOf(t: Topology, id: string | null): string {
  const me = id ? nodeById(t, id) : null;
  if (!me) return "not in it";
  if (me.role === "master") return me.slots.length ? `a master of slots ${me.slots.map(formatSlotRange).join(" ")}` : "a master without slots";
  const m = nodeById(t, me.masterId);
  return `slave of ${m ? addrText(m) : me.masterId.slice(0, 8) + "…"}`;
}

/**
 * Push `saved` back to the node at `addr` as max(its version now, `lastVersion`) + 1, on a
 * fresh connection under connect and reply deadlines (the drill's own connection may be gone
 * after a hang). Never throws: a failure is reported in the result.
 */
export async function restoreTopology(addr: NodeAddr, auth: string | undefined, saved: SavedTopology, lastVersion: number): Promise<RestoreResult> {
  if (!saved.topology) {
    return {
      status: "nothing",
      detail: `the node had no topology before the drill (CLUSTERX VERSION ${saved.version}): nothing to put back; it stays as the drill left it (version ${lastVersion})`,
      version: lastVersion,
      nodes: null,
    };
  }
  const nodes = formatNodes(saved.topology);
  let conn: Conn | null = null;
  try {
    conn = await openNode(addr, "the node under test", { auth, connectMs: 3000 });
    const ver = await command(conn, ["CLUSTERX", "VERSION"], 5000);
    const v = Math.max(clusterVersion(ver) ?? lastVersion, lastVersion) + 1;
    const r = await command(conn, ["CLUSTERX", "SETNODES", nodes, String(v)], 10_000);
    if (!(r instanceof SimpleString)) throw new Error(`SETNODES version ${v} replied ${replyText(r)}`);
    return {
      status: "restored",
      detail: `topology version ${saved.version} put back as version ${v} (${count(saved.topology.nodes.length, "node")}; the node: ${placeOf(saved.topology, saved.nodeId)})`,
      version: v,
      nodes,
    };
  } catch (e) {
    return {
      status: "failed",
      detail: `could not put back topology version ${saved.version}: ${(e as Error).message}; the node stays as the drill left it (the topology is in the --json result, restore.nodes)`,
      version: lastVersion,
      nodes,
    };
  } finally {
    conn?.destroy();
  }
}

/** The result when --keep leaves the node as the drill left it. */
export function kept(lastVersion: number): RestoreResult {
  return { status: "kept", detail: `--keep: the node stays as the drill left it (topology version ${lastVersion})`, version: lastVersion, nodes: null };
}
