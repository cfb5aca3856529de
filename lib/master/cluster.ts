/**
 * kvr master's cluster face (with --node-id): CLUSTERX SETNODEID|SETNODES|VERSION|MYID and
 * CLUSTER NODES|INFO with Kvrocks' semantics from lib/cluster. kvr master only ever serves: a
 * topology that makes it a slave is applied (as Kvrocks applies it before replicating) and
 * answered with Kvrocks' replication-failure error.
 */
import { clusterCommand, clusterx, encodeReply, replicationFailure } from "../cluster/index.ts";
import { error } from "../resp/index.ts";
import type { MasterContext } from "./server.ts";

const NOT_CLUSTER = error("ERR Cluster mode is not enabled");

/** CLUSTERX <args> on kvr master; the reply's bytes. */
export function clusterxReply(m: MasterContext, args: string[]): Buffer {
  if (!m.cluster) return NOT_CLUSTER;
  const r = clusterx(m.cluster, args, { port: m.server.port, binds: [m.cfg.host], current: null });
  m.cluster = r.state;
  if (r.change.kind === "replicate") {
    const why = `kvr master does not replicate (the topology makes it a slave of ${r.change.host}:${r.change.port}; run a kvr replica for that node)`;
    m.out.warn(`CLUSTERX ${args[0]}: ${why}`);
    return encodeReply(replicationFailure(why));
  }
  if (args[0]?.toLowerCase() === "setnodes" && r.reply.type === "ok") m.out.info(`topology version ${r.state.version} applied`);
  return encodeReply(r.reply);
}

/** CLUSTER <args> on kvr master. */
export function clusterReply(m: MasterContext, args: string[]): Buffer {
  return encodeReply(clusterCommand(m.cluster, args));
}
