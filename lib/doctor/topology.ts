/**
 * Reading the CLUSTER NODES replies of a survey: nodes mostly report the same topology, so each
 * distinct content is parsed once and kept once (its entries and its key shared by every sample
 * holding it). A large cluster then costs one topology in memory and one parse per content, not
 * one per node.
 */
import { parseClusterNodes, topologyKey, type ClusterNodesEntry, type ClusterNodesView } from "../cluster/index.ts";

export interface ReadTopology {
  /** The node's view: shared entries, its own `myself` and version. */
  view: ClusterNodesView;
  /** The content as sorted nodes-string lines joined by "\n": equal keys = the same topology. */
  key: string;
}

/** Parse a CLUSTER NODES reply into a view and its key; throws ClusterNodesError. */
export type TopologyReader = (reply: Buffer) => ReadTopology;

/**
 * The reply as text without what differs between nodes holding the same topology — the `myself,`
 * flag, and ping-sent / pong-received, which Kvrocks prints as the same two millisecond times on
 * every line — and the id on the myself line. A few native string operations: most replies are
 * then recognised without being parsed. Times that do not look like Kvrocks' (two numbers of 10+
 * digits) are left in: such replies are only recognised when identical.
 */
export function perNodeParts(reply: Buffer): { key: string; myId: string | null } {
  let text = reply.toString("latin1");
  let myId: string | null = null;
  const m = text.indexOf(" myself,");
  if (m >= 0) {
    const line = text.lastIndexOf("\n", m) + 1;
    myId = text.slice(line, text.indexOf(" ", line));
    text = text.slice(0, m + 1) + text.slice(m + 8);
  }
  // The 5th and 6th fields of the first line.
  let sp = -1;
  for (let k = 0; k < 4 && (sp = text.indexOf(" ", sp + 1)) >= 0; k++);
  const end = sp < 0 ? -1 : text.indexOf(" ", text.indexOf(" ", sp + 1) + 1);
  const times = end < 0 ? "" : text.slice(sp, end + 1);
  if (/^ \d{10,} \d{10,} $/.test(times)) text = text.replaceAll(times, " ");
  return { key: text, myId };
}

/** A reader with its own caches (one per survey). */
export function topologyReader(): TopologyReader {
  const byText = new Map<string, { entries: ClusterNodesEntry[]; key: string; version: number | null }>();
  const byKey = new Map<string, { entries: ClusterNodesEntry[]; key: string }>();
  return (reply) => {
    const { key: normal, myId } = perNodeParts(reply);
    let t = byText.get(normal);
    if (!t) {
      const v = parseClusterNodes(reply.toString("utf8"));
      const key = topologyKey(v.entries);
      let shared = byKey.get(key);
      if (!shared) {
        // Kept for every node holding this content: nothing of this node's own.
        const entries = v.entries.map((e) => ({ ...e, myself: false, flags: e.flags.filter((f) => f !== "myself"), pingSent: null, pongRecv: null, epoch: null }));
        shared = { entries, key };
        byKey.set(key, shared);
      }
      t = { ...shared, version: v.version };
      byText.set(normal, t);
    }
    const myself = myId ? (t.entries.find((e) => e.id === myId) ?? null) : null;
    return { view: { entries: t.entries, myself, version: t.version }, key: t.key };
  };
}
