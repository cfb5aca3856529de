/**
 * kvr guard on the compiled binary against scripted nodes, each a process of its own: what it
 * destroys (only the node's own idle sockets to its master, while syncing or not answering) and
 * everything it must spare; --dry-run; the self-test's exit 4 when SOCK_DESTROY is refused;
 * usage errors.
 */
import { describe, expect, test } from "bun:test";
import { connect, listen, listenNoAccept, type Conn, type Server } from "../../lib/net/index.ts";
import { replyText } from "../../lib/resp/index.ts";
import { jsonLines, KVR_BIN, runKvr, spawnKvr, type KvrEvent, type KvrProcess } from "../helpers/kvr.ts";
import { spawnBrokenReplica } from "../drill/broken-replica-process.ts";
import { spawnScriptedNode, type ScriptedNode } from "./scripted-node.ts";

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const hasSetpriv = Bun.spawnSync(["sh", "-c", "command -v setpriv"]).exitCode === 0;
if (!isRoot) console.warn("SKIPPING the kvr guard tests that destroy sockets: not root (they need CAP_NET_ADMIN)");

const RT = 600;
const FAST = ["--read-timeout", `${RT}ms`, "--interval", "50ms", "--timeout", "600ms"];

/** A test master: accepts connections; feeds a byte every 100 ms to the ones marked active. */
async function startMaster(): Promise<{ server: Server; port: number; active: Set<number>; flood(remotePort: number, bytes: number): Promise<void>; close(): Promise<void> }> {
  const server = await listen("127.0.0.1", 0, () => {}, { readMs: 0 });
  const active = new Set<number>();
  const timer = setInterval(() => {
    for (const c of server.connections) if (active.has(c.remotePort)) c.write("x").catch(() => {});
  }, 100);
  /** The accepted end of the client whose local port is `p` (its accept may trail the client's connect). */
  const byPeer = async (p: number): Promise<Conn> => {
    for (let i = 0; i < 200; i++) {
      const c = [...server.connections].find((x) => x.remotePort === p);
      if (c) return c;
      await Bun.sleep(10);
    }
    throw new Error(`no accepted connection from port ${p}`);
  };
  return {
    server,
    port: server.port,
    active,
    flood: async (p, bytes) => (await byPeer(p)).write(Buffer.alloc(bytes, 1)),
    async close() {
      clearInterval(timer);
      await server.close(0);
    },
  };
}

async function scripted(fields: Record<string, string>, cleanup: Array<() => unknown>): Promise<ScriptedNode> {
  const n = await spawnScriptedNode();
  cleanup.push(() => n.close());
  const kv = Object.entries(fields).flat();
  if (kv.length) expect(replyText(await n.cmd("SCRIPT", "SET", ...kv))).toBe("OK");
  return n;
}

const open = async (n: ScriptedNode, port: number, paused = false) => Number(await n.cmd("SCRIPT", "CONNECT", "127.0.0.1", String(port), ...(paused ? ["paused"] : [])));
const slaveOf = (port: number, link: "up" | "down", sync: 0 | 1) => ({ role: "slave", master_host: "127.0.0.1", master_port: String(port), master_link_status: link, master_sync_in_progress: String(sync) });
const label = (n: ScriptedNode) => `127.0.0.1:${n.port}`;
const destroys = (g: KvrProcess) => g.events.filter((e) => e.event === "destroy");
const of = (g: KvrProcess, event: string, n: ScriptedNode) => g.events.filter((e) => e.event === event && e.node === label(n));

describe.skipIf(!isRoot)("kvr guard: what it destroys and what it spares", () => {
  test("only the node's own idle socket to its master (by address or by name), while syncing or not answering; never a streaming node's, another process's, another address's, a busy or unread one, nor anything of a node never seen; --only-unresponsive waits for the node to stop answering; --dry-run destroys nothing", async () => {
    const cleanup: Array<() => unknown> = [];
    try {
      const m = await startMaster();
      cleanup.push(() => m.close());
      const other = await startMaster(); // another address: same host, another port
      cleanup.push(() => other.close());

      // N1 syncing: idle socket to the master (destroyed); a fed one, one to another address, one full of unread bytes (spared).
      const n1 = await scripted(slaveOf(m.port, "down", 1), cleanup);
      const n1Idle = await open(n1, m.port);
      const n1Busy = await open(n1, m.port);
      m.active.add(n1Busy);
      const n1Other = await open(n1, other.port);
      const n1Unread = await open(n1, m.port, true);
      await m.flood(n1Unread, 256 * 1024);
      // N2 streaming (link up), frozen later: never touched.
      const n2 = await scripted(slaveOf(m.port, "up", 0), cleanup);
      const n2Sock = await open(n2, m.port);
      // N3 link down, not syncing: spared while it answers, destroyed once it does not.
      const n3 = await scripted(slaveOf(m.port, "down", 0), cleanup);
      const n3Sock = await open(n3, m.port);
      // N4 claims the process_id of this test process, which holds an idle socket to the same master.
      const n4 = await scripted(slaveOf(m.port, "down", 1), cleanup);
      expect(replyText(await n4.cmd("SCRIPT", "PID", String(process.pid)))).toBe("OK");
      const n4Sock = await open(n4, m.port);
      const mine = await connect("127.0.0.1", m.port, { readMs: 0 });
      cleanup.push(() => mine.destroy());
      // N5 a master with a socket to the same address.
      const n5 = await scripted({ role: "master" }, cleanup);
      const n5Sock = await open(n5, m.port);
      // N7 syncing from its master by name (master_host:localhost): destroyed like N1's.
      const n7 = await scripted({ ...slaveOf(m.port, "down", 1), master_host: "localhost" }, cleanup);
      const n7Sock = await open(n7, m.port);
      // N8 never accepts (connects hang): unresponsive from the start, never seen, nothing known to act on.
      const hole = await listenNoAccept("127.0.0.1", 0);
      cleanup.push(() => hole.close());
      const n8 = `127.0.0.1:${hole.port}`;
      // N9 syncing, watched by an --only-unresponsive guard only: spared while it answers, destroyed once it does not.
      const n9 = await scripted(slaveOf(m.port, "down", 1), cleanup);
      const n9Sock = await open(n9, m.port);
      // N6 syncing, watched by a --dry-run guard only.
      const n6 = await scripted(slaveOf(m.port, "down", 1), cleanup);
      const n6Sock = await open(n6, m.port);

      const guard = spawnKvr(["guard", ...[n1, n2, n3, n4, n5, n7].flatMap((n) => ["--node", label(n)]), "--node", n8, ...FAST]);
      cleanup.push(() => guard.stop("SIGKILL"));
      const dry = spawnKvr(["guard", "--node", label(n6), ...FAST, "--dry-run"]);
      cleanup.push(() => dry.stop("SIGKILL"));
      const patient = spawnKvr(["guard", "--node", label(n9), ...FAST, "--only-unresponsive"]);
      cleanup.push(() => patient.stop("SIGKILL"));

      await guard.waitEvent((e) => e.event === "destroy" && e.node === label(n1), 5000);
      await guard.waitEvent((e) => e.event === "destroy" && e.node === label(n7), 5000);
      await dry.waitEvent((e) => e.event === "destroy", 5000);
      // Everything else has been idle for more than the read timeout, with the nodes answering.
      await Bun.sleep(3 * RT);
      expect(destroys(guard)).toHaveLength(2);
      expect(destroys(patient)).toHaveLength(0);
      expect(patient.events.find((e) => e.event === "watch" && e.node === label(n9) && e.syncInProgress === true)).toMatchObject({ armed: null });
      const frozeAt = Date.now();
      for (const n of [n2, n3, n9]) expect(replyText(await n.cmd("SCRIPT", "FREEZE", "2000"))).toBe("OK");
      await guard.waitEvent((e) => e.event === "destroy" && e.node === label(n3), 3000);
      await patient.waitEvent((e) => e.event === "destroy", 3000);
      await guard.waitEvent((e) => e.event === "node-recovered" && e.node === label(n2), 4000);
      await guard.waitEvent((e) => e.event === "node-recovered" && e.node === label(n3), 1000);
      await Bun.sleep(2 * RT);
      expect(await guard.stop("SIGTERM")).toBe(0);
      expect(await dry.stop("SIGTERM")).toBe(0);
      expect(await patient.stop("SIGTERM")).toBe(0);

      // Exactly three destroyed: N1's and N7's idle sockets (syncing) and N3's (frozen).
      const all = destroys(guard) as Array<KvrEvent & Record<string, unknown>>;
      expect(all).toHaveLength(3);
      const d = all.filter((e) => e.node !== label(n7));
      expect(all.find((e) => e.node === label(n7))).toMatchObject({ pid: n7.pid, local: `127.0.0.1:${n7Sock}`, remote: `127.0.0.1:${m.port}`, why: "syncing", destroyed: true });
      expect(d[0]).toMatchObject({ node: label(n1), pid: n1.pid, local: `127.0.0.1:${n1Idle}`, remote: `127.0.0.1:${m.port}`, why: "syncing", dryRun: false, destroyed: true, error: null, bytesReceived: 0 });
      expect(d[0].idleMs as number).toBeGreaterThanOrEqual(RT);
      expect(d[1]).toMatchObject({ node: label(n3), pid: n3.pid, local: `127.0.0.1:${n3Sock}`, remote: `127.0.0.1:${m.port}`, why: "unresponsive", destroyed: true });
      expect(Date.parse(String(d[1].ts))).toBeGreaterThanOrEqual(frozeAt);
      expect(guard.events.find((e) => e.event === "summary")).toMatchObject({ destroyed: 3, wouldDestroy: 0, failed: 0 });

      // The kernel agrees: destroyed ones are closed in their process, every other one is open.
      const c1 = await n1.conns();
      expect(c1.get(n1Idle)?.open).toBe(false);
      expect(c1.get(n1Busy)).toMatchObject({ open: true });
      expect(c1.get(n1Busy)!.bytes).toBeGreaterThan(10);
      expect(c1.get(n1Other)?.open).toBe(true);
      expect(c1.get(n1Unread)?.open).toBe(true);
      expect((await n2.conns()).get(n2Sock)?.open).toBe(true);
      expect((await n3.conns()).get(n3Sock)?.open).toBe(false);
      expect((await n4.conns()).get(n4Sock)?.open).toBe(true);
      expect((await n5.conns()).get(n5Sock)?.open).toBe(true);
      expect(mine.isClosed).toBe(false);

      // What the guard said about each node.
      expect(of(guard, "watch", n1).at(-1)).toMatchObject({ pid: n1.pid, pidVerified: true, role: "slave", link: "down", syncInProgress: true, armed: "syncing" });
      expect(of(guard, "watch", n2).at(-1)).toMatchObject({ link: "up", armed: null });
      expect(of(guard, "node-unresponsive", n2)[0]).toMatchObject({ lastSeen: { link: "up", syncInProgress: false } });
      expect(of(guard, "node-unresponsive", n3)[0]).toMatchObject({ lastSeen: { link: "down", syncInProgress: false, master: `127.0.0.1:${m.port}` } });
      expect(of(guard, "node-recovered", n3)[0].unresponsiveMs as number).toBeGreaterThan(800);
      expect(of(guard, "watch", n4).at(-1)).toMatchObject({ pid: process.pid, pidVerified: false });
      expect(guard.stderr()).toContain(`process ${process.pid} does not hold a socket listening on port ${n4.port}`);
      expect(of(guard, "watch", n5).at(-1)).toMatchObject({ role: "master", armed: null });
      expect((await n7.conns()).get(n7Sock)?.open).toBe(false);
      const never = guard.events.filter((e) => e.node === n8);
      expect(never.map((e) => e.event)).toEqual(["node-unresponsive"]);
      expect(never[0]).toMatchObject({ pid: null, lastSeen: null });
      expect(String(never[0].reason)).toContain("could not connect");

      // --only-unresponsive: N9's socket only once it stopped answering.
      const pd = destroys(patient);
      expect(pd).toHaveLength(1);
      expect(pd[0]).toMatchObject({ node: label(n9), local: `127.0.0.1:${n9Sock}`, why: "unresponsive", destroyed: true });
      expect(Date.parse(String(pd[0].ts))).toBeGreaterThanOrEqual(frozeAt);
      expect((await n9.conns()).get(n9Sock)?.open).toBe(false);

      // --dry-run: reported once, destroyed nothing.
      const dd = destroys(dry);
      expect(dd).toHaveLength(1);
      expect(dd[0]).toMatchObject({ node: label(n6), local: `127.0.0.1:${n6Sock}`, dryRun: true, destroyed: false });
      expect((await n6.conns()).get(n6Sock)?.open).toBe(true);
      expect(dry.events.find((e) => e.event === "summary")).toMatchObject({ destroyed: 0, wouldDestroy: 1 });
    } finally {
      for (const c of cleanup.reverse()) await c();
    }
  }, 30_000);
});

describe.skipIf(!isRoot)("kvr guard: human output", () => {
  test("without --json every destroy is a log line: node, pid, local → remote, bytes received, idle time, why; a summary at stop", async () => {
    const cleanup: Array<() => unknown> = [];
    try {
      const m = await startMaster();
      cleanup.push(() => m.close());
      const n = await scripted(slaveOf(m.port, "down", 1), cleanup);
      const sock = await open(n, m.port);
      await m.flood(sock, 1000);
      const g = Bun.spawn([KVR_BIN, "guard", "--node", label(n), ...FAST], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
      cleanup.push(() => g.kill("SIGKILL"));
      const err = new Response(g.stderr).text();
      const outText = new Response(g.stdout).text();
      for (let i = 0; i < 100 && (await n.conns()).get(sock)?.open; i++) await Bun.sleep(50);
      g.kill("SIGTERM");
      expect(await g.exited).toBe(0);
      const log = await err;
      expect(log).toMatch(/self-test: destroyed a loopback socket of its own in [\d.]+ ms/);
      expect(log).toContain(`watching ${label(n)} every 50 ms: a socket of a node to its master that receives nothing for 600 ms while the node syncs or does not answer is destroyed`);
      expect(log).toContain(`${label(n)} (pid ${n.pid}): slave of 127.0.0.1:${m.port}, link down, syncing — armed (syncing)`);
      expect(log).toMatch(new RegExp(`${label(n)} \\(pid ${n.pid}\\): destroyed 127\\.0\\.0\\.1:${sock} → 127\\.0\\.0\\.1:${m.port}: received 1000 B, nothing for [\\d.]+ m?s \\(node syncing\\)`));
      expect(log).toContain("stopped: 1 socket(s) destroyed");
      expect(await outText).toBe("");
    } finally {
      for (const c of cleanup.reverse()) await c();
    }
  }, 20_000);
});

describe("kvr guard: the start-up line states the rule", () => {
  test("--only-unresponsive: destroyed only while the node does not answer, not because it syncs", async () => {
    const cleanup: Array<() => unknown> = [];
    try {
      const n = await scripted(slaveOf(1, "down", 1), cleanup);
      const g = spawnKvr(["guard", "--node", label(n), ...FAST, "--only-unresponsive", "--dry-run"], { NO_COLOR: "1" });
      cleanup.push(() => g.stop("SIGKILL"));
      await g.waitEvent((e) => e.event === "watch", 5000);
      for (let i = 0; i < 100 && !g.stderr().includes("watching"); i++) await Bun.sleep(20);
      const line = g.stderr().split("\n").find((l) => l.includes("watching"));
      expect(line).toContain(`watching ${label(n)} every 50 ms: a socket of a node to its master that receives nothing for 600 ms while the node does not answer (--only-unresponsive: not merely because it syncs) is reported (--dry-run: nothing is destroyed)`);
    } finally {
      for (const c of cleanup.reverse()) await c();
    }
  }, 20_000);
});

describe.skipIf(!isRoot)("kvr guard: a node behind a password", () => {
  test("KVR_AUTH logs in (process_id verified); a wrong --auth is reported and nothing is armed; the password is never printed", async () => {
    const node = await spawnBrokenReplica("good", "s3cret");
    try {
      const [good, bad] = [spawnKvr(["guard", "--node", `127.0.0.1:${node.port}`, ...FAST], { KVR_AUTH: "s3cret" }), spawnKvr(["guard", "--node", `127.0.0.1:${node.port}`, ...FAST, "--auth", "wrong"])];
      try {
        expect(await good.waitEvent((e) => e.event === "watch", 5000)).toMatchObject({ pid: node.pid, pidVerified: true, role: "master" });
        await Bun.sleep(5 * 50);
        expect(bad.events.filter((e) => e.event === "watch")).toEqual([]);
        expect(bad.stderr()).toContain("answered AUTH with -ERR Invalid password");
        expect(bad.stderr()).toContain("answered INFO replication with -NOAUTH Authentication required.");
      } finally {
        expect(await good.stop("SIGTERM")).toBe(0);
        expect(await bad.stop("SIGTERM")).toBe(0);
      }
      for (const g of [good, bad]) expect(JSON.stringify(g.events) + g.stderr()).not.toContain("s3cret");
      expect(bad.stderr()).not.toContain("wrong");
    } finally {
      await node.close();
    }
  }, 20_000);
});

describe("kvr guard: when it cannot run", () => {
  test.skipIf(!isRoot || !hasSetpriv)("without CAP_NET_ADMIN the self-test's destroy is refused: exit 4 naming CAP_NET_ADMIN and CONFIG_INET_DIAG_DESTROY, no node contacted", async () => {
    let contacted = 0;
    const node = await listen("127.0.0.1", 0, (c) => {
      contacted++;
      c.destroy();
    });
    try {
      const drop = ["setpriv", "--inh-caps", "-net_admin", "--bounding-set", "-net_admin"];
      const { stdout, stderr, code } = await runKvr(["guard", "--node", `127.0.0.1:${node.port}`, "--json"], { prefix: drop });
      expect(code).toBe(4);
      expect(stderr).toContain("kvr guard cannot run");
      expect(stderr).toContain("CAP_NET_ADMIN");
      expect(stderr).toContain("CONFIG_INET_DIAG_DESTROY");
      expect(stderr).toContain("EPERM");
      const lines = jsonLines(stdout);
      expect(lines[0]).toMatchObject({ event: "self-test", ok: false });
      expect(lines.at(-1)).toMatchObject({ command: "guard", exitCode: 4 });
      expect(lines.some((l) => l.event === "watch")).toBe(false);
      expect(contacted).toBe(0);
    } finally {
      await node.close(0);
    }
  }, 20_000);

  test.skipIf(!isRoot || !hasSetpriv)("--dry-run without CAP_NET_ADMIN: the refused self-test is a warning and it watches (it would destroy nothing anyway)", async () => {
    const node = await spawnScriptedNode();
    try {
      const drop = ["setpriv", "--inh-caps", "-net_admin", "--bounding-set", "-net_admin"];
      const r = Bun.spawn([...drop, KVR_BIN, "guard", "--node", `127.0.0.1:${node.port}`, "--dry-run", "--json"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
      const out = new Response(r.stdout).text();
      const err = new Response(r.stderr).text();
      await Bun.sleep(1500);
      r.kill("SIGTERM");
      expect(await r.exited).toBe(0);
      const events = jsonLines(await out);
      expect(events[0]).toMatchObject({ event: "self-test", ok: false, dryRun: true });
      expect(events.find((e) => e.event === "watch")).toMatchObject({ node: `127.0.0.1:${node.port}`, pid: node.pid, pidVerified: true });
      expect(await err).toContain("a run without --dry-run would stop here, exit 4");
    } finally {
      await node.close();
    }
  }, 20_000);

  test.skipIf(!isRoot || !hasSetpriv)("kvr drill --guard where the guard cannot destroy sockets: the drill could not run, exit 4, naming CAP_NET_ADMIN", async () => {
    const node = await spawnScriptedNode();
    try {
      const drop = ["setpriv", "--inh-caps", "-net_admin", "--bounding-set", "-net_admin"];
      const { stderr, code } = await runKvr(["drill", "--files", "4", "--file-size", "64KiB", "--replica", `127.0.0.1:${node.port}`, "--guard"], { prefix: drop });
      expect(code).toBe(4);
      expect(stderr).toContain("the drill could not run: kvr guard exited (code 4)");
      expect(stderr).toContain("CAP_NET_ADMIN");
    } finally {
      await node.close();
    }
  }, 20_000);

  test("usage errors exit 2 naming the flag, before anything starts", async () => {
    const cases: Array<[string[], string]> = [
      [[], "--node"],
      [["--node", "nope"], "--node"],
      [["--node", "127.0.0.1:1", "--node", "127.0.0.1:1"], "given twice"],
      [["--node", "127.0.0.1:1", "--read-timeout", "soon"], "--read-timeout"],
      [["--node", "127.0.0.1:1", "--interval", "1ms"], "--interval"],
      [["--node", "127.0.0.1:1", "--timeout", "5", "--timeout", "6"], "--timeout"],
    ];
    const rs = await Promise.all(cases.map(([args]) => runKvr(["guard", ...args], { timeoutMs: 10_000 })));
    rs.forEach((r, i) => {
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(cases[i][1]);
      expect(r.stderr).toContain("kvr guard --help");
    });
  }, 20_000);
});
