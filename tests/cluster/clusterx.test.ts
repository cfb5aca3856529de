import { describe, expect, test } from "bun:test";
import {
  clusterx,
  CLUSTERX_USAGE,
  initialClusterState,
  replicationFailure,
  type ClusterState,
  type ClusterxContext,
} from "../../lib/cluster/index.ts";

const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(40);

// Node C listens on 127.0.0.1:7002 and is a slave of A; B is another master.
const NODES = [`${A} 127.0.0.1 7000 master - 0-8191`, `${B} 127.0.0.1 7001 master - 8192-16383`, `${C} 127.0.0.1 7002 slave ${A}`].join("\n");
const NODES_C_OF_B = [`${A} 127.0.0.1 7000 master - 0-8191`, `${B} 127.0.0.1 7001 master - 8192-16383`, `${C} 127.0.0.1 7002 slave ${B}`].join("\n");
const NODES_C_MASTER = [`${A} 127.0.0.1 7000 master - 0-8191`, `${B} 127.0.0.1 7001 master - 8192-16383`, `${C} 127.0.0.1 7002 master -`].join("\n");

const ctx = (current: ClusterxContext["current"] = null, port = 7002, binds = ["127.0.0.1"]): ClusterxContext => ({ port, binds, current });
const fresh = () => initialClusterState();

function withNodes(text = NODES, version = 5, nodeId: string | null = null, c = ctx()): ClusterState {
  const r = clusterx(nodeId ? clusterx(fresh(), ["SETNODEID", nodeId], c).state : fresh(), ["SETNODES", text, String(version)], c);
  expect(r.reply).toEqual({ type: "ok" });
  return r.state;
}

describe("CLUSTERX VERSION, MYID, SETNODEID", () => {
  test("VERSION is -1 before any SETNODES, a bulk string", () => {
    expect(clusterx(fresh(), ["VERSION"], ctx()).reply).toEqual({ type: "bulk", value: "-1" });
    expect(clusterx(withNodes(), ["version"], ctx()).reply).toEqual({ type: "bulk", value: "5" });
  });
  test("MYID is empty before SETNODEID, then the id", () => {
    expect(clusterx(fresh(), ["MYID"], ctx()).reply).toEqual({ type: "bulk", value: "" });
    const s = clusterx(fresh(), ["SETNODEID", C], ctx());
    expect(s.reply).toEqual({ type: "ok" });
    expect(clusterx(s.state, ["myid"], ctx()).reply).toEqual({ type: "bulk", value: C });
  });
  test("SETNODEID with a wrong length", () => {
    for (const id of ["a".repeat(39), "a".repeat(41), ""]) {
      const r = clusterx(fresh(), ["SETNODEID", id], ctx());
      expect(r.reply).toEqual({ type: "error", message: "ERR Invalid cluster node id" });
      expect(r.state).toEqual(fresh());
    }
  });
  test("SETNODEID of a node in the topology applies its role", () => {
    // No bind match (port 9999), so SETNODES picked no myself; SETNODEID then picks C, a slave of A.
    const s = withNodes(NODES, 3, null, ctx(null, 9999));
    expect(s.nodeId).toBeNull();
    const r = clusterx(s, ["SETNODEID", C], ctx(null, 9999));
    expect(r.change).toEqual({ kind: "replicate", host: "127.0.0.1", port: 7000, masterId: A });
    const m = clusterx(s, ["SETNODEID", B], ctx({ host: "127.0.0.1", port: 7000 }, 9999));
    expect(m.change).toEqual({ kind: "master" });
  });
  test("unknown subcommands and wrong arities get the usage message", () => {
    for (const args of [["FOO"], ["VERSION", "x"], ["MYID", "x"], ["SETNODEID"], ["SETNODEID", A, "x"], ["SETNODES", NODES]]) {
      expect(clusterx(fresh(), args, ctx()).reply).toEqual({ type: "error", message: CLUSTERX_USAGE });
    }
    expect(clusterx(fresh(), [], ctx()).reply).toEqual({ type: "error", message: "ERR wrong number of arguments" });
  });
});

describe("CLUSTERX SETNODES version rules", () => {
  test("a version that is not an integer", () => {
    for (const v of ["x", "1.5", "", "9223372036854775808", "7 "]) {
      expect(clusterx(fresh(), ["SETNODES", NODES, v], ctx()).reply).toEqual({ type: "error", message: "ERR Invalid version" });
    }
  });
  test("a negative version", () => {
    expect(clusterx(fresh(), ["SETNODES", NODES, "-1"], ctx()).reply).toEqual({ type: "error", message: "ERR Invalid cluster version" });
    expect(clusterx(fresh(), ["SETNODES", NODES, "-1", "FORCE"], ctx()).reply).toEqual({ type: "error", message: "ERR Invalid cluster version" });
  });
  test("a lower version is refused without FORCE, state unchanged", () => {
    const s = withNodes(NODES, 5);
    const r = clusterx(s, ["SETNODES", NODES_C_OF_B, "4"], ctx());
    expect(r.reply).toEqual({ type: "error", message: "ERR Invalid cluster version" });
    expect(r.state).toBe(s);
    expect(r.change).toEqual({ kind: "none" });
  });
  test("the same version is +OK and changes nothing (the nodes are not even parsed)", () => {
    const s = withNodes(NODES, 5);
    const r = clusterx(s, ["SETNODES", NODES_C_OF_B, "5"], ctx());
    expect(r.reply).toEqual({ type: "ok" });
    expect(r.state).toBe(s);
    expect(clusterx(s, ["SETNODES", "garbage", "5"], ctx()).reply).toEqual({ type: "ok" });
  });
  test("a higher version replaces the topology", () => {
    const s = withNodes(NODES, 5);
    const r = clusterx(s, ["SETNODES", NODES_C_OF_B, "6"], ctx({ host: "127.0.0.1", port: 7000 }));
    expect(r.reply).toEqual({ type: "ok" });
    expect(r.state.version).toBe(6);
    expect(r.state.topology?.nodes[2].masterId).toBe(B);
    expect(r.change).toEqual({ kind: "replicate", host: "127.0.0.1", port: 7001, masterId: B });
  });
  test("FORCE accepts a lower and the same version, in any case", () => {
    const s = withNodes(NODES, 5);
    for (const force of ["FORCE", "force", "Force"]) {
      const low = clusterx(s, ["SETNODES", NODES_C_OF_B, "2", force], ctx({ host: "127.0.0.1", port: 7000 }));
      expect(low.reply).toEqual({ type: "ok" });
      expect(low.state.version).toBe(2);
      expect(low.change.kind).toBe("replicate");
      const same = clusterx(s, ["SETNODES", NODES_C_OF_B, "5", force], ctx({ host: "127.0.0.1", port: 7000 }));
      expect(same.state.topology?.nodes[2].masterId).toBe(B);
    }
  });
  test("a fifth argument other than FORCE, or a sixth", () => {
    expect(clusterx(fresh(), ["SETNODES", NODES, "1", "FORCED"], ctx()).reply).toEqual({ type: "error", message: "ERR Invalid setnodes options" });
    expect(clusterx(fresh(), ["SETNODES", NODES, "1", "FORCE", "x"], ctx()).reply).toEqual({
      type: "error",
      message: "ERR Invalid setnodes options",
    });
  });
  test("the version is parsed before the options", () => {
    expect(clusterx(fresh(), ["SETNODES", NODES, "x", "bogus"], ctx()).reply).toEqual({ type: "error", message: "ERR Invalid version" });
  });
  test("an invalid topology gives Kvrocks' message with ERR and leaves the state", () => {
    const s = withNodes(NODES, 5);
    const r = clusterx(s, ["SETNODES", `${A} 127.0.0.1 99999 master -`, "6"], ctx());
    expect(r.reply).toEqual({ type: "error", message: "ERR Invalid cluster node port" });
    expect(r.state).toBe(s);
    expect(clusterx(s, ["SETNODES", `${A} h 1 master - 0-10 ${B} h 2 master - 11`, "6"], ctx()).reply).toEqual({
      type: "error",
      message: "ERR Invalid nodes definition: Missing newline between node entries.",
    });
  });
  test("state is never mutated", () => {
    const s = withNodes(NODES, 5);
    const copy = structuredClone(s);
    clusterx(s, ["SETNODES", NODES_C_OF_B, "9"], ctx());
    clusterx(s, ["SETNODEID", B], ctx());
    expect(s).toEqual(copy);
  });
});

describe("CLUSTERX SETNODES myself and the role change", () => {
  test("myself by port + bind address when no id was set", () => {
    const s = withNodes(NODES, 1);
    expect(s.nodeId).toBe(C);
  });
  test("no myself: bind address does not match", () => {
    const r = clusterx(fresh(), ["SETNODES", NODES, "1"], ctx(null, 7002, ["10.9.9.9"]));
    expect(r.state.nodeId).toBeNull();
    expect(r.change).toEqual({ kind: "none" });
  });
  test("myself by id set with SETNODEID, even when the address matches another node", () => {
    // Listening on 7000 (A's address), but the id says B.
    const c = ctx({ host: "127.0.0.1", port: 1 }, 7000);
    const s = clusterx(fresh(), ["SETNODEID", B], c).state;
    const r = clusterx(s, ["SETNODES", NODES, "1"], c);
    expect(r.state.nodeId).toBe(B);
    expect(r.change).toEqual({ kind: "master" });
  });
  test("FORCE re-picks myself by address", () => {
    const c = ctx(null, 7002);
    const s = clusterx(fresh(), ["SETNODEID", B], c).state;
    const r = clusterx(s, ["SETNODES", NODES, "1", "FORCE"], c);
    expect(r.state.nodeId).toBe(C);
    expect(r.change).toEqual({ kind: "replicate", host: "127.0.0.1", port: 7000, masterId: A });
  });
  test("FORCE keeps the id when no node matches the address", () => {
    const c = ctx(null, 7777);
    const s = clusterx(fresh(), ["SETNODEID", B], c).state;
    expect(clusterx(s, ["SETNODES", NODES, "1", "FORCE"], c).state.nodeId).toBe(B);
  });
  test("slave of a new master: replicate from its host:port", () => {
    const r = clusterx(fresh(), ["SETNODES", NODES, "1"], ctx(null));
    expect(r.change).toEqual({ kind: "replicate", host: "127.0.0.1", port: 7000, masterId: A });
  });
  test("slave of the current master: no change", () => {
    const r = clusterx(fresh(), ["SETNODES", NODES, "1"], ctx({ host: "127.0.0.1", port: 7000 }));
    expect(r.change).toEqual({ kind: "none" });
  });
  test("a same host on another port, or another host string, is a new master", () => {
    expect(clusterx(fresh(), ["SETNODES", NODES, "1"], ctx({ host: "127.0.0.1", port: 7001 })).change.kind).toBe("replicate");
    expect(clusterx(fresh(), ["SETNODES", NODES, "1"], ctx({ host: "localhost", port: 7000 })).change.kind).toBe("replicate");
  });
  test("myself a master: stop replicating when replicating, else no change", () => {
    expect(clusterx(fresh(), ["SETNODES", NODES_C_MASTER, "1"], ctx({ host: "127.0.0.1", port: 7000 })).change).toEqual({ kind: "master" });
    expect(clusterx(fresh(), ["SETNODES", NODES_C_MASTER, "1"], ctx(null)).change).toEqual({ kind: "none" });
  });
  test("a slave whose master is not in the topology: no change", () => {
    const text = `${C} 127.0.0.1 7002 slave ${"9".repeat(40)}`;
    expect(clusterx(fresh(), ["SETNODES", text, "1"], ctx({ host: "127.0.0.1", port: 7000 })).change).toEqual({ kind: "none" });
  });
  test("myself not in the new topology: no change", () => {
    const s = clusterx(fresh(), ["SETNODEID", "9".repeat(40)], ctx(null, 1)).state;
    const r = clusterx(s, ["SETNODES", NODES, "1"], ctx({ host: "127.0.0.1", port: 7000 }, 1));
    expect(r.state.nodeId).toBe("9".repeat(40));
    expect(r.change).toEqual({ kind: "none" });
  });
  test("replicationFailure wraps the reason as Kvrocks does", () => {
    expect(replicationFailure("connect timeout")).toEqual({
      type: "error",
      message: "ERR failed to set master-replica replication: connect timeout",
    });
  });
});
