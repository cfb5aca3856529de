/**
 * kvr doctor against recording doubles of Kvrocks nodes (tests/setnodes/fake-node.ts): the
 * read-only promise (every command each node receives, asserted), hostile replies, builds that
 * differ, a wrong password.
 */
import { afterEach, expect, test } from "bun:test";
import { parseNodes } from "../../lib/cluster/index.ts";
import { mastersTopology, nodeId, startFakeNode, startFakeNodes, type FakeNode, type FakeNodeOptions } from "../setnodes/fake-node.ts";
import { doctor, findingsOf, nodeOf } from "./helpers.ts";

let fakes: FakeNode[] = [];
afterEach(async () => {
  await Promise.all(fakes.map((f) => f.close()));
  fakes = [];
});
async function fake(o: FakeNodeOptions = {}): Promise<FakeNode> {
  const f = await startFakeNode(o);
  fakes.push(f);
  return f;
}

/** Give every node the same topology (version 1), each knowing its own id, without sending it a command. */
function setTopology(nodes: FakeNode[], text: string): void {
  const t = parseNodes(text);
  nodes.forEach((n, i) => (n.state = { nodeId: nodeId(i + 1), version: 1, topology: t }));
}

/** The commands the issue allows kvr doctor to send, and nothing else. */
const ALLOWED = ["PING", "AUTH", "INFO server", "INFO replication", "INFO stats", "INFO cluster", "CLUSTER NODES", "CLUSTER INFO", "CLUSTERX VERSION"];

test("read-only: every command each node of a cluster receives during a doctor run, exactly", async () => {
  const nodes = await startFakeNodes(3, () => ({ password: "pw" }));
  fakes.push(...nodes);
  setTopology(nodes, mastersTopology(nodes));
  const run = await doctor(["--seed", nodes[0].address, "--samples", "2", "--interval", "100ms"], { KVR_AUTH: "pw" });
  expect(run.summary).toMatchObject({ mode: "cluster", nodes: 3, answered: 3 });
  const look = [["AUTH", "pw"], ["PING"], ["INFO", "server"], ["INFO", "replication"], ["INFO", "stats"], ["INFO", "cluster"], ["CLUSTER", "NODES"], ["CLUSTER", "INFO"], ["CLUSTERX", "VERSION"]];
  for (const n of nodes) {
    expect(n.commands).toEqual([...look, ...look]);
    for (const c of n.commands) expect(ALLOWED).toContain(c[0] === "AUTH" ? "AUTH" : c.join(" "));
  }
});

test("read-only on a standalone node: AUTH-less, only PING and the four INFO sections", async () => {
  const standalone = "# Server\r\nkvrocks_version:2.10.1\r\nkvrocks_git_sha1:1a2b3c4\r\nredis_mode:standalone\r\n";
  const n = await fake({ info: { server: standalone, cluster: "# Cluster\r\ncluster_enabled:0\r\n" } });
  const run = await doctor(["--seed", n.address, "--samples", "1"]);
  expect(run.code).toBe(0);
  expect(n.commands).toEqual([["PING"], ["INFO", "server"], ["INFO", "replication"], ["INFO", "stats"], ["INFO", "cluster"]]);
});

test("a node replying garbage, a 100 MB bulk, or closing mid-reply is a protocol error; every other node is still diagnosed; missing INFO fields are unknown", async () => {
  const good = await fake();
  const garbage = await fake({ raw: () => "hello, this is not RESP\r\n" });
  const huge = await fake({ raw: (a) => (a.join(" ") === "INFO server" ? Buffer.concat([Buffer.from("$104857600\r\n"), Buffer.alloc(65536, 120)]) : null) });
  const cut = await fake({ raw: (a) => (a.join(" ") === "CLUSTER NODES" ? "$500\r\nabc" : null), closeAfterRaw: true });
  const blank = await fake({ info: { server: "", replication: "", stats: "", cluster: "" } });
  const all = [good, garbage, huge, cut, blank];
  setTopology(all, mastersTopology(all));
  const run = await doctor(["--seed", good.address, "--samples", "1"]);
  const errors = findingsOf(run, "probe-error");
  expect(errors.map((f) => f.node).sort()).toEqual([garbage, huge, cut].map((f) => f.address).sort());
  expect(errors.every((f) => f.severity === "crit")).toBe(true);
  expect(errors.find((f) => f.node === huge.address)!.message).toContain("above the limit");
  expect(errors.find((f) => f.node === cut.address)!.message).toContain("CLUSTER NODES");
  expect(nodeOf(run, garbage.address)).toMatchObject({ status: "protocol" });
  expect(nodeOf(run, good.address)).toMatchObject({ status: "ok", role: "master", samples: 1 });
  expect(nodeOf(run, blank.address)).toMatchObject({ status: "ok", role: null, offset: null, version: "unknown", samples: 1 });
  expect(run.code).toBe(1);
});

test("different builds → info mixed-versions; info alone exits 0", async () => {
  const kvr = await fake({ info: { cluster: "# Cluster\r\ncluster_enabled:0\r\n", server: "# Server\r\nkvrocks_version:2.10.1\r\nkvrocks_git_sha1:1a2b3c4\r\nredis_mode:standalone\r\n" } });
  const other = await fake({ info: { cluster: "# Cluster\r\ncluster_enabled:0\r\n", server: "# Server\r\nkvrocks_version:2.8.0\r\nkvrocks_git_sha1:9f8e7d6\r\nredis_mode:standalone\r\n" } });
  const run = await doctor(["--seed", kvr.address, "--seed", other.address, "--samples", "1"]);
  const [m] = findingsOf(run, "mixed-versions");
  expect(m).toMatchObject({ severity: "info" });
  expect(m.message).toBe(`nodes run different builds: 2.10.1 (1a2b3c4) on ${kvr.address}; 2.8.0 (9f8e7d6) on ${other.address}`);
  expect(run.findings).toHaveLength(1);
  expect(run.code).toBe(0);
});

test("a wrong password: the seed replies an error to AUTH → probe-error naming --auth; nothing discovered → exit 4", async () => {
  const n = await fake({ password: "right" });
  const run = await doctor(["--seed", n.address, "--samples", "1", "--auth", "wrong"]);
  const [e] = findingsOf(run, "probe-error");
  expect(e.message).toBe("error reply to auth: replied -ERR Invalid password (check --auth / KVR_AUTH)");
  expect(e.next[0]).toContain("--auth");
  expect(run.code).toBe(4);
  expect(n.commands).toEqual([["AUTH", "wrong"]]);
});

test("a CLUSTER NODES listing 6000 nodes is bounded: 5000 are probed, the rest counted as skipped", async () => {
  // 6000 distinct loopback addresses on port 1, where nothing listens: each probe is refused at once.
  const host = (i: number) => `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;
  const lines = Array.from({ length: 6000 }, (_, i) => `${nodeId(i + 2)} ${host(i)}:1@10001 master - 0 0 1 connected`);
  const opts: FakeNodeOptions = {};
  const big = await fake(opts);
  opts.clusterNodes = [`${nodeId(1)} 127.0.0.1:${big.port}@1 myself,master - 0 0 1 connected 0-16383`, ...lines].join("\n") + "\n";
  big.state = { nodeId: nodeId(1), version: 1, topology: parseNodes(`${nodeId(1)} 127.0.0.1 ${big.port} master - 0-16383`) };
  const run = await doctor(["--seed", big.address, "--samples", "1", "--connect-timeout", "2s"]);
  expect(run.summary.nodes).toBe(5000);
  expect(run.summary.skipped).toBeGreaterThanOrEqual(1000);
  expect(run.stderr).toContain("were not probed");
  expect(nodeOf(run, `${host(0)}:1`).status).toBe("unreachable");
});
