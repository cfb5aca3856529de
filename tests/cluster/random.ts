/** Random valid topologies for property tests of lib/cluster. */
import type { ClusterNode, Topology } from "../../lib/cluster/index.ts";

/** A small deterministic PRNG (mulberry32), so a failing seed can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random valid topology: 1–6 masters sharing some of the slots, 0–7 slaves (a few of an absent master). */
export function randomTopology(r: () => number): Topology {
  const int = (n: number) => Math.floor(r() * n);
  const hex = "0123456789abcdefABCDEF";
  const ids = new Set<string>();
  const newId = () => {
    for (;;) {
      let s = "";
      for (let i = 0; i < 40; i++) s += hex[int(hex.length)];
      if (!ids.has(s)) {
        ids.add(s);
        return s;
      }
    }
  };
  const hosts = ["127.0.0.1", "10.0.0.7", "::1", "node-3.example", "fe80::1%eth0"];
  const masters = 1 + int(6);
  // Cut 0..16383 into contiguous chunks, shuffle them among masters (some get none).
  const cuts = new Set<number>();
  const pieces = 1 + int(30);
  while (cuts.size < pieces - 1) cuts.add(1 + int(16383));
  const bounds = [0, ...[...cuts].sort((x, y) => x - y), 16384];
  const chunks: Array<[number, number]> = [];
  for (let i = 0; i + 1 < bounds.length; i++) if (r() < 0.85) chunks.push([bounds[i], bounds[i + 1] - 1]);
  const nodes: ClusterNode[] = [];
  const masterIds: string[] = [];
  for (let m = 0; m < masters; m++) {
    const id = newId();
    masterIds.push(id);
    nodes.push({ id, host: hosts[int(hosts.length)], port: int(65536), role: "master", masterId: "-", slots: [] });
  }
  for (const c of chunks) nodes[int(masters)].slots.push(c);
  const slaves = int(8);
  for (let s = 0; s < slaves; s++) {
    const masterId = r() < 0.9 ? masterIds[int(masters)] : newId();
    nodes.push({ id: newId(), host: hosts[int(hosts.length)], port: int(65536), role: "slave", masterId, slots: [] });
  }
  // Interleave slaves and masters.
  for (let i = nodes.length - 1; i > 0; i--) {
    const j = int(i + 1);
    [nodes[i], nodes[j]] = [nodes[j], nodes[i]];
  }
  return { nodes };
}
