/** The survey's CLUSTER NODES reader: one parse and one copy per distinct topology, each node's own myself and version. */
import { expect, test } from "bun:test";
import { ClusterNodesError, formatClusterNodes, parseClusterNodes, parseNodes } from "../../lib/cluster/index.ts";
import { perNodeParts, topologyReader } from "../../lib/doctor/topology.ts";
import { thrown } from "../helpers/errors.ts";

const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(40);
const t = parseNodes(`${A} 127.0.0.1 7000 master - 0-16383\n${B} 127.0.0.1 7001 slave ${A}\n${C} ::1 7002 slave ${A}`);
const reply = (myself: string | null, version: number, now: number) => Buffer.from(formatClusterNodes(t, myself, version, now));

test("perNodeParts drops the myself flag and Kvrocks' ping/pong times, nothing else, and names the myself id", () => {
  const a = perNodeParts(reply(A, 3, 1_795_547_720_117));
  const b = perNodeParts(reply(B, 3, 1_795_547_999_999));
  expect([a.myId, b.myId, perNodeParts(reply(null, 3, 1_795_547_720_117)).myId]).toEqual([A, B, null]);
  expect(b.key).toBe(a.key);
  expect(a.key).toBe(`${A} 127.0.0.1:7000@17000 master - 3 connected 0-16383\n${B} 127.0.0.1:7001@17001 slave ${A} 3 connected\n${C} ::1:7002@17002 slave ${A} 3 connected\n`);
  // Any other byte changes it: the version, a port, a slot, a role.
  expect(perNodeParts(reply(A, 4, 1_795_547_720_117)).key).not.toBe(a.key);
  for (const [from, to] of [[":7001@", ":7009@"], ["0-16383", "0-16382"], [" slave ", " master "]]) {
    expect(perNodeParts(Buffer.from(reply(A, 3, 1_795_547_720_117).toString().replace(from, to))).key).not.toBe(a.key);
  }
  // Times that are not Kvrocks' stay in the key.
  expect(perNodeParts(reply(A, 3, 1000)).key).toContain(" 999 1000 ");
  expect(perNodeParts(Buffer.from("short line\n"))).toEqual({ key: "short line\n", myId: null });
});

test("nodes holding one topology share its entries and key; myself and version stay each node's own", () => {
  const read = topologyReader();
  const a = read(reply(A, 3, 1_795_547_720_117));
  const b = read(reply(B, 3, 1_795_547_720_999));
  const c = read(reply(C, 4, 1_795_547_721_000));
  expect(b.view.entries).toBe(a.view.entries);
  expect(c.view.entries).toBe(a.view.entries);
  expect(b.key).toBe(a.key);
  expect([a.view.myself?.id, b.view.myself?.id, c.view.myself?.id]).toEqual([A, B, C]);
  expect([a.view.version, b.view.version, c.view.version]).toEqual([3, 3, 4]);
  // Same content as a fresh parse (roles, masters, slots), the lines in any order.
  const fresh = parseClusterNodes(reply(A, 3, 1000).toString());
  expect(a.view.entries.map((e) => [e.id, e.host, e.port, e.role, e.masterId, e.slots])).toEqual(fresh.entries.map((e) => [e.id, e.host, e.port, e.role, e.masterId, e.slots]));
  const reversed = Buffer.from(reply(B, 3, 5).toString().trimEnd().split("\n").reverse().join("\n") + "\n");
  expect(read(reversed).key).toBe(a.key);
  expect(thrown(ClusterNodesError, () => read(Buffer.from(`${A} nohostport master - 0 1 3 connected\n`))).line).toBe(1);
});
