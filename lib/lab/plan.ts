/**
 * The lab's cluster, decided before anything starts: node names and ids, and the topology once
 * the ports are known (every slot served, split evenly among the masters; each master's replicas
 * follow it). Pure.
 */
import { CLUSTER_SLOTS, newNodeId, type ClusterNode, type Topology } from "../cluster/index.ts";

/** One node of the lab. */
export interface LabNode {
  /** m1, m2, … for masters; m1-r1, m1-r2, … for the replicas of m1. */
  name: string;
  id: string;
  role: "master" | "slave";
  /** The master's name, for a replica. */
  of: string | null;
}

/** The nodes of a lab of `masters` masters with `replicas` replicas each, masters first. */
export function labNodes(masters: number, replicas: number, id: () => string = newNodeId): LabNode[] {
  const out: LabNode[] = [];
  for (let m = 1; m <= masters; m++) out.push({ name: `m${m}`, id: id(), role: "master", of: null });
  for (let m = 1; m <= masters; m++) for (let r = 1; r <= replicas; r++) out.push({ name: `m${m}-r${r}`, id: id(), role: "slave", of: `m${m}` });
  return out;
}

/** Slots 0–16383 split into `n` contiguous ranges, the first ones one slot larger when it does not divide. */
export function splitSlots(n: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start = 0;
  for (let i = 0; i < n; i++) {
    const size = Math.floor(CLUSTER_SLOTS / n) + (i < CLUSTER_SLOTS % n ? 1 : 0);
    out.push([start, start + size - 1]);
    start += size;
  }
  return out;
}

/** The lab's topology: nodes in `nodes` order at the given addresses. */
export function labTopology(nodes: LabNode[], addr: (n: LabNode) => { host: string; port: number }): Topology {
  const masters = nodes.filter((n) => n.role === "master");
  const slots = splitSlots(masters.length);
  const idOf = new Map(nodes.map((n) => [n.name, n.id]));
  return {
    nodes: nodes.map((n): ClusterNode => {
      const { host, port } = addr(n);
      if (n.role === "master") return { id: n.id, host, port, role: "master", masterId: "-", slots: [slots[masters.indexOf(n)]] };
      return { id: n.id, host, port, role: "slave", masterId: idOf.get(n.of!)!, slots: [] };
    }),
  };
}
