/**
 * kvr drill --scenario slow-replica on the compiled binary: against the kvr master it starts
 * (--send-timeout 3s: dropped, PASS; --send-timeout 0: held, the #3356 signature, FAIL), and
 * with --master against a Kvrocks master double (tests/drill/kvrocks-master.ts) that blocks its
 * feed as Kvrocks did before PR #3357 or drops the replica as after it: the drill's SETs go to
 * keys in slots the node owns and are deleted at the end, on every path.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { keySlot, slotIn } from "../../lib/cluster/index.ts";
import { runKvr, spawnKvr } from "../helpers/kvr.ts";
import { startKvrocksMaster, type KvrocksMaster, type KvrocksMasterOptions } from "./kvrocks-master.ts";
import { parseResult, refused } from "./result.ts";
import { closedPort } from "../helpers/ports.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});



async function double(opts: KvrocksMasterOptions): Promise<KvrocksMaster> {
  const m = await startKvrocksMaster(opts);
  cleanups.push(() => m.close());
  return m;
}

const [major, minor] = (await Bun.file("/proc/sys/kernel/osrelease").text().catch(() => "0.0")).split(".").map(Number);
/** tcpi_rcv_wnd (the window our end advertises) is reported from Linux 6.2 on. */
const rcvWnd = major > 6 || (major === 6 && minor >= 2);

const names = (run: any) => run.phases.map((p: { name: string }) => p.name);
const slavePorts = (info: Record<string, string>) =>
  Object.entries(info)
    .filter(([k]) => /^slave\d+$/.test(k))
    .map(([, v]) => Number(/port=(\d+)/.exec(v)![1]));

describe("kvr drill --scenario slow-replica against the kvr master it starts", () => {
  test("--send-timeout 3s: the master drops the stuck replica 3–5 s after its window closed; PING never stalls, the healthy replica advances: PASS, exit 0; everything stopped", async () => {
    const r = await runKvr(["drill", "--scenario", "slow-replica", "--send-timeout", "3s", "--json"], { timeoutMs: 40_000 });
    expect({ code: r.code, err: r.code === 0 ? "" : r.stderr.slice(-1500) }).toEqual({ code: 0, err: "" });
    const res = parseResult(r.stdout);
    expect(res).toMatchObject({ command: "drill", verdict: "PASS", exitCode: 0, error: null, reasons: [] });
    expect(res.config).toMatchObject({ scenario: "slow-replica", master: "kvr", sendTimeoutMs: 3000, writeRate: 20000, budgetMs: 35000, giveUpMs: 90000 });
    const run = res.runs[0];
    expect(run.scenario).toBe("slow-replica");
    expect(names(run)).toEqual(["start-master", "start-healthy", "attach", "stop-reading", "window-closed", "dropped", "verify"]);
    const s = run.stuck;
    expect(s.held).toBe(false);
    expect(s.withinBudget).toBe(true);
    if (rcvWnd) expect(s.windowHow).toBe("rcv_wnd");
    expect(s.windowClosedAtMs).toBeGreaterThanOrEqual(s.stoppedAtMs);
    // the send timeout counts once the master's send buffer is full: 3 s plus its filling (~1 s at 20000 batches/s)
    expect(s.dropAfterWindowMs).toBeGreaterThanOrEqual(2900);
    expect(s.dropAfterWindowMs).toBeLessThanOrEqual(5500);
    expect(Math.abs(s.droppedAtMs - (s.windowClosedAtMs + s.dropAfterWindowMs))).toBeLessThanOrEqual(1); // each rounded to the ms
    expect(s.recvQ).toBeGreaterThan(0);
    // the master runs here: its end's Send-Q is seen, up to its send buffer (MiBs)
    expect(s.masterSendQ).toBeGreaterThan(256 * 1024);
    expect(["the master closed its end of the connection", "INFO replication no longer lists it"]).toContain(s.droppedHow);
    expect(res.latency).toMatchObject({ of: "drop", n: 1, hung: 0, min: s.dropAfterWindowMs });
    // PING on the master throughout, never 2 s without an answer (the verdict's stall)
    expect(run.ping.answered).toBeGreaterThanOrEqual(5);
    expect(run.ping.longestGapMs).toBeLessThan(2000);
    // the healthy replica advanced throughout and still streams
    expect(run.healthy.offsetAfter).toBeGreaterThan(run.healthy.offsetBefore + 10_000);
    expect(run.healthy.longestStallMs).toBeLessThan(3000);
    expect(run.healthy.link).toBe("up");
    // INFO replication before (both replicas) and after (the healthy one only)
    expect(slavePorts(run.infoBefore).sort()).toEqual([run.healthy.port, s.port].sort());
    expect(slavePorts(run.infoAfter)).toEqual([run.healthy.port]);
    expect(run.release).toBeNull();
    expect(res.timings).toMatchObject({ held: false, dropAfterWindowMs: s.dropAfterWindowMs, recoveredAfterReleaseMs: null });
    // every process the drill started is gone
    expect(await refused(run.master.host, run.master.port)).toBe(true);
    expect(await refused(run.healthy.host, run.healthy.port)).toBe(true);
  }, 40_000);

  test("--send-timeout 0 (never drops) with --give-up 8s: still held, the #3356 blocked-feed signature, FAIL, exit 1; the master recovers once the drill closes its socket", async () => {
    const t0 = performance.now();
    const r = await runKvr(["drill", "--scenario", "slow-replica", "--send-timeout", "0", "--give-up", "8s"], { timeoutMs: 40_000 });
    expect({ code: r.code, err: r.code === 1 ? "" : r.stderr.slice(-1500) }).toEqual({ code: 1, err: "" });
    // about 1 s of set-up, 8 s held, the release and 1 s of verify: not an unbounded wait
    expect(performance.now() - t0).toBeLessThan(20_000);
    const out = r.stdout;
    expect(out).toContain("--send-timeout 0: never drops");
    expect(out).toMatch(/held +still held 8\.\d\d s after it stopped reading \(--give-up 8\.00 s\): the blocked-feed signature \(Kvrocks #3356\)/);
    expect(out).toMatch(/window closed: +\+\d+\.\d{3}s \(Recv-Q /);
    expect(out).toContain("dropped:          no — still held at --give-up 8.00 s (the #3356 blocked-feed signature)");
    // the master's INFO at --give-up still lists the stuck replica
    expect(out).toMatch(/INFO at give-up: +connected_slaves:2;/);
    const rec = /after release: +the master recovered ([\d.]+) (ms|s) after the drill closed its socket/.exec(out);
    expect(rec).not.toBeNull();
    expect(Number(rec![1]) * (rec![2] === "s" ? 1000 : 1)).toBeLessThan(3000);
    const healthy = /healthy replica: +offset (\d+) → (\d+) \(\+\d+\), longest stall ([\d.]+) (ms|s)/.exec(out)!;
    expect(Number(healthy[2])).toBeGreaterThan(Number(healthy[1]) + 10_000);
    expect(Number(healthy[3]) * (healthy[4] === "s" ? 1000 : 1)).toBeLessThan(3000);
    const gap = /longest PING gap: ([\d.]+) ms/.exec(out);
    expect(gap).not.toBeNull();
    expect(Number(gap![1])).toBeLessThan(2000);
    const last = out.trim().split("\n").pop()!;
    expect(last).toStartWith("FAIL — the master still held the stuck replica's connection at --give-up 8.00 s");
    expect(last).toContain("the blocked-feed signature of Kvrocks #3356");
    expect(last).toMatch(/once the drill closed its socket the master recovered in [\d.]+ m?s$/);
  }, 40_000);
});

describe("kvr drill --scenario slow-replica --master: a running Kvrocks master (the double)", () => {
  /** The drill's keys still in the double's store. */
  const drillKeys = (m: KvrocksMaster) => [...m.store.keys()].filter((k) => k.startsWith("kvr:drill:"));

  test("before PR #3357 (a feed that blocks), cluster mode, a password: FAIL exit 1 as #3356; SETs only on keys in its slots, all deleted", async () => {
    const slots: Array<[number, number]> = [[0, 5460], [10923, 12000]];
    const m = await double({ password: "s3cret", slots, sendTimeoutMs: 0 });
    const r = await runKvr(["drill", "--scenario", "slow-replica", "--master", `127.0.0.1:${m.port}`, "--write-rate", "2000", "--give-up", "6s", "--json"], {
      env: { KVR_AUTH: "s3cret" },
      timeoutMs: 40_000,
    });
    expect({ code: r.code, err: r.code === 1 ? "" : r.stderr.slice(-1500) }).toEqual({ code: 1, err: "" });
    const res = parseResult(r.stdout);
    expect(res.config).toMatchObject({ scenario: "slow-replica", master: `127.0.0.1:${m.port}`, sendTimeoutMs: null, writeRate: 2000, auth: true });
    const run = res.runs[0];
    expect(names(run)).toEqual(["master", "start-writes", "start-healthy", "attach", "stop-reading", "window-closed", "held", "release", "verify", "delete-keys"]);
    expect(run.master).toMatchObject({ kind: "external", mode: "cluster", version: "2.10.1", pid: null });
    expect(run.stuck.held).toBe(true);
    expect(res.reasons[0]).toContain("the blocked-feed signature of Kvrocks #3356");
    expect(run.release.recoveredAfterMs).not.toBeNull();
    // the stuck replica's offset at --give-up lags the master's; it was listed then, and is gone after
    const held = run.infoHeld;
    const line = Object.entries(held).find(([k, v]) => /^slave\d+$/.test(k) && (v as string).includes(`port=${run.stuck.port},`))![1] as string;
    expect(Number(/lag=(\d+)/.exec(line)![1])).toBeGreaterThan(1000);
    expect(slavePorts(run.infoAfter)).toEqual([run.healthy.port]);
    // the healthy replica (a kvr replica of the double) kept streaming
    expect(run.healthy.offsetAfter).toBeGreaterThan(run.healthy.offsetBefore + 1000);
    expect(run.healthy.link).toBe("up");
    // the writes: 64 keys, each in a slot the node owns; no SET was refused; every key deleted
    expect(run.writes).toMatchObject({ kind: "set", rate: 2000, error: null });
    expect(run.writes.keys).toHaveLength(64);
    for (const k of run.writes.keys) {
      expect(k).toStartWith("kvr:drill:");
      expect(slotIn(keySlot(k), slots)).toBe(true);
    }
    expect(run.writes.sent).toBeGreaterThan(2000 * 6);
    expect(m.counts.moved).toBe(0);
    const set = new Set(m.commands.filter(([c]) => c === "set").map(([, k]) => k));
    expect([...set].sort()).toEqual([...run.writes.keys].sort());
    expect(run.writes.deleted).toBe(64);
    expect(drillKeys(m)).toEqual([]);
    expect(m.commands.filter(([c]) => c === "del").map(([, k]) => k).sort()).toEqual([...run.writes.keys].sort());
    expect(r.stdout + r.stderr).not.toContain("s3cret");
  }, 40_000);

  test("after PR #3357 (drops after 2 s unwritable), standalone; the first PSYNC of the drill's replica refused: it full-syncs first; PASS, keys deleted", async () => {
    // The drill's replica announces its own local port as its listening port; a kvr replica its admin port.
    let refusedOnce = 0;
    const m = await double({ sendTimeoutMs: 2000, refusePsync: (p) => p.listeningPort === p.remotePort && !refusedOnce++ });
    const r = await runKvr(["drill", "--scenario", "slow-replica", "--master", `127.0.0.1:${m.port}`, "--write-rate", "3000", "--budget", "6s", "--give-up", "15s", "--json"], { timeoutMs: 40_000 });
    expect({ code: r.code, err: r.code === 0 ? "" : r.stderr.slice(-1500) }).toEqual({ code: 0, err: "" });
    const run = parseResult(r.stdout).runs[0];
    expect(run.master.mode).toBe("standalone");
    expect(run.stuck.fullSync).toMatchObject({ files: 4 });
    expect(m.counts.psyncRefused).toBeGreaterThanOrEqual(1);
    expect(run.stuck.held).toBe(false);
    expect(run.stuck.dropAfterWindowMs).toBeGreaterThanOrEqual(1500);
    expect(run.stuck.dropAfterWindowMs).toBeLessThanOrEqual(6000);
    expect(run.writes.keys).toHaveLength(64);
    expect(run.writes.deleted).toBe(64);
    expect(drillKeys(m)).toEqual([]);
    expect(names(run).at(-1)).toBe("delete-keys");
  }, 40_000);

  test("a master whose blocked feed holds up every replica and PING: FAIL naming the PING stall and the healthy replica's stall too", async () => {
    const m = await double({ sendTimeoutMs: 0, sharedFeed: true, pingWaits: true });
    // Writes fast enough to fill the stuck replica's buffers within a few seconds even on a loaded
    // machine, and a --give-up that leaves the feed blocked well over 5 s after that.
    const r = await runKvr(["drill", "--scenario", "slow-replica", "--master", `127.0.0.1:${m.port}`, "--write-rate", "4000", "--give-up", "12s", "--json"], { timeoutMs: 40_000 });
    expect({ code: r.code, err: r.code === 1 ? "" : r.stderr.slice(-1500) }).toEqual({ code: 1, err: "" });
    const res = parseResult(r.stdout);
    const run = res.runs[0];
    expect(run.stuck.held).toBe(true);
    expect(run.ping.longestGapMs).toBeGreaterThan(2000);
    expect(run.healthy.longestStallMs).toBeGreaterThan(5000);
    expect(res.reasons).toHaveLength(3);
    expect(res.reasons[0]).toContain("the blocked-feed signature of Kvrocks #3356");
    expect(res.reasons[1]).toMatch(/^PING on the master went unanswered for [\d.]+ s \(a stall: over 2\.00 s\)$/);
    expect(res.reasons[2]).toMatch(/^the healthy replica's offset stood still for [\d.]+ s while the master's was ahead \(over 5\.00 s\)$/);
    // released: the blocked write fails, the feed and PING go on
    expect(run.release.recoveredAfterMs).not.toBeNull();
    expect(run.writes.deleted).toBe(64);
  }, 40_000);

  test("SIGTERM while the drill's replica is stuck: exit 4, its keys deleted, its processes stopped", async () => {
    const m = await double({ sendTimeoutMs: 0 });
    const p = spawnKvr(["drill", "--scenario", "slow-replica", "--master", `127.0.0.1:${m.port}`, "--write-rate", "1000"]);
    cleanups.push(() => p.stop("SIGKILL"));
    const deadline = Date.now() + 20_000;
    while (!/stop-reading:/.test(p.stderr()) && Date.now() < deadline && p.proc.exitCode === null) await Bun.sleep(50);
    const healthy = /start-healthy: kvr replica (\S+):(\d+)/.exec(p.stderr());
    expect(healthy).not.toBeNull();
    expect(drillKeys(m).length).toBeGreaterThan(0);
    expect(await p.stop("SIGTERM", 8000)).toBe(4);
    expect(p.stderr()).toContain("interrupted by SIGTERM");
    expect(p.stderr()).toMatch(/delete-keys: \d+ SETs written; 64 of 64 keys kvr:drill:\S+:\* deleted/);
    expect(drillKeys(m)).toEqual([]);
    expect(await refused(healthy![1], Number(healthy![2]))).toBe(true);
  }, 40_000);

  test("set-up problems are exit 4 naming them: a --master that is a replica, one that cannot be reached, a node owning no slots, a master refusing SET (a kvr master)", async () => {
    const noSlots = await double({ slots: [] });
    const probe = await double({});
    // A kvr replica's admin port: INFO says role:slave.
    const dir = mkdtempSync(join(tmpdir(), "kvr-slow-replica-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const rep = spawnKvr(["replica", "--dir", dir, "--master", `127.0.0.1:${probe.port}`, "--port", "0"]);
    cleanups.push(() => rep.stop());
    const port = Number((await rep.waitEvent((e) => e.event === "listening")).port);
    await rep.waitEvent((e) => e.event === "stream", 10_000);
    // A kvr master: a master, but it takes no SETs (refused at start-writes, before anything is attached).
    const km = spawnKvr(["master", "--generate", "2x64KiB", "--port", "0"]);
    cleanups.push(() => km.stop());
    const kmPort = Number((await km.waitEvent((e) => e.event === "listening")).port);
    const closed = await closedPort();
    const cases: Array<[string[], RegExp]> = [
      [["--master", `127.0.0.1:${kmPort}`], /the master refused the drill's writes: SET kvr:drill:\S+: -ERR unknown command `SET`, with args beginning with: `kvr:drill:[^`]+`, `x+…: drill a Kvrocks master \(a kvr master takes no SETs\)/],
      [["--master", `127.0.0.1:${port}`], new RegExp(`the node at 127\\.0\\.0\\.1:${port} is not a master \\(role:slave, a replica of 127\\.0\\.0\\.1:${probe.port}\\): drill its master`)],
      [["--master", `127.0.0.1:${closed}`], new RegExp(`cannot connect to the master under test at 127\\.0\\.0\\.1:${closed}`)],
      [["--master", `127.0.0.1:${noSlots.port}`], /owns no slots: the drill's SETs would be refused \(MOVED\)/],
    ];
    for (const [args, says] of cases) {
      const r = await runKvr(["drill", "--scenario", "slow-replica", ...args, "--give-up", "5s"], { timeoutMs: 20_000 });
      expect({ args, code: r.code }).toEqual({ args, code: 4 });
      expect(r.stderr).toMatch(says);
      // an argument quoted by the node is cut short, not 1 KiB of it
      expect(r.stderr).not.toContain("x".repeat(200));
      expect(r.stderr).not.toContain("attach");
      expect(r.stderr).not.toContain("by hand");
    }
  }, 40_000);
});
