/**
 * --from host:port: the topology a live node holds, read with CLUSTERX VERSION and CLUSTER NODES
 * in one round trip under the connect and reply deadlines, and turned into a nodes string
 * (lib/cluster's conversion). Only reads: nothing is changed on the node.
 */
import { addrText, authHint, clusterVersion, NodeFailure, withSession, type NodeAddr, type SessionOptions } from "../client/index.ts";
import { ClusterNodesError, nodesTextFromClusterNodes, TopologyError } from "../cluster/index.ts";
import { replyText, RespError } from "../resp/index.ts";
import type { TopologyInput } from "./input.ts";

/** The node could not be read: nothing was sent anywhere (exit 4). */
export class SourceUnavailable extends Error {
  constructor(
    readonly address: string,
    readonly reason: string,
  ) {
    super(`--from ${address}: cannot read the topology: ${reason}; nothing was sent`);
    this.name = "SourceUnavailable";
  }
}

/** What --from read: the nodes string and the node's CLUSTERX VERSION. */
export interface FromNode extends TopologyInput {
  address: string;
  version: number;
}

/** Why an error reply means there is no topology to read, and what to do. */
function explain(r: RespError, phase: string): string {
  if (r.prefix === "CLUSTERDOWN") return "the node has no topology yet (CLUSTERDOWN): give the topology with --nodes-file, --nodes or --node";
  if (/cluster mode is not enabled/i.test(r.message)) return "the node is not in cluster mode (cluster-enabled no): it has no topology to read";
  return `${phase} replied -${r.message}${authHint(phase, r)}`;
}

/** Read the topology of the node at `addr`; throws SourceUnavailable. */
export async function readFromNode(addr: NodeAddr, o: SessionOptions): Promise<FromNode> {
  const address = addrText(addr);
  let replies;
  try {
    replies = await withSession(addr, o, async (s) => (await s.pipeline("cluster", [["CLUSTERX", "VERSION"], ["CLUSTER", "NODES"]])).replies);
  } catch (e) {
    if (e instanceof NodeFailure) throw new SourceUnavailable(address, `${e.phase}: ${e.message}`);
    throw e;
  }
  const [version, nodes] = replies;
  if (version instanceof RespError) throw new SourceUnavailable(address, explain(version, "CLUSTERX VERSION"));
  if (nodes instanceof RespError) throw new SourceUnavailable(address, explain(nodes, "CLUSTER NODES"));
  const v = clusterVersion(version);
  if (v === null) throw new SourceUnavailable(address, `CLUSTERX VERSION replied ${JSON.stringify(replyText(version).slice(0, 80))}, not a version`);
  if (v < 0) throw new SourceUnavailable(address, "the node has no topology yet (CLUSTERX VERSION -1): give the topology with --nodes-file, --nodes or --node");
  try {
    return { source: `--from ${address}`, address, version: v, text: nodesTextFromClusterNodes(replyText(nodes)) };
  } catch (e) {
    if (e instanceof ClusterNodesError || e instanceof TopologyError) throw new SourceUnavailable(address, `its CLUSTER NODES is not a topology kvr can push: ${e.message}`);
    throw e;
  }
}
