/** kvr doctor's command line: usage errors (exit 2, nothing sent), --nodes-file seeds, the human report, --help. */
import { afterEach, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseNodes } from "../../lib/cluster/index.ts";
import { runKvr, tempDir } from "../helpers/kvr.ts";
import { mastersTopology, startFakeNodes, type FakeNode } from "../setnodes/fake-node.ts";
import { doctor } from "./helpers.ts";

let fakes: FakeNode[] = [];
const dirs: Array<() => void> = [];
afterEach(async () => {
  await Promise.all(fakes.map((f) => f.close()));
  fakes = [];
  for (const d of dirs.splice(0)) d();
});

test("usage errors exit 2 with one line naming the flag", async () => {
  const cases: Array<[string[], string]> = [
    [[], "--seed"],
    [["--seed", "nohost"], "--seed"],
    [["--seed", "127.0.0.1:0"], "--seed: '127.0.0.1:0': port 0 is out of range (1–65535)"],
    [["--seed", "127.0.0.1:99999"], "--seed: '127.0.0.1:99999': port 99999 is out of range (1–65535)"],
    [["--seed", "127.0.0.1:1", "--samples", "0"], "--samples"],
    [["--seed", "127.0.0.1:1", "--timeout", "0"], "--timeout"],
    [["--seed", "127.0.0.1:1", "--interval", "soon"], "--interval"],
    [["--seed", "127.0.0.1:1", "--concurrency", "0"], "--concurrency"],
    [["--seed", "127.0.0.1:1", "--max-lag", "-5"], "--max-lag"],
    [["--seed", "127.0.0.1:1", "--stuck-after", "0s"], "--stuck-after"],
    [["--nodes-file", "/nonexistent/cluster.txt"], "--nodes-file"],
    [["--node", `${"a".repeat(40)} 127.0.0.1 99999 master -`], "--node #1"],
    [["--seed", "127.0.0.1:1", "--bogus"], "--bogus"],
  ];
  await Promise.all(
    cases.map(async ([args, flag]) => {
      const r = await runKvr(["doctor", ...args]);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain(flag);
      expect(r.stdout).toBe("");
    }),
  );
});

test("--nodes-file (setnodes' format) makes every node of the topology a seed", async () => {
  const nodes = await startFakeNodes(2);
  fakes.push(...nodes);
  const d = tempDir();
  dirs.push(d.cleanup);
  const file = join(d.path, "cluster.txt");
  writeFileSync(file, mastersTopology(nodes) + "\n");
  const run = await doctor(["--nodes-file", file, "--samples", "1"]);
  expect(run.nodes.map((n) => [n.address, n.seed])).toEqual(nodes.map((n) => [n.address, true]));
  expect(run.summary).toMatchObject({ seeds: 2, seedsAnswered: 2 });
});

test("the human report: a per-node table, findings with evidence and next steps, a summary line; no colour off a terminal", async () => {
  const nodes = await startFakeNodes(2);
  fakes.push(...nodes);
  const t = parseNodes(mastersTopology(nodes));
  nodes.forEach((n) => (n.state = { nodeId: null, version: 1, topology: t }));
  const r = await runKvr(["doctor", "--seed", nodes[0].address, "--samples", "1"]);
  expect(r.code).toBe(1);
  const lines = r.stdout.split("\n");
  expect(lines[0]).toMatch(/^ADDRESS\s+ID\s+ROLE\s+MASTER\s+LINK\s+SYNC\s+LAST IO\s+OFFSET\s+LAG\s+VERSION\s+PING ms$/);
  expect(lines[1]).toStartWith(`${nodes[0].address}  `);
  expect(r.stdout).toContain(`WARN  no-replica ${nodes[0].address}: master `);
  expect(r.stdout).toMatch(/\n {6}next: add a node '<id> <host> <port> slave [0-9a-f]{40}' to the topology/);
  expect(r.stdout).toMatch(/\n2 nodes \(cluster, 2 answered\), 1 sample, \d+ ms: 0 crit, 2 warn, 0 info\n$/);
  expect(r.stdout).not.toContain("\x1b[");
});

test("--help teaches: examples, what is sent, the findings, the exit codes", async () => {
  const r = await runKvr(["doctor", "--help"]);
  expect(r.code).toBe(0);
  for (const s of ["Examples:", "kvr doctor --seed", "--json", "CLUSTERX VERSION", "stuck-full-sync", "Exit codes", "--stuck-after", "--max-lag", "KVR_AUTH"]) expect(r.stdout).toContain(s);
});
