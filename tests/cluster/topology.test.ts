import { describe, expect, test } from "bun:test";
import {
  describeTopologyError,
  findMyself,
  formatClusterNodes,
  formatNodes,
  masterOf,
  matchListeningIp,
  MSG,
  parseNodes,
  replicasOf,
  slotOwner,
  TopologyError,
  type Topology,
} from "../../lib/cluster/index.ts";
import { randomTopology, rng } from "./random.ts";

const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(40);
const D = "d".repeat(40);
const E = "e".repeat(40);
const F = "f".repeat(40);
const ID39 = "a".repeat(39);
const ID41 = "a".repeat(41);

function parseError(text: string): TopologyError {
  try {
    parseNodes(text);
  } catch (e) {
    if (e instanceof TopologyError) return e;
    throw e;
  }
  throw new Error(`expected a TopologyError for ${JSON.stringify(text)}`);
}

describe("parseNodes rejects with Kvrocks' exact message, line and field", () => {
  const cases: Array<[string, string, string, number, string | undefined]> = [
    // name, text, message, line, field
    ["empty string", "", MSG.nodesInfo, 1, undefined],
    ["only blank lines", "\n\n\n", MSG.nodesInfo, 1, undefined],
    ["fewer than 5 fields", `${A} 127.0.0.1 7000 master`, MSG.nodesInfo, 1, "fields"],
    ["id of 39 chars", `${ID39} 127.0.0.1 7000 master - 0-100`, MSG.nodeId, 1, "id"],
    ["id of 41 chars", `${ID41} 127.0.0.1 7000 master -`, MSG.nodeId, 1, "id"],
    ["port 99999", `${A} 127.0.0.1 99999 master -`, MSG.port, 1, "port"],
    ["port -1", `${A} 127.0.0.1 -1 master -`, MSG.port, 1, "port"],
    ["port 65536", `${A} 127.0.0.1 65536 master -`, MSG.port, 1, "port"],
    ["port not a number", `${A} 127.0.0.1 70x0 master -`, MSG.port, 1, "port"],
    ["port with trailing \\r", `${A} 127.0.0.1 7000\r master -`, MSG.port, 1, "port"],
    ["role leader", `${A} 127.0.0.1 7000 leader -`, MSG.role, 1, "role"],
    ["role empty-ish", `${A} 127.0.0.1 7000 mastr -`, MSG.role, 1, "role"],
    ["master whose master_id is an id", `${A} 127.0.0.1 7000 master ${B} 0-10`, MSG.nodeId, 1, "master_id"],
    ["slave whose master_id is -", `${A} 127.0.0.1 7000 slave -`, MSG.nodeId, 1, "master_id"],
    ["slave whose master_id is 39 chars", `${A} 127.0.0.1 7000 slave ${ID39}`, MSG.nodeId, 1, "master_id"],
    ["slave with slots", `${B} 127.0.0.1 7000 master -\n${A} 127.0.0.1 7001 slave ${B} 0-10`, MSG.nodesInfo, 2, "fields"],
    ["slot 16384", `${A} 127.0.0.1 7000 master - 16384`, MSG.slotRange, 1, "slot"],
    ["slot x", `${A} 127.0.0.1 7000 master - x`, MSG.slotRange, 1, "slot"],
    ["range 9-3", `${A} 127.0.0.1 7000 master - 9-3`, MSG.slotRange, 1, "slot"],
    ["range 3-3", `${A} 127.0.0.1 7000 master - 3-3`, MSG.slotRange, 1, "slot"],
    ["range 1-2-3", `${A} 127.0.0.1 7000 master - 1-2-3`, MSG.slotRange, 1, "slot"],
    ["range 0-16384", `${A} 127.0.0.1 7000 master - 0-16384`, MSG.slotRange, 1, "slot"],
    ["slot field of dashes", `${A} 127.0.0.1 7000 master - --`, MSG.slotRange, 1, "slot"],
    ["CRLF line end leaves 1\\r", `${A} 127.0.0.1 7000 master - 1\r\n${B} 127.0.0.1 7001 master - 2`, MSG.slotRange, 1, "slot"],
    ["missing newline between entries", `${A} 127.0.0.1 7000 master - 0-100 ${B} 127.0.0.1 7001 master - 101-200`, MSG.missingNewline, 1, "slot"],
    ["overlap between masters", `${A} 127.0.0.1 7000 master - 0-100\n${B} 127.0.0.1 7001 master - 100-200`, MSG.overlap, 2, "slot"],
    ["overlap within one master", `${A} 127.0.0.1 7000 master - 5 5`, MSG.overlap, 1, "slot"],
    ["overlap of a single slot in a range", `${A} 127.0.0.1 7000 master - 7\n\n${B} 127.0.0.1 7001 master - 0-16383`, MSG.overlap, 3, "slot"],
    ["error on a later line counts blank lines", `${A} 127.0.0.1 7000 master -\n\n\n${B} h 1 boss -`, MSG.role, 4, "role"],
  ];
  for (const [name, text, message, line, field] of cases) {
    test(name, () => {
      const e = parseError(text);
      expect(e.message).toBe(message);
      expect(e.kvrocksMessage).toBe(message);
      expect(e.line).toBe(line);
      expect(e.field).toBe(field);
    });
  }

  test("checks run in Kvrocks' order: id before port before role", () => {
    expect(parseError(`${ID39} h 99999 leader -`).message).toBe(MSG.nodeId);
    expect(parseError(`${A} h 99999 leader -`).message).toBe(MSG.port);
    expect(parseError(`${A} h 1 leader ${B}`).message).toBe(MSG.role);
    expect(parseError(`${A} h 1 slave - 1 2`).message).toBe(MSG.nodeId); // master_id before field count
  });

  test("the first bad line wins", () => {
    const e = parseError(`${A} h 1 master - 0-10\n${B} h 99999 master -\n${C} h 1 leader -`);
    expect([e.line, e.field, e.message]).toEqual([2, "port", MSG.port]);
  });

  test("describeTopologyError names line, field and value", () => {
    const e = parseError(`${A} 127.0.0.1 7000 master -\n${B} 127.0.0.1 99999 master -`);
    expect(describeTopologyError(e)).toBe(`line 2, field port ("99999"): ${MSG.port}`);
  });
});

describe("parseNodes accepts what Kvrocks accepts", () => {
  test("3 masters with replicas", () => {
    const text = [
      `${A} 10.0.0.1 6666 master - 0-5460`,
      `${B} 10.0.0.2 6666 master - 5461-10922`,
      `${C} 10.0.0.3 6666 master - 10923-16383`,
      `${D} 10.0.0.4 6666 slave ${A}`,
      `${E} 10.0.0.5 6666 slave ${B}`,
      `${F} 10.0.0.6 6666 slave ${C}`,
    ].join("\n");
    const t = parseNodes(text);
    expect(t.nodes).toHaveLength(6);
    expect(t.nodes[0]).toEqual({ id: A, host: "10.0.0.1", port: 6666, role: "master", masterId: "-", slots: [[0, 5460]] });
    expect(t.nodes[3]).toEqual({ id: D, host: "10.0.0.4", port: 6666, role: "slave", masterId: A, slots: [] });
    expect(formatNodes(t)).toBe(text);
  });

  test("single-slot masters", () => {
    const text = `${A} h 1 master - 0\n${B} h 2 master - 1 3 16383\n${C} h 3 master - 2`;
    const t = parseNodes(text);
    expect(t.nodes[1].slots).toEqual([
      [1, 1],
      [3, 3],
      [16383, 16383],
    ]);
    expect(formatNodes(t)).toBe(text);
  });

  test("the full 0-16383 range on one master", () => {
    const t = parseNodes(`${A} 127.0.0.1 7000 master - 0-16383`);
    expect(t.nodes[0].slots).toEqual([[0, 16383]]);
    expect(slotOwner(t, 0)?.id).toBe(A);
    expect(slotOwner(t, 16383)?.id).toBe(A);
  });

  test("a master with no slots", () => {
    expect(parseNodes(`${A} h 7000 master -`).nodes[0].slots).toEqual([]);
  });

  test("blank lines, repeated spaces, a trailing newline", () => {
    const t = parseNodes(`\n\n${A}   h  7000 master   -  0-10  \n\n${B} h 7001  slave ${A}\n`);
    expect(formatNodes(t)).toBe(`${A} h 7000 master - 0-10\n${B} h 7001 slave ${A}`);
  });

  test("roles in any case, replica as an alias of slave", () => {
    const t = parseNodes(`${A} h 1 MASTER -\n${B} h 2 Replica ${A}\n${C} h 3 SLAVE ${A}\n${D} h 4 rEpLiCa ${A}`);
    expect(t.nodes.map((n) => n.role)).toEqual(["master", "slave", "slave", "slave"]);
    expect(formatNodes(t)).toBe(`${A} h 1 master -\n${B} h 2 slave ${A}\n${C} h 3 slave ${A}\n${D} h 4 slave ${A}`);
  });

  test("numbers as strtol reads them: sign, leading zeros, leading whitespace", () => {
    const t = parseNodes(`${A} h +07000 master - 00-\t10 +12`);
    expect(t.nodes[0].port).toBe(7000);
    // "-0": split on '-' drops the empty piece, leaving "0" — an overlap with 00-10.
    expect(parseError(`${A} h 1 master - 00-10 -0`).message).toBe(MSG.overlap);
    expect(parseNodes(`${A} h 1 master - 20- -30`).nodes[0].slots).toEqual([
      [20, 20],
      [30, 30],
    ]);
    expect(parseNodes(`${A} h -0 master -`).nodes[0].port).toBe(0);
    expect(parseNodes(`${A} h 65535 master -`).nodes[0].port).toBe(65535);
  });

  test("a slave whose master is not in the list is accepted", () => {
    const t = parseNodes(`${A} h 1 slave ${B}`);
    expect(masterOf(t, t.nodes[0])).toBeNull();
  });

  test("a 40-hex field inside a range is a range error, not a missing newline", () => {
    expect(parseError(`${A} h 1 master - 1-${B}`).message).toBe(MSG.slotRange);
  });
});

describe("helpers", () => {
  const t = parseNodes(
    [`${A} 127.0.0.1 7000 master - 0-99 200`, `${B} 127.0.0.2 7000 master - 100-199`, `${C} 127.0.0.1 7001 slave ${A}`, `${D} 127.0.0.1 7002 slave ${A}`].join(
      "\n",
    ),
  );
  test("slotOwner", () => {
    expect(slotOwner(t, 50)?.id).toBe(A);
    expect(slotOwner(t, 150)?.id).toBe(B);
    expect(slotOwner(t, 200)?.id).toBe(A);
    expect(slotOwner(t, 201)).toBeNull();
  });
  test("masterOf and replicasOf", () => {
    expect(masterOf(t, t.nodes[2])?.id).toBe(A);
    expect(masterOf(t, t.nodes[0])).toBeNull();
    expect(replicasOf(t, A).map((n) => n.id)).toEqual([C, D]);
  });
  test("findMyself by id wins over address", () => {
    expect(findMyself(t, { id: D, port: 7000, binds: ["127.0.0.1"] })?.id).toBe(D);
  });
  test("findMyself by port and bind address", () => {
    expect(findMyself(t, { port: 7000, binds: ["127.0.0.2"] })?.id).toBe(B);
    expect(findMyself(t, { port: 7001, binds: ["10.1.1.1", "127.0.0.1"] })?.id).toBe(C);
    expect(findMyself(t, { port: 7000, binds: ["10.1.1.1"] })).toBeNull();
    expect(findMyself(t, { port: 7009, binds: ["127.0.0.1"] })).toBeNull();
    expect(findMyself(t, { id: E, port: 7002, binds: ["127.0.0.1"] })?.id).toBe(D);
  });
  test("a wildcard bind matches a local interface address only", () => {
    expect(matchListeningIp(["0.0.0.0"], "127.0.0.1")).toBe(true);
    expect(matchListeningIp(["0.0.0.0"], "192.0.2.123")).toBe(false);
    expect(matchListeningIp(["127.0.0.1"], "127.0.0.2")).toBe(false);
  });
  test("formatClusterNodes prints Kvrocks' CLUSTER NODES lines", () => {
    const text = formatClusterNodes(t, C, 28, 1795547720117);
    expect(text.split("\n")).toEqual([
      `${A} 127.0.0.1:7000@17000 master - 1795547720116 1795547720117 28 connected 0-99 200`,
      `${B} 127.0.0.2:7000@17000 master - 1795547720116 1795547720117 28 connected 100-199`,
      `${C} 127.0.0.1:7001@17001 myself,slave ${A} 1795547720116 1795547720117 28 connected`,
      `${D} 127.0.0.1:7002@17002 slave ${A} 1795547720116 1795547720117 28 connected`,
      "",
    ]);
  });
  test("formatClusterNodes merges contiguous slots and prints singles as N", () => {
    const u = parseNodes(`${C} 127.0.0.1:x 7000 master - 1 3 2 5-9 10\n${A} h 7001 master -`);
    expect(formatClusterNodes(u, C, 1, 1000)).toBe(
      `${C} 127.0.0.1:x:7000@17000 myself,master - 999 1000 1 connected 1-3 5-10\n${A} h:7001@17001 master - 999 1000 1 connected\n`,
    );
  });
});

describe("round trip", () => {
  test("500 random valid topologies parse and format back identically", () => {
    for (let seed = 1; seed <= 500; seed++) {
      const t = randomTopology(rng(seed));
      const text = formatNodes(t);
      let back: Topology;
      try {
        back = parseNodes(text);
      } catch (e) {
        throw new Error(`seed ${seed}: ${(e as Error).message}\n${text}`);
      }
      expect(back).toEqual(t);
      expect(formatNodes(back)).toBe(text);
    }
  });

  test("every slot of a random topology has the owner formatNodes says", () => {
    const t = randomTopology(rng(4242));
    const back = parseNodes(formatNodes(t));
    for (let s = 0; s < 16384; s += 97) {
      const want = t.nodes.find((n) => n.role === "master" && n.slots.some(([a, b]) => s >= a && s <= b));
      expect(slotOwner(back, s)?.id ?? null).toBe(want?.id ?? null);
    }
  });
});
