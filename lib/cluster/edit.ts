/**
 * Failover edits of a topology, as pure functions: promote a replica to the master of its
 * master's slots, remove a node. Each returns a new topology (the input is not changed) or
 * throws TopologyEditError with a message in Kvrocks' style ("The node isn't a master").
 */
import { formatSlotRange, nodeById, replicasOf, type ClusterNode, type Topology } from "./topology.ts";

/** Messages of a refused edit (Kvrocks' wording where Kvrocks has one). */
export const EDIT_MSG = {
  noNode: "Invalid cluster node id",
  notSlave: "The node isn't a slave",
  noMaster: "Can't find the master node id",
  ownsSlots: "Can't remove a node that still owns slots",
  hasReplicas: "Can't remove a node that still has replicas",
} as const;

/** An edit the topology does not allow: which edit, of which node, Kvrocks' message and why. */
export class TopologyEditError extends Error {
  constructor(
    /** "promote" or "remove". */
    readonly edit: "promote" | "remove",
    readonly id: string,
    /** A message of EDIT_MSG. */
    readonly kvrocksMessage: string,
    /** What makes it so, and what to do instead. */
    readonly detail: string,
  ) {
    super(`${kvrocksMessage} (${detail})`);
    this.name = "TopologyEditError";
  }
}

const slotsText = (n: ClusterNode) => n.slots.map(formatSlotRange).join(" ");
const short = (id: string) => `${id.slice(0, 12)}…`;

/**
 * Promote the replica `id`: it becomes a master serving its master's slots (in the same order);
 * its old master becomes a replica of it, or leaves the topology with `dropOld` (a dead master
 * that could not be pushed to); the old master's other replicas follow the new master. Node
 * order is kept.
 */
export function promoteReplica(t: Topology, id: string, opts: { dropOld?: boolean } = {}): Topology {
  const node = nodeById(t, id);
  if (!node) throw new TopologyEditError("promote", id, EDIT_MSG.noNode, `no node ${id} in the topology`);
  if (node.role !== "slave") {
    const what = node.slots.length ? `it is a master of slots ${slotsText(node)}` : "it is a master";
    throw new TopologyEditError("promote", id, EDIT_MSG.notSlave, `${what}; promote one of its replicas instead`);
  }
  const old = nodeById(t, node.masterId);
  if (!old) {
    throw new TopologyEditError("promote", id, EDIT_MSG.noMaster, `its master ${node.masterId} is not in the topology, so there are no slots to take over`);
  }
  const nodes: ClusterNode[] = [];
  for (const n of t.nodes) {
    if (n === node) nodes.push({ ...n, role: "master", masterId: "-", slots: old.slots.map(([a, b]) => [a, b] as [number, number]) });
    else if (n === old) {
      if (!opts.dropOld) nodes.push({ ...n, role: "slave", masterId: id, slots: [] });
    } else if (n.role === "slave" && n.masterId === old.id) nodes.push({ ...n, masterId: id, slots: [] });
    else nodes.push({ ...n, slots: n.slots.map(([a, b]) => [a, b] as [number, number]) });
  }
  return { nodes };
}

/**
 * Remove the node `id`. Refused for a master that still owns slots (they would be served by no
 * one) or that replicas still follow (they would follow no one).
 */
export function removeNode(t: Topology, id: string): Topology {
  const node = nodeById(t, id);
  if (!node) throw new TopologyEditError("remove", id, EDIT_MSG.noNode, `no node ${id} in the topology`);
  if (node.role === "master" && node.slots.length > 0) {
    throw new TopologyEditError(
      "remove",
      id,
      EDIT_MSG.ownsSlots,
      `it serves slots ${slotsText(node)}; promote one of its replicas first (--promote <replica> --drop-old), or move its slots to another master`,
    );
  }
  const followers = replicasOf(t, id);
  if (node.role === "master" && followers.length > 0) {
    throw new TopologyEditError(
      "remove",
      id,
      EDIT_MSG.hasReplicas,
      `${followers.map((f) => short(f.id)).join(", ")} follow${followers.length === 1 ? "s" : ""} it; remove or move ${followers.length === 1 ? "it" : "them"} first`,
    );
  }
  return { nodes: t.nodes.filter((n) => n.id !== id).map((n) => ({ ...n, slots: n.slots.map(([a, b]) => [a, b] as [number, number]) })) };
}
