/**
 * kvr setnodes --from (the topology of a live node) with the failover edits --promote
 * [--drop-old] and --remove, through the compiled binary against fake Kvrocks nodes.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatNodes, parseNodes } from "../../lib/cluster/index.ts";
import { jsonLines, runKvr, tempDir } from "../helpers/kvr.ts";
import { setnodesOf, startFakeNode, type FakeNode, type FakeNodeOptions } from "./fake-node.ts";
import { closedPort } from "../helpers/ports.ts";

const live: FakeNode[] = [];
const cleanups: Array<() => void> = [];
afterEach(async () => {
  await Promise.all(live.splice(0).map((n) => n.close()));
  for (const c of cleanups.splice(0)) c();
});

async function fake(o: FakeNodeOptions = {}): Promise<FakeNode> {
  const n = await startFakeNode(o);
  live.push(n);
  return n;
}


const M1 = "1".repeat(40);
const M2 = "2".repeat(40);
const R1 = "a".repeat(40);
const R2 = "c".repeat(40);

/**
 * A cluster of M1 (a dead master: nothing listens at its address), M2, R1 (replica of M1) and R2
 * (replica of M2), every live node holding `text` at `version`.
 */
async function cluster(version = 3) {
  const [m2, r1, r2] = [await fake(), await fake(), await fake()];
  const dead = await closedPort();
  const text = [
    `${M1} 127.0.0.1 ${dead} master - 0-8191`,
    `${M2} 127.0.0.1 ${m2.port} master - 8192-16383`,
    `${R1} 127.0.0.1 ${r1.port} slave ${M1}`,
    `${R2} 127.0.0.1 ${r2.port} slave ${M2}`,
  ].join("\n");
  for (const n of [m2, r1, r2]) n.state = { nodeId: null, version, topology: parseNodes(text) };
  return { m2, r1, r2, dead, text };
}

describe("--from: the topology of a live node", () => {
  test("--dry-run prints it as a nodes file that --nodes-file reads back unchanged; the node is only read", async () => {
    const { m2, r1, r2, text } = await cluster();
    const r = await runKvr(["setnodes", "--from", m2.address, "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(text + "\n");
    expect(r.stderr).toContain(`read topology version 3 from ${m2.address}`);
    expect(m2.commands).toEqual([
      ["CLUSTERX", "VERSION"],
      ["CLUSTER", "NODES"],
    ]);
    expect(r1.connections + r2.connections).toBe(0);
    const dir = tempDir();
    cleanups.push(dir.cleanup);
    const file = join(dir.path, "cluster.txt");
    writeFileSync(file, r.stdout);
    const back = await runKvr(["setnodes", "--nodes-file", file, "--dry-run"]);
    expect(back.code).toBe(0);
    expect(back.stdout).toBe(r.stdout);
  });

  test("a Kvrocks CLUSTER NODES reply (@cport, myself, ping/pong, epoch, link state, a migration marker) becomes a nodes string", async () => {
    const node = await fake({
      version: 28,
      clusterNodes:
        `${M1} 10.0.0.1:7000@17000 master - 1795547720116 1795547720117 28 connected 0-100 200-8191 [8192->-${M2}]\n` +
        `${R1} 10.0.0.3:7000@17000 myself,slave ${M1} 0 1795547720117 28 connected\n` +
        `${M2} 10.0.0.2:7000@17000 master - 0 1795547720117 28 disconnected 101-199 8192-16383\n`,
    });
    node.state = { nodeId: R1, version: 28, topology: parseNodes(`${M1} h 1 master -`) };
    const r = await runKvr(["setnodes", "--from", node.address, "--dry-run", "--json"]);
    expect(r.code).toBe(0);
    const ev = jsonLines(r.stdout);
    expect(ev.find((e) => e.event === "from")).toMatchObject({ address: node.address, version: 28, nodes: 3 });
    expect(ev.find((e) => e.event === "topology")!.text).toBe(
      [`${M1} 10.0.0.1 7000 master - 0-100 200-8191`, `${R1} 10.0.0.3 7000 slave ${M1}`, `${M2} 10.0.0.2 7000 master - 101-199 8192-16383`].join("\n"),
    );
  });

  test("failover: --promote R1 --drop-old --bump --all --verify pushes the edited topology, version max + 1, to every live node and not to the dead master", async () => {
    const { m2, r1, r2, dead } = await cluster(3);
    r2.state = { ...r2.state, version: 5 };
    const r = await runKvr(["setnodes", "--from", m2.address, "--promote", R1, "--drop-old", "--bump", "--all", "--verify", "--json"]);
    expect({ code: r.code, err: r.stderr }).toEqual({ code: 0, err: "" });
    const ev = jsonLines(r.stdout);
    expect(ev.find((e) => e.event === "edit")).toMatchObject({ edit: "promote", id: R1, dropOld: true });
    expect(ev.find((e) => e.event === "bump")).toMatchObject({ highest: 5, version: 6 });
    expect(ev.filter((e) => e.event === "target").map((e) => [e.address, e.result, e.version])).toEqual([
      [m2.address, "ok", 6],
      [r1.address, "ok", 6],
      [r2.address, "ok", 6],
    ]);
    const expected = [`${M2} 127.0.0.1 ${m2.port} master - 8192-16383`, `${R1} 127.0.0.1 ${r1.port} master - 0-8191`, `${R2} 127.0.0.1 ${r2.port} slave ${M2}`].join("\n");
    for (const n of [m2, r1, r2]) {
      expect(setnodesOf(n).map((c) => [c[2], c[3]])).toEqual([[expected, "6"]]);
      expect(formatNodes(n.state.topology!)).toBe(expected);
    }
    expect(expected).not.toContain(String(dead));
  });

  test("without --drop-old the dead master becomes a replica of the promoted node, and --all pushes to it: refused, exit 1", async () => {
    const { m2, r1, dead } = await cluster();
    const r = await runKvr(["setnodes", "--from", m2.address, "--promote", R1, "--bump", "--all", "--json"]);
    expect(r.code).toBe(1);
    const targets = jsonLines(r.stdout).filter((e) => e.event === "target");
    expect(targets.find((t) => t.address === `127.0.0.1:${dead}`)).toMatchObject({ result: "refused", nodeId: M1, role: "slave" });
    expect(formatNodes(r1.state.topology!)).toContain(`${M1} 127.0.0.1 ${dead} slave ${R1}`);
  });

  test("--bump never goes below the --from node's version: targets at 2, the node read at 9 → version 10", async () => {
    const { m2, r2 } = await cluster(2);
    m2.state = { ...m2.state, version: 9 };
    const r = await runKvr(["setnodes", "--from", m2.address, "--bump", "--target", r2.address, "--json"]);
    expect(r.code).toBe(0);
    expect(setnodesOf(r2).map((c) => c[3])).toEqual(["10"]);
  });

  test("--remove of a replica; edits on a --nodes-file topology too", async () => {
    const { m2, r2, text } = await cluster();
    const r = await runKvr(["setnodes", "--from", m2.address, "--remove", R2, "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(text.split("\n").slice(0, 3).join("\n") + "\n");
    const f = await runKvr(["setnodes", "--nodes", text.replaceAll("\n", "\\n"), "--promote", R2, "--drop-old", "--dry-run"]);
    expect(f.code).toBe(0);
    expect(f.stdout).toContain(`${R2} 127.0.0.1 ${r2.port} master - 8192-16383\n`);
    expect(f.stdout).not.toContain(M2);
  });
});

describe("refused edits and unreadable nodes: nothing sent", () => {
  test("Kvrocks-style refusals → exit 2 naming the flag and the node; --json invalid-edit; no SETNODES anywhere", async () => {
    const { m2, r1, r2 } = await cluster();
    const cases: Array<[string[], string]> = [
      [["--remove", M2], `--remove ${M2}: Can't remove a node that still owns slots (it serves slots 8192-16383; promote one of its replicas first`],
      [["--promote", M2], `--promote ${M2}: The node isn't a slave (it is a master of slots 8192-16383`],
      [["--promote", "f".repeat(40)], `--promote ${"f".repeat(40)}: Invalid cluster node id (no node`],
      [["--promote", R1, "--remove", R1], `--remove ${R1}: Can't remove a node that still owns slots`],
    ];
    for (const [edit, msg] of cases) {
      const r = await runKvr(["setnodes", "--from", m2.address, ...edit, "--bump", "--all"]);
      expect({ edit, code: r.code }).toEqual({ edit, code: 2 });
      expect(r.stderr).toContain(msg);
      expect(r.stderr).toContain("Nothing was sent.");
    }
    const j = await runKvr(["setnodes", "--from", m2.address, "--remove", M2, "--bump", "--all", "--json"]);
    expect(jsonLines(j.stdout).find((e) => e.event === "invalid-edit")).toMatchObject({ edit: "remove", id: M2, message: "Can't remove a node that still owns slots" });
    for (const n of [m2, r1, r2]) expect(setnodesOf(n)).toEqual([]);
  });

  test("an unreachable, silent or topology-less --from node → exit 4, a clear error, nothing sent", async () => {
    const { r2 } = await cluster();
    const closed = await closedPort();
    const gone = await runKvr(["setnodes", "--from", `127.0.0.1:${closed}`, "--bump", "--target", r2.address]);
    expect(gone.code).toBe(4);
    expect(gone.stderr).toContain(`--from 127.0.0.1:${closed}: cannot read the topology: connect: connection refused; nothing was sent`);
    const silent = await fake({ silent: true });
    const t0 = performance.now();
    const s = await runKvr(["setnodes", "--from", silent.address, "--timeout", "1s", "--bump", "--target", r2.address]);
    expect(s.code).toBe(4);
    expect(s.stderr).toContain("no reply within 1000 ms");
    expect(performance.now() - t0).toBeLessThan(8000);
    const fresh = await fake();
    const n = await runKvr(["setnodes", "--from", fresh.address, "--dry-run"]);
    expect(n.code).toBe(4);
    expect(n.stderr).toContain("the node has no topology yet");
    const locked = await fake({ password: "pw" });
    locked.state = r2.state;
    const a = await runKvr(["setnodes", "--from", locked.address, "--dry-run"], { env: { KVR_AUTH: "" } });
    expect(a.code).toBe(4);
    expect(a.stderr).toContain("give --auth or set KVR_AUTH");
    const ok = await runKvr(["setnodes", "--from", locked.address, "--dry-run"], { env: { KVR_AUTH: "pw" } });
    expect(ok.code).toBe(0);
    expect(setnodesOf(r2)).toEqual([]);
  });

  test("usage errors come before anything is read: exit 2, the --from node not contacted", async () => {
    const { m2 } = await cluster();
    const cases: Array<[string[], string]> = [
      [["--from", m2.address, "--all"], "--version <n>, or --bump"],
      [["--from", m2.address, "--nodes-file", "x", "--dry-run"], "one way only: --from, --nodes-file"],
      [["--from", m2.address, "--drop-old", "--dry-run"], "--drop-old goes with --promote"],
      [["--from", "nohost", "--dry-run"], "--from: 'nohost' is not host:port"],
      [["--from", m2.address, "--from", m2.address, "--dry-run"], "--from: give it once"],
    ];
    for (const [args, msg] of cases) {
      const r = await runKvr(["setnodes", ...args]);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toContain(msg);
    }
    expect(m2.connections).toBe(0);
  });
});
