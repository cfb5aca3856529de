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

test("perNodeParts drops the myself flag, ping-sent and pong-received, and names the myself id", () => {
  const a = perNodeParts(reply(A, 3, 1000));
  const b = perNodeParts(reply(B, 3, 987654321));
  expect(a.myId).toBe(A);
  expect(b.myId).toBe(B);
  expect(a.normal.equals(b.normal)).toBe(true);
  expect(a.normal.toString()).toBe(`${A} 127.0.0.1:7000@17000 master - 3 connected 0-16383\n${B} 127.0.0.1:7001@17001 slave ${A} 3 connected\n${C} ::1:7002@17002 slave ${A} 3 connected\n`);
  expect(perNodeParts(reply(null, 3, 1)).myId).toBeNull();
  expect(perNodeParts(Buffer.from("short line\n")).normal.toString()).toBe("short line\n");
});

test("nodes holding one topology share its entries and key; myself and version stay each node's own", () => {
  const read = topologyReader();
  const a = read(reply(A, 3, 1000));
  const b = read(reply(B, 3, 2000));
  const c = read(reply(C, 4, 3000));
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
