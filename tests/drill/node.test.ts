/**
 * kvr drill --replica against a running kvr replica, as an operator drills a real node: a node
 * that synced before (every run must full-sync from A), a node with requirepass and masterauth
 * (A and B require the password it sends; a refused AUTH, a missing one, or a node that streams
 * from A are set-up problems, exit 4), and the node's topology put back afterwards (or --keep).
 */
import { expect, test } from "bun:test";
import { parseClusterNodes, topologyFromClusterNodes } from "../../lib/cluster/index.ts";
import { refuseDataLoss } from "../../lib/drill/target.ts";
import { connect, listen } from "../../lib/net/index.ts";
import { bulk, call, error, replyText, type RespValue } from "../../lib/resp/index.ts";
import { serveCommands } from "../helpers/serve.ts";
import { cleanupAfterEach, runKvr, spawnKvr } from "../helpers/kvr.ts";
import { info, startMaster, startReplica, until, type Master, type Replica } from "../replica/helpers.ts";
import { parseResult } from "./result.ts";

const { defer, temp } = cleanupAfterEach();

/** Quick runs: 8 × 1 MiB from A at 8 MB/s, cut at 10%. */
const QUICK = ["--files", "8", "--file-size", "1MiB", "--rate", "8", "--cut-at", "10%"];


/** One command on a fresh connection to the node's admin port (AUTH first with `pw`). */
async function nodeCmd(port: number, args: string[], pw?: string): Promise<RespValue> {
  const c = await connect("127.0.0.1", port, { connectMs: 2000, readMs: 5000 });
  try {
    if (pw) expect(replyText(await call(c, ["AUTH", pw]))).toBe("OK");
    return await call(c, args);
  } finally {
    c.destroy();
  }
}

async function master(args: string[] = []): Promise<Master> {
  const m = await startMaster(["--generate", "2x64KiB", ...args]);
  defer(() => m.stop());
  return m;
}

async function node(args: string[] = [], env: Record<string, string> = {}): Promise<Replica> {
  const r = await startReplica(["--dir", temp("kvr-drill-node-"), "--retry-delay", "50ms", ...args], env);
  defer(() => r.stop());
  return r;
}

/** Every run of a --json drill result full-synced from A: A served bytes up to the cut, no PSYNC stream. */
function fullSyncedFromA(res: any): void {
  for (const run of res.runs) {
    expect(run.verdict).toBe("PASS");
    expect(run.cut.bytesSent).toBeGreaterThan(0);
    expect(run.cut.fraction).toBeGreaterThanOrEqual(0.1);
    expect(run.infoBefore).toMatchObject({ role: "slave", master_port: String(run.masterA.port), kvr_state: "fetch_files" });
  }
}

test("a node that completed a sync from a master at the drill's default sequence: two drills in a row and --repeat 3 each make it full-sync from A and PASS", async () => {
  const m = await master();
  const r = await node();
  /** The node restores a checkpoint at sequence 100 (kvr master's default, as A's) and streams on. */
  const syncFromM = async () => {
    const mark = r.kvr.events.length;
    expect(replyText(await nodeCmd(r.port, ["SLAVEOF", "127.0.0.1", String(m.port)]))).toBe("OK");
    await until(() => r.kvr.events.slice(mark).some((e) => e.event === "stream" && e.from === 101), 10_000);
  };
  /** A drill; the node's PSYNCs that A refused meanwhile (it then full-synced). */
  const drill = async (extra: string[] = []) => {
    const mark = r.kvr.events.length;
    const d = await runKvr(["drill", ...QUICK, "--replica", `127.0.0.1:${r.port}`, ...extra, "--json"], { env: { KVR_AUTH: "" }, timeoutMs: 60_000 });
    expect({ code: d.code, err: d.code === 0 ? "" : d.stderr.slice(-600) }).toEqual({ code: 0, err: "" });
    return { res: parseResult(d.stdout), refused: r.kvr.events.slice(mark).filter((e) => e.event === "psync-refused").map((e) => e.seq) };
  };
  for (const n of [1, 2]) {
    await syncFromM();
    const { res, refused } = await drill();
    fullSyncedFromA(res);
    expect({ n, refused: refused[0] }).toEqual({ n, refused: 101 });
  }
  await syncFromM();
  const { res, refused } = await drill(["--repeat", "3"]);
  expect(res.runs).toHaveLength(3);
  fullSyncedFromA(res);
  expect(refused[0]).toBe(101);
  // Runs 2 and 3 start from B's checkpoint (sequence 100 too) when the node completed it in time.
  expect(new Set(refused)).toEqual(new Set([101]));
}, 120_000);

test("--a-psync accept: the node streams from A instead of full-syncing → the drill stops at once, exit 4, saying so", async () => {
  const m = await master();
  const r = await node();
  expect(replyText(await nodeCmd(r.port, ["SLAVEOF", "127.0.0.1", String(m.port)]))).toBe("OK");
  await r.kvr.waitEvent((e) => e.event === "stream" && e.from === 101, 10_000);
  const t0 = performance.now();
  const d = await runKvr(["drill", ...QUICK, "--replica", `127.0.0.1:${r.port}`, "--a-psync", "accept", "--json"], { env: { KVR_AUTH: "" }, timeoutMs: 40_000 });
  expect(d.code).toBe(4);
  const res = parseResult(d.stdout);
  expect(res.verdict).toBe("ERROR");
  expect(res.error).toStartWith("the node PSYNCed into A's stream at sequence 101 instead of full-syncing");
  expect(d.stderr).toContain("the drill could not run: the node PSYNCed into A's stream at sequence 101 instead of full-syncing");
  // Early: not after --give-up (30 s).
  expect(performance.now() - t0).toBeLessThan(15_000);
}, 40_000);

test("a node with requirepass and masterauth (KVR_AUTH): A and B require the same password, the node logs in, PASS", async () => {
  const r = await node(["--requirepass", "s3cret", "--masterauth", "s3cret"]);
  const d = await runKvr(["drill", ...QUICK, "--replica", `127.0.0.1:${r.port}`, "--json"], { env: { KVR_AUTH: "s3cret" }, timeoutMs: 60_000 });
  expect({ code: d.code, err: d.code === 0 ? "" : d.stderr.slice(-600) }).toEqual({ code: 0, err: "" });
  const res = parseResult(d.stdout);
  expect(res.config).toMatchObject({ auth: true, mastersAuth: true });
  fullSyncedFromA(res);
  expect(res.runs[0].infoAfter).toMatchObject({ role: "slave", master_port: String(res.runs[0].masterB.port) });
  expect(d.stdout + d.stderr).not.toContain("s3cret");
}, 60_000);

test("set-up problems with passwords are exit 4 within seconds, naming which: a refused AUTH, AUTH to masters without a password, no AUTH at all", async () => {
  const withAuth = await node(["--requirepass", "s3cret", "--masterauth", "s3cret"]);
  const noMasterauth = await node(["--requirepass", "s3cret"], { KVR_MASTERAUTH: "" });
  const cases = [
    { port: withAuth.port, extra: ["--masters-auth", "other"], says: "the node's AUTH to master A failed (Invalid password): give --masters-auth" },
    { port: withAuth.port, extra: ["--masters-auth", ""], says: "the node's AUTH to master A failed (Client sent AUTH, but no password is set): the node sends a masterauth but the drill's masters have no password" },
    { port: noMasterauth.port, extra: [], says: "the node sent _db_name to master A without AUTH, but A requires a password" },
  ];
  for (const c of cases) {
    const t0 = performance.now();
    const d = await runKvr(["drill", ...QUICK, "--replica", `127.0.0.1:${c.port}`, ...c.extra], { env: { KVR_AUTH: "s3cret", KVR_MASTERS_AUTH: "" }, timeoutMs: 40_000 });
    expect({ extra: c.extra, code: d.code }).toEqual({ extra: c.extra, code: 4 });
    expect(d.stderr).toContain(`the drill could not run: ${c.says}`);
    expect(d.stdout).not.toContain("FAIL");
    expect(performance.now() - t0).toBeLessThan(15_000);
  }
}, 90_000);

test("the node's topology is put back after the drill (as the next version), and the node follows its master again; --keep leaves it moved", async () => {
  const m = await master();
  const r = await node();
  const [M, R, X] = ["d".repeat(40), "e".repeat(40), "f".repeat(40)];
  const original = [`${M} 127.0.0.1 ${m.port} master - 0-16383`, `${R} 127.0.0.1 ${r.port} slave ${M}`, `${X} 127.0.0.1 1 master -`].join("\n");
  expect(replyText(await nodeCmd(r.port, ["CLUSTERX", "SETNODEID", R]))).toBe("OK");
  expect(replyText(await nodeCmd(r.port, ["CLUSTERX", "SETNODES", original, "7"]))).toBe("OK");
  await r.kvr.waitEvent((e) => e.event === "stream", 10_000);

  const d = await runKvr(["drill", ...QUICK, "--replica", `127.0.0.1:${r.port}`, "--json"], { env: { KVR_AUTH: "" }, timeoutMs: 60_000 });
  expect(d.code).toBe(0);
  const res = parseResult(d.stdout);
  const run = res.runs[0];
  // Phase labels name the versions actually sent.
  expect(run.phases.map((p: { name: string }) => p.name)).toEqual(["start-masters", "start-replica", "topology-v8", "sync", "cut", "setnodes-v9", "verify", "recover", "restore"]);
  expect(run.versions).toEqual({ v1: 8, v2: 9 });
  // recovered before the restore: the node streamed from B at B's checkpoint sequence
  expect(run.recover).toMatchObject({ ok: true, bSeq: 100, link: "up", master: `127.0.0.1:${run.masterB.port}` });
  expect(run.restore).toMatchObject({ status: "restored", version: 10, nodes: original });
  expect(run.restore.detail).toBe(`topology version 7 put back as version 10 (3 nodes; the node: slave of 127.0.0.1:${m.port})`);
  expect(res.restore).toEqual(run.restore);
  expect(replyText(await nodeCmd(r.port, ["CLUSTERX", "VERSION"]))).toBe("10");
  const back = parseClusterNodes(replyText(await nodeCmd(r.port, ["CLUSTER", "NODES"])));
  expect(back.myself?.id).toBe(R);
  expect(topologyFromClusterNodes(back).nodes.map((n) => `${n.id} ${n.host} ${n.port} ${n.role}`)).toEqual(original.split("\n").map((l) => l.split(" ").slice(0, 4).join(" ")));
  await until(async () => (await info(r.port)).master_port === String(m.port), 5000);

  // Human output says what was put back.
  const human = await runKvr(["drill", ...QUICK, "--replica", `127.0.0.1:${r.port}`], { env: { KVR_AUTH: "" }, timeoutMs: 60_000 });
  expect(human.code).toBe(0);
  expect(human.stdout).toContain("restore");
  expect(human.stdout).toContain("topology version 10 put back as version 13");

  const kept = await runKvr(["drill", ...QUICK, "--replica", `127.0.0.1:${r.port}`, "--keep", "--json"], { env: { KVR_AUTH: "" }, timeoutMs: 60_000 });
  expect(kept.code).toBe(0);
  const k = parseResult(kept.stdout).runs[0];
  expect(k.restore).toMatchObject({ status: "kept", version: 15 });
  expect(replyText(await nodeCmd(r.port, ["CLUSTERX", "VERSION"]))).toBe("15");
  expect(await info(r.port)).toMatchObject({ master_port: String(k.masterB.port) });
}, 120_000);

test("the topology is put back after an error (exit 4) and after SIGTERM mid-sync too", async () => {
  const m = await master();
  const r = await node();
  const [M, R] = ["d".repeat(40), "e".repeat(40)];
  const original = [`${M} 127.0.0.1 ${m.port} master - 0-16383`, `${R} 127.0.0.1 ${r.port} slave ${M}`].join("\n");
  expect(replyText(await nodeCmd(r.port, ["CLUSTERX", "SETNODEID", R]))).toBe("OK");
  expect(replyText(await nodeCmd(r.port, ["CLUSTERX", "SETNODES", original, "3"]))).toBe("OK");
  const backWith = async (version: string) => {
    expect(replyText(await nodeCmd(r.port, ["CLUSTERX", "VERSION"]))).toBe(version);
    await until(async () => (await info(r.port)).master_port === String(m.port), 5000);
  };

  // The node has no masterauth, A requires one: exit 4 once A sees it, then the restore.
  const err = await runKvr(["drill", ...QUICK, "--replica", `127.0.0.1:${r.port}`, "--masters-auth", "pw", "--json"], { env: { KVR_AUTH: "" }, timeoutMs: 40_000 });
  expect(err.code).toBe(4);
  expect(parseResult(err.stdout).verdict).toBe("ERROR");
  expect(err.stderr).toContain("restore: topology version 3 put back as version 5");
  await backWith("5");

  // SIGTERM while the node fetches from A (slow: a 90% cut is never reached in time).
  const p = spawnKvr(["drill", "--files", "8", "--file-size", "1MiB", "--rate", "0.5", "--cut-at", "90%", "--replica", `127.0.0.1:${r.port}`], { KVR_AUTH: "" });
  defer(() => p.stop("SIGKILL"));
  const t0 = Date.now();
  while (!/topology-v6:/.test(p.stderr()) && Date.now() - t0 < 15_000 && p.proc.exitCode === null) await Bun.sleep(50);
  expect(p.stderr()).toContain("topology-v6:");
  expect(await p.stop("SIGTERM", 10_000)).toBe(4);
  expect(p.stderr()).toContain("interrupted by SIGTERM");
  expect(p.stderr()).toContain("restore: topology version 5 put back as version 7");
  await backWith("7");
}, 90_000);

test("a master that owns slots or has replicas is refused (exit 4, nothing sent that changes it): the drill would replace its data; --replace-data drills it", async () => {
  const r = await node();
  const [R, S] = ["e".repeat(40), "f".repeat(40)];
  const owner = [`${R} 127.0.0.1 ${r.port} master - 0-8191`, `${S} 127.0.0.1 1 master - 8192-16383`].join("\n");
  expect(replyText(await nodeCmd(r.port, ["CLUSTERX", "SETNODEID", R]))).toBe("OK");
  expect(replyText(await nodeCmd(r.port, ["CLUSTERX", "SETNODES", owner, "4"]))).toBe("OK");
  const t0 = performance.now();
  const d = await runKvr(["drill", ...QUICK, "--replica", `127.0.0.1:${r.port}`, "--json"], { env: { KVR_AUTH: "" }, timeoutMs: 40_000 });
  expect(d.code).toBe(4);
  expect(parseResult(d.stdout).error).toStartWith(`the node at 127.0.0.1:${r.port} is a master that owns slots 0-8191: the drill makes it full-sync`);
  expect(d.stderr).toContain("give --replace-data only if this node's data may be lost");
  expect(performance.now() - t0).toBeLessThan(15_000);
  // Untouched: same version, same topology, still a master.
  expect(replyText(await nodeCmd(r.port, ["CLUSTERX", "VERSION"]))).toBe("4");
  expect((await info(r.port)).role).toBe("master");

  const forced = await runKvr(["drill", ...QUICK, "--replica", `127.0.0.1:${r.port}`, "--replace-data", "--no-recover", "--json"], { env: { KVR_AUTH: "" }, timeoutMs: 60_000 });
  expect({ code: forced.code, err: forced.code === 0 ? "" : forced.stderr.slice(-600) }).toEqual({ code: 0, err: "" });
  expect(parseResult(forced.stdout).restore).toMatchObject({ status: "restored", nodes: owner });
}, 90_000);

test("refuseDataLoss on Kvrocks-shaped replies: slots (migration markers too) or replicas refuse; no topology (CLUSTERDOWN), a replica, an empty master pass; an unreadable CLUSTER NODES refuses", async () => {
  const replies: { info: string; nodes: Buffer } = { info: "", nodes: Buffer.alloc(0) };
  const srv = await listen("127.0.0.1", 0, (c) => void serveCommands(c, undefined, async (cmd, args) => {
    if (cmd === "info") await c.write(bulk(replies.info));
    else if (cmd === "cluster" && args[1]?.toLowerCase() === "nodes") await c.write(replies.nodes);
    else await c.write(error(`ERR unexpected ${cmd}`));
  }), { readMs: 0 });
  defer(() => srv.close(50));
  const addr = { host: "127.0.0.1", port: srv.port };
  const check = async (info: string, nodes: Buffer) => {
    Object.assign(replies, { info, nodes });
    const c = await connect("127.0.0.1", srv.port, { readMs: 5000 });
    try {
      return await refuseDataLoss(c, addr).then(() => "allowed", (e: Error) => e.message);
    } finally {
      c.destroy();
    }
  };
  const master = (slaves: number) => `# Replication\r\nrole:master\r\nconnected_slaves:${slaves}\r\n`;
  const notInitialized = error("CLUSTERDOWN The cluster is not initialized");
  const me = "a".repeat(40), other = "b".repeat(40);
  // As Kvrocks prints it: myself's slots, and an outgoing migration marker on its line.
  const owning = bulk(`${me} 127.0.0.1:30001@40001 myself,master - 0 0 2 connected 0-8191 [8192->-${other}]\n${other} 127.0.0.1:30002@40002 master - 0 1700000000000 2 connected 8192-16383\n`);
  expect(await check(master(0), owning)).toStartWith(`the node at 127.0.0.1:${srv.port} is a master that owns slots 0-8191: the drill makes it full-sync from the drill's masters A and B`);
  expect(await check(master(2), notInitialized)).toStartWith(`the node at 127.0.0.1:${srv.port} is a master that has 2 replicas: `);
  expect(await check(master(0), notInitialized)).toBe("allowed");
  expect(await check("# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:1\r\n", owning)).toBe("allowed");
  expect(await check(master(0), error("ERR something else"))).toStartWith(`cannot tell whether the master at 127.0.0.1:${srv.port} owns slots (CLUSTER NODES: -ERR something else); give --replace-data`);
  expect(await check(master(0), bulk("garbage line\n"))).toStartWith(`cannot tell whether the master at 127.0.0.1:${srv.port} owns slots (CLUSTER NODES: `);
});
