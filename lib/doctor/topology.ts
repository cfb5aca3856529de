/**
 * Reading the CLUSTER NODES replies of a survey: nodes mostly report the same topology, so each
 * distinct content is parsed once and kept once (its entries and its key shared by every sample
 * holding it). A large cluster then costs one topology in memory and one parse per content, not
 * one per node.
 */
import { canonicalLine, parseClusterNodes, type ClusterNodesEntry, type ClusterNodesView } from "../cluster/index.ts";

export interface ReadTopology {
  /** The node's view: shared entries, its own `myself` and version. */
  view: ClusterNodesView;
  /** The content as sorted nodes-string lines joined by "\n": equal keys = the same topology. */
  key: string;
}

/** Parse a CLUSTER NODES reply into a view and its key; throws ClusterNodesError. */
export type TopologyReader = (reply: Buffer) => ReadTopology;

const SP = 0x20;
const LF = 0x0a;
const MYSELF = Buffer.from("myself,");

/**
 * The reply without what differs between nodes holding the same topology (the `myself,` flag,
 * ping-sent and pong-received), and the id on the myself line. Works on bytes: most replies
 * are then recognised without being decoded or parsed at all.
 */
export function perNodeParts(reply: Buffer): { normal: Buffer; myId: string | null } {
  const out = Buffer.allocUnsafe(reply.length);
  let n = 0;
  let myId: string | null = null;
  for (let pos = 0; pos < reply.length; ) {
    let end = reply.indexOf(LF, pos);
    if (end < 0) end = reply.length;
    // Fields: id, address, flags, master, ping, pong, rest.
    const f1 = reply.indexOf(SP, pos);
    const f2 = f1 < 0 || f1 > end ? -1 : reply.indexOf(SP, f1 + 1);
    const f3 = f2 < 0 || f2 > end ? -1 : reply.indexOf(SP, f2 + 1);
    const f4 = f3 < 0 || f3 > end ? -1 : reply.indexOf(SP, f3 + 1);
    const f5 = f4 < 0 || f4 > end ? -1 : reply.indexOf(SP, f4 + 1);
    const f6 = f5 < 0 || f5 > end ? -1 : reply.indexOf(SP, f5 + 1);
    if (f6 < 0 || f6 > end) {
      n += reply.copy(out, n, pos, Math.min(end + 1, reply.length));
    } else {
      n += reply.copy(out, n, pos, f2 + 1);
      let flags = f2 + 1;
      if (reply.subarray(flags, f3).indexOf(MYSELF) === 0) {
        myId = reply.toString("latin1", pos, f1);
        flags += MYSELF.length;
      }
      n += reply.copy(out, n, flags, f4 + 1);
      n += reply.copy(out, n, f6 + 1, Math.min(end + 1, reply.length));
    }
    pos = end + 1;
  }
  return { normal: out.subarray(0, n), myId };
}

/** A reader with its own caches (one per survey). */
export function topologyReader(): TopologyReader {
  const byHash = new Map<bigint | number, { normal: Buffer; entries: ClusterNodesEntry[]; key: string; version: number | null }>();
  const byKey = new Map<string, { entries: ClusterNodesEntry[]; key: string }>();
  return (reply) => {
    const { normal, myId } = perNodeParts(reply);
    const h = Bun.hash(normal);
    let t = byHash.get(h);
    if (!t || !t.normal.equals(normal)) {
      const v = parseClusterNodes(reply.toString("utf8"));
      const key = v.entries.map(canonicalLine).sort().join("\n");
      let shared = byKey.get(key);
      if (!shared) {
        // Kept for every node holding this content: nothing of this node's own.
        const entries = v.entries.map((e) => ({ ...e, myself: false, flags: e.flags.filter((f) => f !== "myself"), pingSent: null, pongRecv: null, epoch: null }));
        shared = { entries, key };
        byKey.set(key, shared);
      }
      t = { normal: Buffer.from(normal), ...shared, version: v.version };
      byHash.set(h, t);
    }
    const myself = myId ? (t.entries.find((e) => e.id === myId) ?? null) : null;
    return { view: { entries: t.entries, myself, version: t.version }, key: t.key };
  };
}
