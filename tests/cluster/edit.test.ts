/** Failover edits (lib/cluster/edit.ts) and the CLUSTER NODES ⇄ nodes string conversion both ways. */
import { describe, expect, test } from "bun:test";
import {
  EDIT_MSG,
  formatClusterNodes,
  formatNodes,
  nodesTextFromClusterNodes,
  parseClusterNodes,
  parseNodes,
  promoteReplica,
  removeNode,
  slotOwner,
  topologyFromClusterNodes,
  TopologyEditError,
  type Topology,
} from "../../lib/cluster/index.ts";
import { thrown } from "../helpers/errors.ts";
import { randomTopology, rng } from "./random.ts";

const M1 = "1".repeat(40);
const M2 = "2".repeat(40);
const R1 = "a".repeat(40);
const R1b = "b".repeat(40);
const R2 = "c".repeat(40);

const base = (): Topology =>
  parseNodes(
    [
      `${M1} 127.0.0.1 7001 master - 0-5000 9000`,
      `${R1} 127.0.0.1 7101 slave ${M1}`,
      `${M2} 127.0.0.1 7002 master - 5001-8999 9001-16383`,
      `${R1b} 127.0.0.1 7102 slave ${M1}`,
      `${R2} 127.0.0.1 7103 slave ${M2}`,
    ].join("\n"),
  );

const editError = (fn: () => unknown) => thrown(TopologyEditError, fn);

describe("promoteReplica", () => {
  test("the replica takes its master's slots; the old master follows it; the other replicas follow the new master; order kept", () => {
    const t = base();
    const before = formatNodes(t);
    expect(formatNodes(promoteReplica(t, R1))).toBe(
      [
        `${M1} 127.0.0.1 7001 slave ${R1}`,
        `${R1} 127.0.0.1 7101 master - 0-5000 9000`,
        `${M2} 127.0.0.1 7002 master - 5001-8999 9001-16383`,
        `${R1b} 127.0.0.1 7102 slave ${R1}`,
        `${R2} 127.0.0.1 7103 slave ${M2}`,
      ].join("\n"),
    );
    expect(formatNodes(t)).toBe(before); // pure: the input is unchanged
  });

  test("--drop-old: the old master leaves the topology", () => {
    expect(formatNodes(promoteReplica(base(), R2, { dropOld: true }))).toBe(
      [
        `${M1} 127.0.0.1 7001 master - 0-5000 9000`,
        `${R1} 127.0.0.1 7101 slave ${M1}`,
        `${R1b} 127.0.0.1 7102 slave ${M1}`,
        `${R2} 127.0.0.1 7103 master - 5001-8999 9001-16383`,
      ].join("\n"),
    );
  });

  test("refusals in Kvrocks' style: an unknown id, a master, a replica whose master is not listed", () => {
    const unknown = editError(() => promoteReplica(base(), "f".repeat(40)));
    expect([unknown.edit, unknown.kvrocksMessage]).toEqual(["promote", EDIT_MSG.noNode]);
    expect(unknown.message).toBe(`Invalid cluster node id (no node ${"f".repeat(40)} in the topology)`);
    const master = editError(() => promoteReplica(base(), M2));
    expect(master.kvrocksMessage).toBe("The node isn't a slave");
    expect(master.detail).toBe("it is a master of slots 5001-8999 9001-16383; promote one of its replicas instead");
    const orphan = parseNodes(`${M1} h 1 master - 0-16383\n${R1} h 2 slave ${M2}`);
    expect(editError(() => promoteReplica(orphan, R1)).kvrocksMessage).toBe("Can't find the master node id");
  });

  test("property: on 200 random topologies every slot keeps its owner except the old master's, which the promoted node now owns; the result is valid", () => {
    let promoted = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const t = randomTopology(rng(seed));
      const r = t.nodes.find((n) => n.role === "slave" && t.nodes.some((m) => m.id === n.masterId));
      if (!r) continue;
      promoted++;
      for (const dropOld of [false, true]) {
        const p = promoteReplica(t, r.id, { dropOld });
        expect(parseNodes(formatNodes(p))).toEqual(p);
        for (let s = seed % 7; s < 16384; s += 97) {
          const was = slotOwner(t, s)?.id ?? null;
          expect(slotOwner(p, s)?.id ?? null).toBe(was === r.masterId ? r.id : was);
        }
        expect(p.nodes.filter((n) => n.role === "slave" && n.masterId === r.masterId)).toEqual([]);
        expect(p.nodes.length).toBe(t.nodes.length - (dropOld ? 1 : 0));
      }
    }
    expect(promoted).toBeGreaterThan(100);
  }, 30_000);
});

describe("removeNode", () => {
  test("a replica, or a master without slots or replicas, is removed", () => {
    expect(removeNode(base(), R1b).nodes.map((n) => n.id)).toEqual([M1, R1, M2, R2]);
    const spare = parseNodes(`${M1} h 1 master - 0-16383\n${M2} h 2 master -`);
    expect(formatNodes(removeNode(spare, M2))).toBe(`${M1} h 1 master - 0-16383`);
  });

  test("refused for a master that owns slots or has replicas, and for an unknown id", () => {
    const owns = editError(() => removeNode(base(), M1));
    expect([owns.edit, owns.kvrocksMessage]).toEqual(["remove", "Can't remove a node that still owns slots"]);
    expect(owns.detail).toContain("it serves slots 0-5000 9000; promote one of its replicas first (--promote <replica> --drop-old)");
    const followed = parseNodes(`${M1} h 1 master - 0-16383\n${M2} h 2 master -\n${R2} h 3 slave ${M2}`);
    expect(editError(() => removeNode(followed, M2)).kvrocksMessage).toBe("Can't remove a node that still has replicas");
    expect(editError(() => removeNode(base(), "x".repeat(40))).kvrocksMessage).toBe(EDIT_MSG.noNode);
  });

  test("promote, then remove the old master: the same as --drop-old", () => {
    const a = removeNode(promoteReplica(base(), R1), M1);
    expect(editError(() => removeNode(promoteReplica(base(), R1), R1)).kvrocksMessage).toBe(EDIT_MSG.ownsSlots);
    // M1 now follows R1 as a slave: removable.
    expect(formatNodes(a)).toBe(formatNodes(promoteReplica(base(), R1, { dropOld: true })));
  });
});

describe("CLUSTER NODES ⇄ nodes string", () => {
  test("a Kvrocks CLUSTER NODES reply becomes a nodes string: @cport, myself, ping/pong, epoch and link state dropped", () => {
    const text =
      `${M1} 10.0.0.1:7000@17000 myself,master - 1795547720116 1795547720117 28 connected 0-8191\n` +
      `${R1} 10.0.0.3:7000@17000 slave ${M1} 0 1795547720117 28 connected\n` +
      `${M2} 10.0.0.2:7000@17000 master - 0 1795547720117 28 disconnected 8192-16383\n`;
    expect(nodesTextFromClusterNodes(text)).toBe(
      [`${M1} 10.0.0.1 7000 master - 0-8191`, `${R1} 10.0.0.3 7000 slave ${M1}`, `${M2} 10.0.0.2 7000 master - 8192-16383`].join("\n"),
    );
  });

  test("round trips on 150 random topologies: nodes string → CLUSTER NODES → nodes string is a fixed point after one pass", () => {
    for (let seed = 1; seed <= 150; seed++) {
      const t = randomTopology(rng(seed));
      // Pass 1 merges adjacent ranges and orders them by slot, as Kvrocks prints them.
      const once = nodesTextFromClusterNodes(formatClusterNodes(t, t.nodes[0].id, seed, 1000));
      const twice = nodesTextFromClusterNodes(formatClusterNodes(parseNodes(once), t.nodes[0].id, seed + 1, 2000));
      expect(twice).toBe(once);
      expect(formatNodes(parseNodes(once))).toBe(once);
      // And the way back: the CLUSTER NODES text of the converted topology is the original's.
      expect(formatClusterNodes(parseNodes(once), t.nodes[0].id, seed, 1000)).toBe(formatClusterNodes(t, t.nodes[0].id, seed, 1000));
      expect(topologyFromClusterNodes(parseClusterNodes(formatClusterNodes(t, null, seed, 1000))).nodes.length).toBe(t.nodes.length);
    }
  }, 30_000);
});
