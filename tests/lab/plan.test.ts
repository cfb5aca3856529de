/** The lab's cluster plan (lib/lab/plan.ts): names, ids, slots split evenly, a topology Kvrocks accepts. */
import { expect, test } from "bun:test";
import { CLUSTER_SLOTS, formatNodes, parseNodes, slotOwner } from "../../lib/cluster/index.ts";
import { newNodeId } from "../../lib/cluster/index.ts";
import { labNodes, labTopology, splitSlots } from "../../lib/lab/plan.ts";

test("splitSlots covers 0-16383 once, in contiguous ranges differing by at most one slot", () => {
  for (const n of [1, 2, 3, 7, 16]) {
    const r = splitSlots(n);
    expect(r.length).toBe(n);
    expect(r[0][0]).toBe(0);
    expect(r[n - 1][1]).toBe(CLUSTER_SLOTS - 1);
    for (let i = 1; i < n; i++) expect(r[i][0]).toBe(r[i - 1][1] + 1);
    const sizes = r.map(([a, b]) => b - a + 1);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  }
  expect(splitSlots(3)).toEqual([
    [0, 5461],
    [5462, 10922],
    [10923, 16383],
  ]);
});

test("3 masters × 2 replicas: names, unique hex ids, each replica follows its master, a valid topology", () => {
  const nodes = labNodes(3, 2);
  expect(nodes.map((n) => n.name)).toEqual(["m1", "m2", "m3", "m1-r1", "m1-r2", "m2-r1", "m2-r2", "m3-r1", "m3-r2"]);
  expect(new Set(nodes.map((n) => n.id)).size).toBe(9);
  for (const n of nodes) expect(n.id).toMatch(/^[0-9a-f]{40}$/);
  const t = labTopology(nodes, (n) => ({ host: "127.0.0.1", port: 7000 + nodes.indexOf(n) }));
  expect(parseNodes(formatNodes(t))).toEqual(t);
  expect(slotOwner(t, 0)?.id).toBe(nodes[0].id);
  expect(slotOwner(t, 16383)?.id).toBe(nodes[2].id);
  expect(t.nodes.filter((n) => n.role === "slave").map((n) => n.masterId)).toEqual([nodes[0].id, nodes[0].id, nodes[1].id, nodes[1].id, nodes[2].id, nodes[2].id]);
  expect(newNodeId()).not.toBe(newNodeId());
});
