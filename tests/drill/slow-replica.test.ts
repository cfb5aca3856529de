/**
 * kvr drill --scenario slow-replica on the compiled binary: against the kvr master it starts
 * (--send-timeout 3s: dropped, PASS; --send-timeout 0: held, the #3356 signature, FAIL), and
 * with --master against a Kvrocks master double (tests/drill/kvrocks-master.ts) that blocks its
 * feed as Kvrocks did before PR #3357 or drops the replica as after it: the drill's SETs go to
 * keys in slots the node owns and are deleted at the end, on every path.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { keySlot, slotIn } from "../../lib/cluster/index.ts";
import { connect } from "../../lib/net/index.ts";
import { runKvr, spawnKvr } from "../helpers/kvr.ts";
import { startKvrocksMaster, type KvrocksMaster, type KvrocksMasterOptions } from "./kvrocks-master.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function parseResult(stdout: string): any {
  const lines = stdout.trim().split("\n").filter(Boolean);
  expect(lines.length).toBe(1); // --json: exactly one result object on stdout
  return JSON.parse(lines[0]);
}

async function refused(host: string, port: number): Promise<boolean> {
  try {
    const c = await connect(host, port, { connectMs: 1000 });
    c.destroy();
    return false;
  } catch (e) {
    return (e as { code?: string }).code === "REFUSED";
  }
}

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
    expect(s.droppedAtMs).toBe(s.windowClosedAtMs + s.dropAfterWindowMs);
    expect(s.recvQ).toBeGreaterThan(0);
    // the master runs here: its end's Send-Q is seen, up to its send buffer (MiBs)
    expect(s.masterSendQ).toBeGreaterThan(256 * 1024);
    expect(["the master closed its end of the connection", "INFO replication no longer lists it"]).toContain(s.droppedHow);
    expect(res.latency).toMatchObject({ of: "drop", n: 1, hung: 0, min: s.dropAfterWindowMs });
    // PING on the master throughout
    expect(run.ping.sent).toBeGreaterThan(20);
    expect(run.ping.longestGapMs).toBeLessThan(1000);
    // the healthy replica advanced throughout and still streams
    expect(run.healthy.offsetAfter).toBeGreaterThan(run.healthy.offsetBefore + 10_000);
    expect(run.healthy.longestStallMs).toBeLessThan(2000);
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
    expect(Number(healthy[3]) * (healthy[4] === "s" ? 1000 : 1)).toBeLessThan(2000);
    const gap = /longest PING gap: ([\d.]+) ms/.exec(out);
    expect(gap).not.toBeNull();
    expect(Number(gap![1])).toBeLessThan(1000);
    const last = out.trim().split("\n").pop()!;
    expect(last).toStartWith("FAIL — the master still held the stuck replica's connection at --give-up 8.00 s");
    expect(last).toContain("the blocked-feed signature of Kvrocks #3356");
    expect(last).toMatch(/once the drill closed its socket the master recovered in [\d.]+ m?s$/);
  }, 40_000);
});
