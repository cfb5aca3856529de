/**
 * kvr setnodes through the compiled binary, against fake Kvrocks nodes on 127.0.0.1.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { listenNoAccept, type NoAcceptListener } from "../../lib/net/index.ts";
import { jsonLines, runKvr, tempDir } from "../helpers/kvr.ts";
import { mastersTopology, nodeId, setnodesOf, startFakeNodes, type FakeNode } from "./fake-node.ts";
import { closedPort } from "../helpers/ports.ts";

let nodes: FakeNode[] = [];
let blackholes: NoAcceptListener[] = [];
const cleanups: Array<() => void> = [];
afterEach(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  await Promise.all(blackholes.map((b) => b.close()));
  for (const c of cleanups.splice(0)) c();
  nodes = [];
  blackholes = [];
});

async function start(n: number, opts: Parameters<typeof startFakeNodes>[1] = () => ({})): Promise<FakeNode[]> {
  const started = await startFakeNodes(n, opts);
  nodes.push(...started);
  return started;
}

type Obj = Record<string, any>;
function targets(stdout: string): Obj[] {
  return jsonLines(stdout).filter((e) => e.event === "target");
}
function summary(stdout: string): Obj {
  const s = jsonLines(stdout).find((e) => e.event === "summary");
  if (!s) throw new Error(`no summary in ${stdout}`);
  return s;
}

describe("push", () => {
  test("success: every target gets the canonical topology and version; exit 0; one JSON object per target + summary", async () => {
    const ns = await start(3);
    const text = mastersTopology(ns).replaceAll(" ", "  ") + "\n"; // not canonical: double spaces, trailing newline
    const r = await runKvr(["setnodes", "--nodes", text, "--version", "5", "--all", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    for (const n of ns) {
      expect(setnodesOf(n)).toEqual([["CLUSTERX", "SETNODES", mastersTopology(ns), "5"]]);
      expect(n.state.version).toBe(5);
    }
    const ts = targets(r.stdout);
    expect(ts.map((t) => t.address)).toEqual(ns.map((n) => n.address));
    for (const [i, t] of ts.entries()) {
      expect(t).toMatchObject({ result: "ok", nodeId: nodeId(i + 1), role: "master", attempts: 1 });
      expect(typeof t.latencyMs).toBe("number");
      expect(t.latencyMs).toBeLessThan(1000);
    }
    expect(summary(r.stdout)).toMatchObject({ version: 5, targets: 3, counts: { ok: 3 }, exit: 0 });
  });

  test("human output: a table with address, node id, role, result, latency; colour only when asked", async () => {
    const ns = await start(2);
    const args = ["setnodes", "--nodes", mastersTopology(ns), "--version", "1", "--all"];
    const plain = await runKvr(args);
    expect(plain.code).toBe(0);
    const lines = plain.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^ADDRESS\s+NODE ID\s+ROLE\s+RESULT\s+LATENCY ms\s+DETAIL$/);
    expect(lines[1]).toMatch(new RegExp(`^${ns[0].address}\\s+${nodeId(1).slice(0, 12)}\\s+master\\s+ok\\s+\\d+\\.\\d`));
    expect(lines[2]).toContain(ns[1].address);
    expect(lines[3]).toMatch(/^version 1, 2 targets: 2 ok in \d+ ms$/);
    // A target that did not reply has no latency: "-" (its wall time is in --json, elapsedMs).
    const silent = await start(1, () => ({ silent: true }));
    const slow = await runKvr(["setnodes", "--nodes", mastersTopology(silent), "--version", "1", "--all", "--timeout", "300ms"]);
    expect(slow.code).toBe(3);
    const row = slow.stdout.trim().split("\n")[1];
    expect(row).toMatch(new RegExp(`^${silent[0].address}\\s+\\S+\\s+master\\s+timeout\\s+-\\s+setnodes: no reply within 300 ms$`));
    expect(slow.stdout).not.toMatch(/\(\d+\)/);
    expect(plain.stdout).not.toContain("\x1b[");
    const coloured = await runKvr(args, { env: { NO_COLOR: "", FORCE_COLOR: "1" } });
    expect(coloured.code).toBe(0);
    expect(coloured.stdout).toContain("\x1b[32mok"); // green result
  });

  test("an error reply → exit 1, the others still reported OK", async () => {
    const ns = await start(3, (i) => (i === 1 ? { setnodesError: "ERR Invalid cluster version" } : {}));
    const r = await runKvr(["setnodes", "--nodes", mastersTopology(ns), "--version", "2", "--all", "--json"]);
    expect(r.code).toBe(1);
    const ts = targets(r.stdout);
    expect(ts.map((t) => t.result)).toEqual(["ok", "error", "ok"]);
    expect(ts[1]).toMatchObject({ phase: "setnodes", detail: "-ERR Invalid cluster version" });
    expect(summary(r.stdout).counts).toMatchObject({ ok: 2, error: 1 });
  });

  test("a target that accepts and never replies → exit 3 within the deadline; the others still reported", async () => {
    const ns = await start(3, (i) => (i === 2 ? { silent: true } : {}));
    const t0 = performance.now();
    const r = await runKvr(["setnodes", "--nodes", mastersTopology(ns), "--version", "2", "--all", "--timeout", "1s", "--json"]);
    const wall = performance.now() - t0;
    expect(r.code).toBe(3);
    expect(wall).toBeGreaterThanOrEqual(950);
    expect(wall).toBeLessThan(2500);
    const ts = targets(r.stdout);
    expect(ts.map((t) => t.result)).toEqual(["ok", "ok", "timeout"]);
    expect(ts[2]).toMatchObject({ phase: "setnodes", detail: "no reply within 1000 ms", latencyMs: null });
    expect(ts[2].elapsedMs).toBeGreaterThanOrEqual(950);
    expect(setnodesOf(ns[2])).toHaveLength(1); // it did receive the command
  });

  test("a target whose accept queue is full → connect deadline, exit 3", async () => {
    const ns = await start(1);
    const hole = await listenNoAccept("127.0.0.1", 0);
    blackholes.push(hole);
    const t0 = performance.now();
    const r = await runKvr(["setnodes", "--nodes", mastersTopology(ns), "--version", "2", "--target", ns[0].address, "--target", `127.0.0.1:${hole.port}`, "--connect-timeout", "500ms", "--json"]);
    expect(performance.now() - t0).toBeLessThan(2500);
    expect(r.code).toBe(3);
    const ts = targets(r.stdout);
    expect(ts[0].result).toBe("ok");
    expect(ts[1]).toMatchObject({ result: "timeout", phase: "connect", detail: "could not connect within 500 ms", nodeId: null });
  });

  test("a refused target → exit 1, reported as refused", async () => {
    const ns = await start(1);
    const port = await closedPort();
    const r = await runKvr(["setnodes", "--nodes", mastersTopology(ns), "--version", "2", "--target", ns[0].address, "--target", `127.0.0.1:${port}`, "--json"]);
    expect(r.code).toBe(1);
    const ts = targets(r.stdout);
    expect(ts.map((t) => [t.result, t.phase])).toEqual([
      ["ok", "setnodes"],
      ["refused", "connect"],
    ]);
  });

  test("an error beats a deadline: error + timeout → exit 1", async () => {
    const ns = await start(2, (i) => (i === 0 ? { setnodesError: "ERR boom" } : { silent: true }));
    const r = await runKvr(["setnodes", "--nodes", mastersTopology(ns), "--version", "2", "--all", "--timeout", "300ms", "--json"]);
    expect(r.code).toBe(1);
    expect(targets(r.stdout).map((t) => t.result)).toEqual(["error", "timeout"]);
  });

  test("--force sends FORCE", async () => {
    const ns = await start(1, () => ({ version: 9 }));
    const r = await runKvr(["setnodes", "--nodes", mastersTopology(ns), "--version", "3", "--all", "--force"]);
    expect(r.code).toBe(0);
    expect(setnodesOf(ns[0])[0].slice(3)).toEqual(["3", "FORCE"]);
    expect(ns[0].state.version).toBe(3);
  });

  test("a lower version without --force is Kvrocks' error → exit 1", async () => {
    const ns = await start(1, () => ({ version: 9 }));
    const r = await runKvr(["setnodes", "--nodes", mastersTopology(ns), "--version", "3", "--all", "--json"]);
    expect(r.code).toBe(1);
    expect(targets(r.stdout)[0].detail).toBe("-ERR Invalid cluster version");
  });
});

describe("AUTH", () => {
  test("--auth sends AUTH first; KVR_AUTH works too", async () => {
    const ns = await start(1, () => ({ password: "s3cret" }));
    const args = ["setnodes", "--nodes", mastersTopology(ns), "--version", "1", "--all", "--json"];
    const r = await runKvr([...args, "--auth", "s3cret"]);
    expect(r.code).toBe(0);
    expect(ns[0].commands[0]).toEqual(["AUTH", "s3cret"]);
    expect(ns[0].commands[1].slice(0, 2)).toEqual(["CLUSTERX", "SETNODES"]);
    const viaEnv = await runKvr([...args.slice(0, 4), "2", ...args.slice(5)], { env: { KVR_AUTH: "s3cret" } });
    expect(viaEnv.code).toBe(0);
    expect(ns[0].state.version).toBe(2);
  });

  test("a wrong password → exit 1 at the auth step; none → NOAUTH, exit 1", async () => {
    const ns = await start(1, () => ({ password: "s3cret" }));
    const args = ["setnodes", "--nodes", mastersTopology(ns), "--version", "1", "--all", "--json"];
    const wrong = await runKvr([...args, "--auth", "nope"]);
    expect(wrong.code).toBe(1);
    expect(targets(wrong.stdout)[0]).toMatchObject({ result: "error", phase: "auth", detail: "-ERR Invalid password (check --auth / KVR_AUTH)" });
    const none = await runKvr(args, { env: { KVR_AUTH: "" } });
    expect(none.code).toBe(1);
    expect(targets(none.stdout)[0]).toMatchObject({
      result: "error",
      phase: "setnodes",
      detail: "-NOAUTH Authentication required. (the node needs a password: give --auth or set KVR_AUTH)",
    });
    expect(ns[0].state.version).toBe(-1);
  });
});

describe("--bump, --set-node-id, --verify, --retries", () => {
  test("--bump reads every target's CLUSTERX VERSION and pushes max + 1", async () => {
    const ns = await start(3, (i) => ({ version: [3, 7, -1][i] }));
    const r = await runKvr(["setnodes", "--nodes", mastersTopology(ns), "--bump", "--all", "--json"]);
    expect(r.code).toBe(0);
    for (const n of ns) {
      expect(n.commands[0]).toEqual(["CLUSTERX", "VERSION"]);
      expect(setnodesOf(n)[0][3]).toBe("8");
      expect(n.state.version).toBe(8);
    }
    expect(jsonLines(r.stdout).find((e) => e.event === "bump")).toMatchObject({ highest: 7, version: 8 });
    expect(summary(r.stdout).version).toBe(8);
  });

  test("--bump with a silent target: pushes to the others, reports the silent one as a timeout", async () => {
    const ns = await start(2, (i) => (i === 1 ? { silent: true } : { version: 4 }));
    const r = await runKvr(["setnodes", "--nodes", mastersTopology(ns), "--bump", "--all", "--timeout", "400ms", "--json"]);
    expect(r.code).toBe(3);
    const ts = targets(r.stdout);
    expect(ts[0]).toMatchObject({ result: "ok" });
    expect(ts[1]).toMatchObject({ result: "timeout", phase: "version" });
    expect(ns[0].state.version).toBe(5);
    expect(setnodesOf(ns[1])).toHaveLength(0);
  });

  test("--set-node-id sends CLUSTERX SETNODEID <the target's id> before SETNODES", async () => {
    const ns = await start(2);
    const r = await runKvr(["setnodes", "--nodes", mastersTopology(ns), "--version", "1", "--all", "--set-node-id"]);
    expect(r.code).toBe(0);
    for (const [i, n] of ns.entries()) {
      expect(n.commands[0]).toEqual(["CLUSTERX", "SETNODEID", nodeId(i + 1)]);
      expect(n.commands[1].slice(0, 2)).toEqual(["CLUSTERX", "SETNODES"]);
      expect(n.state.nodeId).toBe(nodeId(i + 1));
    }
  });

  test("--set-node-id with a target that is not in the topology → exit 2, nothing sent", async () => {
    const ns = await start(2);
    const topo = mastersTopology(ns.slice(0, 1));
    const r = await runKvr(["setnodes", "--nodes", topo, "--version", "1", "--target", ns[0].address, "--target", ns[1].address, "--set-node-id"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(ns[1].address);
    expect(ns[0].connections + ns[1].connections).toBe(0);
  });

  test("--verify reports a node that said OK but did not converge → exit 1", async () => {
    const ns = await start(2, (i) => (i === 1 ? { ignoreSetnodes: true, version: 1 } : {}));
    const r = await runKvr(["setnodes", "--nodes", mastersTopology(ns), "--version", "4", "--all", "--verify", "--json"]);
    expect(r.code).toBe(1);
    const ts = targets(r.stdout);
    expect(ts[0]).toMatchObject({ result: "ok", version: 4 });
    expect(ts[1]).toMatchObject({ result: "diverged", phase: "verify", version: 1, detail: "CLUSTERX VERSION is 1, expected 4" });
  });

  test("without --verify the same node looks fine (the reason --verify exists)", async () => {
    const ns = await start(1, () => ({ ignoreSetnodes: true }));
    const r = await runKvr(["setnodes", "--nodes", mastersTopology(ns), "--version", "4", "--all"]);
    expect(r.code).toBe(0);
  });

  test("--retries re-pushes failed targets with backoff until they succeed", async () => {
    const ns = await start(2, (i) => (i === 1 ? { failFirst: 2 } : {}));
    const t0 = performance.now();
    const r = await runKvr(["setnodes", "--nodes", mastersTopology(ns), "--version", "4", "--all", "--retries", "3", "--verify", "--json"]);
    const wall = performance.now() - t0;
    expect(r.code).toBe(0);
    const ts = targets(r.stdout);
    expect(ts.map((t) => [t.result, t.attempts])).toEqual([
      ["ok", 1],
      ["ok", 3],
    ]);
    const retries = jsonLines(r.stdout).filter((e) => e.event === "retry");
    expect(retries.map((e) => [e.attempt, e.delayMs, e.targets])).toEqual([
      [1, 250, [ns[1].address]],
      [2, 500, [ns[1].address]],
    ]);
    expect(wall).toBeGreaterThanOrEqual(750); // the backoff was waited
    expect(setnodesOf(ns[0])).toHaveLength(1); // the healthy node was pushed once
    expect(ns[1].state.version).toBe(4);
  });

  test("--retries gives up after n re-pushes and reports the failure", async () => {
    const ns = await start(1, () => ({ failFirst: 10 }));
    const r = await runKvr(["setnodes", "--nodes", mastersTopology(ns), "--version", "4", "--all", "--retries", "1", "--json"]);
    expect(r.code).toBe(1);
    expect(targets(r.stdout)[0]).toMatchObject({ result: "error", attempts: 2 });
    expect(setnodesOf(ns[0])).toHaveLength(2);
  });
});

describe("input and validation (nothing sent)", () => {
  test("--dry-run validates and prints the canonical topology; the server sees no connection", async () => {
    const ns = await start(1);
    const a = nodeId(1);
    const b = nodeId(2);
    const r = await runKvr(["setnodes", "--nodes", `${a}  127.0.0.1 ${ns[0].port} MASTER - 0-16383\\n${b} 127.0.0.1 7001 Replica ${a}`, "--version", "3", "--all", "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${a} 127.0.0.1 ${ns[0].port} master - 0-16383\n${b} 127.0.0.1 7001 slave ${a}\n`);
    expect(r.stderr).toContain("nothing sent");
    expect(r.stderr).toContain("valid topology: 2 nodes (1 master, 1 slave), 16384/16384 slots assigned");
    await Bun.sleep(50);
    expect(ns[0].connections).toBe(0);
    expect(ns[0].commands).toEqual([]);
  });

  test("--dry-run --json gives the topology as one object", async () => {
    const ns = await start(1);
    const r = await runKvr(["setnodes", "--nodes", mastersTopology(ns), "--bump", "--all", "--dry-run", "--json"]);
    expect(r.code).toBe(0);
    const [e] = jsonLines(r.stdout);
    expect(e).toMatchObject({ event: "topology", dryRun: true, text: mastersTopology(ns), nodes: 1, masters: 1, slotsAssigned: 16384, bump: true, targets: [ns[0].address] });
    expect(ns[0].connections).toBe(0);
  });

  test("an invalid topology → exit 2 with Kvrocks' message, line and field; nothing sent", async () => {
    const ns = await start(1);
    const good = mastersTopology(ns);
    const r = await runKvr(["setnodes", "--nodes", `${good}\\n${nodeId(9)} 127.0.0.1 99999 master -`, "--version", "1", "--target", ns[0].address]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('line 2, field port ("99999"): Invalid cluster node port');
    const overlap = await runKvr(["setnodes", "--node", good, "--node", `${nodeId(9)} 127.0.0.1 1 master - 5`, "--version", "1", "--all", "--json"]);
    expect(overlap.code).toBe(2);
    expect(overlap.stderr).toContain("--node #2, field slot");
    expect(overlap.stderr).toContain("Slot distribution is overlapped");
    expect(jsonLines(overlap.stdout)[0]).toMatchObject({ event: "invalid-topology", message: "Slot distribution is overlapped", line: 2, field: "slot" });
    expect(ns[0].connections).toBe(0);
  });

  test("--nodes-file and --nodes-file - (stdin)", async () => {
    const ns = await start(1);
    const dir = tempDir();
    cleanups.push(dir.cleanup);
    const file = join(dir.path, "cluster.txt");
    writeFileSync(file, mastersTopology(ns) + "\n");
    const r = await runKvr(["setnodes", "--nodes-file", file, "--version", "1", "--all"]);
    expect(r.code).toBe(0);
    const s = await runKvr(["setnodes", "--nodes-file", "-", "--version", "2", "--all"], { stdin: mastersTopology(ns) });
    expect(s.code).toBe(0);
    expect(setnodesOf(ns[0]).map((c) => c[3])).toEqual(["1", "2"]);
    const missing = await runKvr(["setnodes", "--nodes-file", join(dir.path, "nope.txt"), "--version", "1", "--all"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("nope.txt");
  });

  const usage: Array<[string, string[], string]> = [
    ["no topology", ["--version", "1", "--all"], "--nodes-file"],
    ["two topology sources", ["--nodes", "x", "--node", "y", "--version", "1", "--all"], "one way only"],
    ["no version", ["--nodes", "N", "--all"], "--bump"],
    ["--version and --bump", ["--nodes", "N", "--version", "1", "--bump", "--all"], "not both"],
    ["negative version", ["--nodes", "N", "--version", "-1", "--all"], "--version"],
    ["no targets", ["--nodes", "N", "--version", "1"], "--target"],
    ["--target and --all", ["--nodes", "N", "--version", "1", "--all", "--target", "127.0.0.1:1"], "not both"],
    ["bad target", ["--nodes", "N", "--version", "1", "--target", "nohost"], "host:port"],
    ["bad timeout", ["--nodes", "N", "--version", "1", "--all", "--timeout", "soon"], "--timeout"],
  ];
  for (const [name, args, expected] of usage) {
    test(`usage error → exit 2: ${name}`, async () => {
      const ns = await start(1);
      const filled = args.map((a) => (a === "N" ? mastersTopology(ns) : a));
      const r = await runKvr(["setnodes", ...filled]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(expected);
      expect(ns[0].connections).toBe(0);
    });
  }
});

describe("scale", () => {
  test("100 targets, 10 never replying: finishes in about one deadline and reports all 100", async () => {
    const silent = new Set([3, 17, 25, 38, 44, 51, 66, 72, 89, 98]);
    const ns = await start(100, (i) => (silent.has(i) ? { silent: true } : {}));
    const t0 = performance.now();
    const r = await runKvr(["setnodes", "--nodes", mastersTopology(ns), "--version", "1", "--all", "--timeout", "2s", "--connect-timeout", "2s", "--json"]);
    const wall = performance.now() - t0;
    expect(r.code).toBe(3);
    // One 2 s deadline plus start-up and the 90 replies; a second deadline would pass 4 s.
    expect(wall).toBeLessThan(4000);
    const ts = targets(r.stdout);
    expect(ts).toHaveLength(100);
    expect(ts.filter((t) => t.result === "timeout").map((t) => t.address)).toEqual(ns.filter((_, i) => silent.has(i)).map((n) => n.address));
    expect(ts.filter((t) => t.result === "ok")).toHaveLength(90);
    expect(summary(r.stdout).counts).toMatchObject({ ok: 90, timeout: 10 });
    for (const [i, n] of ns.entries()) if (!silent.has(i)) expect(n.state.version).toBe(1);
  });
});
