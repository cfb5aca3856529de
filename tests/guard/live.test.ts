/**
 * kvr guard among real processes: kvr masters and replicas, and the pre-fix Kvrocks double
 * (tests/drill/broken-replica.ts) each in a process of its own. Over a 30 s run with the masters
 * stalled and released again and again, the guard destroys the stuck double's fetch socket and
 * nothing else: not the streaming replicas' sockets, not another stuck process's socket to the
 * same master, not other clients' connections. The parts run concurrently.
 */
import { describe, expect, test } from "bun:test";
import { pidAlive } from "../../lib/drill/sys.ts";
import { connect } from "../../lib/net/index.ts";
import { call, replyText } from "../../lib/resp/index.ts";
import { runKvr, spawnKvr, tempDir } from "../helpers/kvr.ts";
import { spawnBrokenReplica, type BrokenReplicaProcess } from "../drill/broken-replica-process.ts";
import { admin, info, startMaster, startReplica, until, type Master, type Replica } from "../replica/helpers.ts";

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
if (!isRoot) console.warn("SKIPPING the live kvr guard tests: not root (they need CAP_NET_ADMIN)");
const hasIp = Bun.spawnSync(["sh", "-c", "command -v ip"]).exitCode === 0;

const SOAK_MS = 30_000;
const RT = 1000;
const GUARD = ["--read-timeout", `${RT}ms`, "--interval", "100ms", "--timeout", "500ms"];
const ID_A = "a".repeat(40);
const ID_N = "d".repeat(40);

/** Make a broken double a slave of `master` (SETNODES by address): it starts its one fetch. */
async function slaveOf(node: BrokenReplicaProcess, master: Master): Promise<void> {
  const nodes = `${ID_A} 127.0.0.1 ${master.port} master - 0-16383\n${ID_N} 127.0.0.1 ${node.port} slave ${ID_A}`;
  expect(replyText(await admin(node.port, ["CLUSTERX", "SETNODES", nodes, "1"]))).toBe("OK");
  await until(async () => (await info(node.port)).master_sync_in_progress === "1", 10_000);
}

describe.skipIf(!isRoot)("kvr guard among real processes", () => {
  test.concurrent(
    `${SOAK_MS / 1000} s with the masters stalled and released: only the watched stuck node's fetch socket is destroyed; streaming replicas, another process's stuck socket to the same master and other clients are never touched; --dry-run beside it destroys nothing`,
    async () => {
      const cleanup: Array<() => unknown> = [];
      try {
        // A1 feeds two streaming kvr replicas; A2 serves a slow full sync to two stuck doubles.
        const a1 = await startMaster(["--generate", "4x64KiB", "--write-rate", "20", "--heartbeat", "300ms"]);
        cleanup.push(() => a1.stop());
        const a2 = await startMaster(["--generate", "32x1MiB", "--rate", "0.25"]);
        cleanup.push(() => a2.stop());
        const replicas: Replica[] = [];
        for (let i = 0; i < 2; i++) {
          const d = tempDir();
          cleanup.push(d.cleanup);
          const r = await startReplica(["--dir", d.path, "--master", `127.0.0.1:${a1.port}`]);
          cleanup.push(() => r.stop());
          replicas.push(r);
        }
        for (const r of replicas) await until(async () => (await info(r.port)).master_link_status === "up", 15_000);
        const watched = await spawnBrokenReplica("hang");
        cleanup.push(() => watched.close());
        const unwatched = await spawnBrokenReplica("hang");
        cleanup.push(() => unwatched.close());
        await slaveOf(watched, a2);
        await slaveOf(unwatched, a2);
        // Other clients of both masters, idle for the whole run.
        const clients = await Promise.all([a1, a2, a1, a2].map((m) => connect("127.0.0.1", m.port, { readMs: 0 })));
        for (const c of clients) cleanup.push(() => c.destroy());
        for (const c of clients) expect(replyText(await call(c, ["PING"]))).toBe("PONG");

        const label = (port: number) => `127.0.0.1:${port}`;
        const guard = spawnKvr(["guard", ...[...replicas.map((r) => r.port), watched.port].flatMap((p) => ["--node", label(p)]), ...GUARD]);
        cleanup.push(() => guard.stop("SIGKILL"));
        const dry = spawnKvr(["guard", ...[...replicas.map((r) => r.port), unwatched.port].flatMap((p) => ["--node", label(p)]), ...GUARD, "--dry-run"]);
        cleanup.push(() => dry.stop("SIGKILL"));
        for (const g of [guard, dry]) await g.waitEvent((e) => e.event === "watch" && e.armed === "syncing", 10_000);

        // Faults toggled on both masters: stalled 2 s (twice the read timeout), released 1.5 s.
        const ctl = await Promise.all([a1, a2].map((m) => connect("127.0.0.1", m.port, { readMs: 5000 })));
        for (const c of ctl) cleanup.push(() => c.destroy());
        const fault = async (args: string[]) => {
          for (const c of ctl) expect(replyText(await call(c, ["KVR", "FAULT", ...args]))).toBe("OK");
        };
        const t0 = performance.now();
        let stalls = 0;
        while (performance.now() - t0 < SOAK_MS) {
          await fault(["ADD", "stall"]);
          stalls++;
          await Bun.sleep(2000);
          await fault(["CLEAR"]);
          await Bun.sleep(1500);
        }
        expect(stalls).toBeGreaterThanOrEqual(8);
        expect(await guard.stop("SIGTERM")).toBe(0);
        expect(await dry.stop("SIGTERM")).toBe(0);

        // The guard destroyed the watched double's fetch socket, once, and nothing else.
        const destroyed = guard.events.filter((e) => e.event === "destroy");
        expect(destroyed).toHaveLength(1);
        expect(destroyed[0]).toMatchObject({ node: label(watched.port), pid: watched.pid, remote: label(a2.port), destroyed: true });
        expect((await info(watched.port)).kvr_fetch_connections).toBe("0");
        // The dry run reported the unwatched double's socket once; it is still open, never refetched.
        const would = dry.events.filter((e) => e.event === "destroy");
        expect(would).toHaveLength(1);
        expect(would[0]).toMatchObject({ node: label(unwatched.port), pid: unwatched.pid, remote: label(a2.port), dryRun: true, destroyed: false });
        expect(await info(unwatched.port)).toMatchObject({ kvr_fetch_connections: "1", kvr_fetches_opened: "1", master_sync_in_progress: "1" });
        // The streaming replicas were never armed, never cut: no retry, no reconnect after streaming began.
        for (const g of [guard, dry]) {
          for (const r of replicas) {
            const w = g.events.filter((e) => e.event === "watch" && e.node === label(r.port));
            expect(w.length).toBeGreaterThan(0);
            expect(w.every((e) => e.armed === null)).toBe(true);
          }
        }
        for (const r of replicas) {
          const ev = r.kvr.events;
          const streaming = ev.findIndex((e) => e.event === "stream");
          expect(streaming).toBeGreaterThanOrEqual(0);
          expect(ev.slice(streaming + 1).filter((e) => ["retry", "connect", "stopped"].includes(e.event))).toEqual([]);
          expect((await info(r.port)).master_link_status).toBe("up");
        }
        // Other clients' connections to both masters still answer.
        for (const c of clients) expect(replyText(await call(c, ["PING"]))).toBe("PONG");
      } finally {
        for (const c of cleanup.reverse()) await c();
      }
    },
    SOAK_MS + 40_000,
  );

  test.concurrent.each(hasIp ? (["stall", "netns"] as const) : (["stall"] as const))(
    "--cut %s: the pre-fix double (its own process) FAILs kvr drill without a guard and PASSes with --guard, SETNODES within read-timeout + 1 s",
    async (cut) => {
      const nodes = [await spawnBrokenReplica("hang"), await spawnBrokenReplica("hang")];
      try {
        const drill = (node: BrokenReplicaProcess, extra: string[]) =>
          runKvr(["drill", "--files", "8", "--file-size", "1MiB", "--cut-at", "10%", "--cut", cut, "--replica", `127.0.0.1:${node.port}`, "--budget", "3s", "--give-up", "4s", "--no-recover", ...extra, "--json"], { timeoutMs: 40_000 });
        const [without, withGuard] = await Promise.all([drill(nodes[0], []), drill(nodes[1], ["--guard", "--read-timeout", "2s"])]);
        expect(without.code).toBe(1);
        const a = JSON.parse(without.stdout).runs[0];
        expect(a.setnodes.hung).toBe(true);
        expect(a.guard).toBeNull();
        expect(withGuard.code).toBe(0);
        const res = JSON.parse(withGuard.stdout);
        expect(res.config.guard).toBe(true);
        const run = res.runs[0];
        expect(run.verdict).toBe("PASS");
        expect(run.setnodes.reply).toBe("OK");
        expect(run.setnodes.ms).toBeLessThanOrEqual(3000);
        expect(run.phases.map((p: { name: string }) => p.name)).toContain("start-guard");
        // The guard's actions in the verdict: the node's fetch socket to A, destroyed once idle for the read timeout.
        expect(run.guard.readTimeoutMs).toBe(2000);
        expect(run.guard.actions.length).toBeGreaterThanOrEqual(1);
        for (const x of run.guard.actions) {
          // Armed as syncing, or (once SETNODES froze it) as not answering: the node was last seen syncing either way.
          expect(x).toMatchObject({ remote: `${run.masterA.host}:${run.masterA.port}`, destroyed: true });
          expect(["syncing", "unresponsive"]).toContain(x.why);
          expect(x.idleMs).toBeGreaterThanOrEqual(2000);
        }
        expect(run.fetchConnections.open).toBe(0);
        // The guard child is gone with the drill.
        expect(pidAlive(run.guard.pid)).toBe(false);
      } finally {
        await Promise.all(nodes.map((n) => n.close()));
      }
    },
    40_000,
  );
});
