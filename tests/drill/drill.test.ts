/**
 * kvr drill on the compiled binary: the scenario end to end against kvr's own replica, against
 * a broken replica (Kvrocks before the fix), with a kernel-level cut, repeated, and its errors.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { runKvr, spawnKvr } from "../helpers/kvr.ts";
import { startBrokenReplica, type BrokenReplica } from "./broken-replica.ts";
import { parseResult, refused } from "./result.ts";
import { closedPort } from "../helpers/ports.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Small and quick: 8 × 1 MiB; at the default rate a full sync takes ~10 s, the cut comes at 20%. */
const SMALL = ["--files", "8", "--file-size", "1MiB"];
const QUICK = [...SMALL, "--cut-at", "20%"];



async function broken(mode: "hang" | "leak" | "good" | "slow" | "deaf", requirepass?: string): Promise<BrokenReplica> {
  const b = await startBrokenReplica(mode, requirepass);
  cleanups.push(() => b.close());
  return b;
}

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const hasIp = (() => {
  try {
    return Bun.spawnSync(["ip", "-V"]).exitCode === 0;
  } catch {
    return false;
  }
})();
const netnsOk = isRoot && hasIp && process.platform === "linux";
if (!netnsOk) console.warn(`SKIPPING the --cut netns drill tests: ${!isRoot ? "not root" : "no iproute2 'ip' command"}`);

describe("kvr drill against a kvr replica", () => {
  test("PASS with the result object: SETNODES < 1 s, new master in INFO, fetch connections closed (read from the kernel, no `ss` on PATH), exit 0; everything stopped", async () => {
    const t0 = performance.now();
    // An empty PATH: the drill needs no tool to check A's connections (the kernel's socket table).
    const r = await runKvr(["drill", ...QUICK, "--json"], { timeoutMs: 30_000, env: { PATH: "/nonexistent" } });
    expect(r.code).toBe(0);
    const res = parseResult(r.stdout);
    // schema
    expect(res).toMatchObject({ command: "drill", verdict: "PASS", exitCode: 0, error: null });
    expect(res.config).toMatchObject({ scenario: "fetch-hang", cut: "stall", cutAt: 0.2, switchTo: "replica", newMaster: "kvr", budgetMs: 6000, giveUpMs: 30000, files: 8, repeat: 1, recover: true, recoverTimeoutMs: 60000 });
    expect(typeof res.config.rateMBps).toBe("number");
    expect(res.runs).toHaveLength(1);
    const run = res.runs[0];
    expect(run.phases.map((p: { name: string }) => p.name)).toEqual(["start-masters", "start-replica", "topology-v1", "sync", "cut", "setnodes-v2", "verify", "recover"]);
    for (const p of run.phases) {
      expect(typeof p.atMs).toBe("number");
      expect(typeof p.ms).toBe("number");
      expect(typeof p.detail).toBe("string");
    }
    expect(res.phases).toEqual(run.phases);
    expect(run.setnodes.hung).toBe(false);
    expect(run.setnodes.reply).toBe("OK");
    expect(run.setnodes.ms).toBeLessThan(1000);
    expect(run.setnodes.withinBudget).toBe(true);
    expect(res.timings.setnodesMs).toBe(run.setnodes.ms);
    expect(res.latency).toMatchObject({ n: 1, min: run.setnodes.ms, median: run.setnodes.ms, p99: run.setnodes.ms });
    expect(run.ping.answered).toBeGreaterThanOrEqual(1);
    expect(run.ping.longestGapMs).toBeLessThan(1000);
    // A had served about --cut-at of its bytes when it was cut
    expect(run.cut.fraction).toBeGreaterThanOrEqual(0.2);
    expect(run.cut.fraction).toBeLessThan(0.6);
    expect(run.cut.bytesSent).toBeGreaterThan(0);
    expect(run.fetchConnections).toMatchObject({ method: "master-side", open: 0 });
    expect(run.role.ok).toBe(true);
    expect(res.infoBefore).toMatchObject({ role: "slave", master_host: run.masterA.host, master_port: String(run.masterA.port) });
    expect(res.infoAfter).toMatchObject({ role: "slave", master_host: run.masterB.host, master_port: String(run.masterB.port) });
    expect(run.versions).toEqual({ v1: 1, v2: 2 });
    // recovered: streaming from B (link up), at B's checkpoint sequence (kvr master's default, 100)
    expect(run.recover).toMatchObject({ ok: true, bSeq: 100, link: "up", master: `${run.masterB.host}:${run.masterB.port}`, timeoutMs: 60000 });
    expect(run.recover.offset).toBeGreaterThanOrEqual(100);
    expect(run.recover.ms).toBeLessThan(5000);
    expect(run.recover.detail).toMatch(/^recovered in [\d.]+ m?s: master_link_status:up with B /);
    expect(res.timings.recoveredMs).toBe(run.recover.ms);
    expect(performance.now() - t0).toBeLessThan(15_000);
    // every process the drill started is gone
    expect(await refused(run.masterA.host, run.masterA.port)).toBe(true);
    expect(await refused(run.masterB.host, run.masterB.port)).toBe(true);
    expect(await refused(run.replica.host, run.replica.port)).toBe(true);
  }, 30_000);

  test("pure defaults (the README's first command): PASS, exit 0, human report", async () => {
    const r = await runKvr(["drill"], { timeoutMs: 40_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("64 × 2.00 MiB");
    expect(r.stdout).toMatch(/SETNODES v2: +[\d.]+ ms → OK/);
    expect(r.stdout).toMatch(/longest PING gap: +[\d.]+ ms/);
    expect(r.stdout).toMatch(/bytes at cut: +[\d.]+ MiB of 128 MiB \((2\d|3\d|4\d)%\)/);
    expect(r.stdout).toMatch(/recover +recovered in [\d.]+ m?s: master_link_status:up with B /);
    expect(r.stdout).toMatch(/recovered: +✓ in [\d.]+ m?s \(streaming from B, offset \d+\)/);
    expect(r.stdout.trim().split("\n").pop()).toBe("PASS");
    expect(r.stdout.match(/PASS/g)).toHaveLength(1); // once, as the last line
  }, 40_000);

  test("--switch-to master with --new-master blackhole: PASS, INFO role:master", async () => {
    const r = await runKvr(["drill", ...QUICK, "--switch-to", "master", "--new-master", "blackhole", "--json"], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    const run = parseResult(r.stdout).runs[0];
    expect(run.masterB.kind).toBe("blackhole");
    expect(run.infoAfter.role).toBe("master");
    // a master has no master to recover to: no recovery phase
    expect(run.recover).toBeNull();
    expect(run.phases.map((p: { name: string }) => p.name)).not.toContain("recover");
  }, 30_000);

  test("master B unreachable (a blackhole): no recovery phase by default (PASS); with --recover-timeout the node never streams from B: FAIL, exit 1, named", async () => {
    const t0 = performance.now();
    const [r, skip] = await Promise.all([
      runKvr(["drill", ...QUICK, "--new-master", "blackhole", "--recover-timeout", "2s", "--json"], { timeoutMs: 30_000 }),
      runKvr(["drill", ...QUICK, "--new-master", "blackhole", "--json"], { timeoutMs: 30_000 }),
    ]);
    expect(r.code).toBe(1);
    const res = parseResult(r.stdout);
    const run = res.runs[0];
    expect(run.setnodes).toMatchObject({ reply: "OK", hung: false, withinBudget: true });
    expect(run.role.ok).toBe(true);
    expect(run.recover).toMatchObject({ ok: false, ms: null, timeoutMs: 2000, bSeq: null, link: "down", master: `${run.masterB.host}:${run.masterB.port}` });
    expect(res.reasons).toEqual([
      `the node did not recover within --recover-timeout 2.00 s of the SETNODES reply: INFO shows master_link_status:down, master ${run.masterB.host}:${run.masterB.port}, slave_repl_offset 0; ` +
        `expected master_link_status:up with B ${run.masterB.host}:${run.masterB.port} (B is a blackhole: it never answers)`,
    ]);
    const rec = run.phases.find((p: { name: string }) => p.name === "recover");
    expect(rec.ms).toBeGreaterThanOrEqual(1500);
    expect(rec.ms).toBeLessThan(4000);
    expect(skip.code).toBe(0);
    const s = parseResult(skip.stdout);
    expect(s.config.recover).toBe(false);
    expect(s.runs[0].recover).toBeNull();
    expect(s.runs[0].phases.map((p: { name: string }) => p.name)).not.toContain("recover");
    expect(performance.now() - t0).toBeLessThan(25_000);
  }, 30_000);

  test("--repeat 5: min ≤ median ≤ p99 of SETNODES latency over 5 runs", async () => {
    const r = await runKvr(["drill", "--files", "8", "--file-size", "1MiB", "--rate", "8", "--cut-at", "10%", "--repeat", "5", "--json"], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    const res = parseResult(r.stdout);
    expect(res.runs).toHaveLength(5);
    expect(res.runs.map((x: { run: number }) => x.run)).toEqual([1, 2, 3, 4, 5]);
    const s = res.latency;
    for (const k of ["n", "min", "median", "p99", "max", "hung"]) expect(typeof s[k]).toBe("number");
    expect(s.n).toBe(5);
    expect(s.hung).toBe(0);
    expect(s.min).toBeLessThanOrEqual(s.median);
    expect(s.median).toBeLessThanOrEqual(s.p99);
    expect(s.p99).toBeLessThanOrEqual(s.max);
    const lat = res.runs.map((x: { setnodes: { ms: number } }) => x.setnodes.ms).sort((a: number, b: number) => a - b);
    expect(s.min).toBe(lat[0]);
    expect(s.median).toBe(lat[2]);
    expect(s.max).toBe(lat[4]);
  }, 60_000);
});

describe("kvr drill against a broken replica (Kvrocks before the fix)", () => {
  test("SETNODES blocked until the fetch socket errors: FAIL as a hang within --give-up, exit 1; the node answers again once A is stopped", async () => {
    const node = await broken("hang");
    const t0 = performance.now();
    const r = await runKvr(["drill", ...SMALL, "--cut-at", "10%", "--replica", `127.0.0.1:${node.port}`, "--budget", "2s", "--give-up", "4s", "--json"], { timeoutMs: 40_000 });
    const elapsed = performance.now() - t0;
    expect(r.code).toBe(1);
    const res = parseResult(r.stdout);
    expect(res.verdict).toBe("FAIL");
    const run = res.runs[0];
    expect(run.setnodes.hung).toBe(true);
    expect(run.setnodes.reply).toBeNull();
    expect(res.reasons.join(" ")).toContain("SETNODES hung");
    // the node froze: PING got no answer for about --give-up
    expect(run.ping.longestGapMs).toBeGreaterThanOrEqual(3500);
    // released: A stopped, the double's fetch socket errored, it answered again
    expect(run.recovery.answeredAfterMs).not.toBeNull();
    expect(run.recovery.answeredAfterMs).toBeLessThan(3000);
    expect(run.phases.map((p: { name: string }) => p.name)).toContain("release");
    // about 1 s of sync + 0.5 s settle + 4 s give-up: not an unbounded wait
    expect(elapsed).toBeLessThan(12_000);
    expect(node.fetches.opened).toBe(1);
  }, 40_000);

  test("--budget: a SETNODES that takes 1.5 s (Kvrocks after the fix) fails a 1 s budget and passes a 3 s one", async () => {
    const slow = await broken("slow");
    const r1 = await runKvr(["drill", ...SMALL, "--cut-at", "10%", "--replica", `127.0.0.1:${slow.port}`, "--no-recover", "--budget", "1s", "--give-up", "5s", "--json"], { timeoutMs: 30_000 });
    expect(r1.code).toBe(1);
    const a = parseResult(r1.stdout);
    expect(a.runs[0].setnodes).toMatchObject({ hung: false, reply: "OK", withinBudget: false });
    expect(a.runs[0].setnodes.ms).toBeGreaterThanOrEqual(1400);
    expect(a.reasons.join(" ")).toContain("over the budget");
    // the node froze while SETNODES ran: the PING gap shows it
    expect(a.runs[0].ping.longestGapMs).toBeGreaterThanOrEqual(1300);
    const again = await broken("slow");
    const r2 = await runKvr(["drill", ...SMALL, "--cut-at", "10%", "--replica", `127.0.0.1:${again.port}`, "--no-recover", "--budget", "3s", "--give-up", "5s", "--json"], { timeoutMs: 30_000 });
    expect(r2.code).toBe(0);
    expect(parseResult(r2.stdout).runs[0].setnodes.withinBudget).toBe(true);
  }, 40_000);

  test("a replica that answers SETNODES but leaves its fetch connection to A open: FAIL, exit 1", async () => {
    const node = await broken("leak");
    const r = await runKvr(["drill", ...SMALL, "--cut-at", "10%", "--replica", `127.0.0.1:${node.port}`, "--no-recover", "--json"], { timeoutMs: 30_000 });
    expect(r.code).toBe(1);
    const res = parseResult(r.stdout);
    const run = res.runs[0];
    expect(run.setnodes.hung).toBe(false);
    expect(run.setnodes.reply).toBe("OK");
    expect(run.role.ok).toBe(true);
    expect(run.fetchConnections.open).toBe(1);
    expect(res.reasons.join(" ")).toContain("fetch connection(s) from the replica to A still open");
  }, 30_000);
});

describe("kvr drill --replica: a node given by address, with a password", () => {
  test("a well-behaved node behind a password (KVR_AUTH): PASS, exit 0", async () => {
    const node = await broken("good", "s3cret");
    const r = await runKvr(["drill", ...SMALL, "--cut-at", "10%", "--replica", `127.0.0.1:${node.port}`, "--no-recover", "--json"], { env: { KVR_AUTH: "s3cret" }, timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    const run = parseResult(r.stdout).runs[0];
    expect(run.replica.kind).toBe("external");
    expect(run.setnodes.reply).toBe("OK");
    expect(run.fetchConnections.open).toBe(0);
    expect(node.fetches.opened).toBe(1);
    expect(r.stdout + r.stderr).not.toContain("s3cret");
  }, 30_000);

  test("no --auth for a node that needs one: exit 4 saying so (not 'drill a node in cluster mode')", async () => {
    const node = await broken("good", "s3cret");
    const r = await runKvr(["drill", ...SMALL, "--replica", `127.0.0.1:${node.port}`], { env: { KVR_AUTH: "" }, timeoutMs: 20_000 });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`the node under test at 127.0.0.1:${node.port} needs a password: give --auth or set KVR_AUTH`);
    expect(r.stderr).not.toContain("cluster mode");
    expect(node.fetches.opened).toBe(0);
  }, 20_000);

  test("a node that never connects to A: exit 4 within the no-connection window, naming it (not a FAIL after --give-up)", async () => {
    const node = await broken("deaf");
    const t0 = performance.now();
    const r = await runKvr(["drill", ...SMALL, "--replica", `127.0.0.1:${node.port}`, "--budget", "1s", "--give-up", "3s", "--json"], { timeoutMs: 20_000 });
    expect(r.code).toBe(4);
    const res = parseResult(r.stdout);
    expect(res.verdict).toBe("ERROR");
    expect(res.error).toMatch(/^master A saw no connection from the node within 3\.00 s of being made its master: check that the node can reach A at 127\.0\.0\.1:\d+ \(--advertise-host\)$/);
    expect(performance.now() - t0).toBeLessThan(10_000);
  }, 20_000);

  test("a wrong password: the drill could not run, exit 4", async () => {
    const node = await broken("good", "s3cret");
    const r = await runKvr(["drill", ...SMALL, "--replica", `127.0.0.1:${node.port}`, "--auth", "wrong"], { timeoutMs: 20_000 });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("refused AUTH");
    expect(node.fetches.opened).toBe(0);
  }, 20_000);
});

describe.skipIf(!netnsOk)("kvr drill --cut netns (root)", () => {
  test("a replica that leaves its fetch connection open is caught through the cut: FAIL, exit 1, namespace removed", async () => {
    const node = await broken("leak");
    const r = await runKvr(["drill", ...SMALL, "--cut-at", "10%", "--cut", "netns", "--replica", `127.0.0.1:${node.port}`, "--no-recover", "--json"], { timeoutMs: 30_000 });
    expect(r.code).toBe(1);
    const run = parseResult(r.stdout).runs[0];
    expect(run.fetchConnections).toMatchObject({ method: "replica-side", open: 1 });
    expect(Bun.spawnSync(["ip", "netns", "list"]).stdout.toString()).not.toContain(run.cut.netns);
  }, 30_000);

  test.skipIf(Bun.spawnSync(["sh", "-c", "command -v setpriv"]).exitCode !== 0)("root without CAP_SYS_ADMIN (a container): exit 4 naming the capabilities, nothing left behind", async () => {
    const drop = ["setpriv", "--inh-caps", "-sys_admin,-net_admin", "--bounding-set", "-sys_admin,-net_admin"];
    const before = Bun.spawnSync(["ip", "netns", "list"]).stdout.toString();
    const r = await runKvr(["drill", ...QUICK, "--cut", "netns"], { prefix: drop, timeoutMs: 20_000 });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("--cut netns needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN; use --cut stall here");
    expect(Bun.spawnSync(["ip", "netns", "list"]).stdout.toString()).toBe(before);
  }, 20_000);

  test("PASS; afterwards no namespace, veth or address of the drill is left", async () => {
    const r = await runKvr(["drill", ...QUICK, "--cut", "netns", "--json"], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    const run = parseResult(r.stdout).runs[0];
    expect(run.cut.mode).toBe("netns");
    expect(run.cut.netns).toMatch(/^kvr-\d+-\d+$/);
    expect(run.masterA.host).toMatch(/^10\.254\.\d+\.\d+$/);
    expect(run.setnodes.ms).toBeLessThan(1000);
    expect(run.fetchConnections).toMatchObject({ method: "replica-side", open: 0 });
    const pid = /^kvr-(\d+)-/.exec(run.cut.netns)![1];
    const ns = Bun.spawnSync(["ip", "netns", "list"]).stdout.toString();
    expect(ns).not.toContain(run.cut.netns);
    const links = Bun.spawnSync(["ip", "-o", "link", "show"]).stdout.toString();
    expect(links).not.toContain(`kvr${pid}`);
    const addrs = Bun.spawnSync(["ip", "-4", "-o", "addr", "show"]).stdout.toString();
    expect(addrs).not.toContain(run.masterA.host.replace(/\.\d+$/, "."));
  }, 30_000);
});

describe("interrupting the drill", () => {
  test.each(["SIGTERM", "SIGINT"] as const)(`%s mid-sync stops everything it started${netnsOk ? " and removes its namespace" : ""}; exit 4`, async (sig) => {
    const args = ["drill", "--files", "8", "--file-size", "1MiB", "--cut-at", "90%", ...(netnsOk ? ["--cut", "netns"] : [])];
    const p = spawnKvr(args);
    cleanups.push(() => p.stop("SIGKILL"));
    const deadline = Date.now() + 15_000;
    while (!/topology-v1:/.test(p.stderr()) && Date.now() < deadline && p.proc.exitCode === null) await Bun.sleep(50);
    const err = p.stderr();
    const a = /start-masters: A (\S+):(\d+) .* B (\S+):(\d+)/.exec(err);
    const rep = /start-replica: kvr replica on (\S+):(\d+)/.exec(err);
    expect(a).not.toBeNull();
    expect(rep).not.toBeNull();
    const t = performance.now();
    const code = await p.stop(sig, 5000);
    expect(code).toBe(4);
    expect(performance.now() - t).toBeLessThan(4000);
    expect(p.stderr()).toContain(`interrupted by ${sig}`);
    const res = p.events.find((e) => (e as { command?: string }).command === "drill") as { verdict?: string } | undefined;
    expect(res?.verdict).toBe("ERROR");
    expect(await refused(a![1], Number(a![2]))).toBe(true);
    expect(await refused(a![3], Number(a![4]))).toBe(true);
    expect(await refused(rep![1], Number(rep![2]))).toBe(true);
    if (netnsOk) {
      const pid = String(p.proc.pid);
      expect(Bun.spawnSync(["ip", "netns", "list"]).stdout.toString()).not.toContain(`kvr-${pid}-`);
      expect(Bun.spawnSync(["ip", "-o", "link", "show"]).stdout.toString()).not.toContain(`kvr${pid}`);
    }
  }, 30_000);
});

describe("kvr drill errors", () => {
  test("--replica pointing to a closed port: the drill could not run, exit 4 (not a FAIL)", async () => {
    const port = await closedPort();
    const r = await runKvr(["drill", ...QUICK, "--replica", `127.0.0.1:${port}`, "--json"], { timeoutMs: 20_000 });
    expect(r.code).toBe(4);
    const res = parseResult(r.stdout);
    expect(res.verdict).toBe("ERROR");
    expect(res.error).toContain(`127.0.0.1:${port}`);
    expect(r.stderr).toContain("the drill could not run");
  }, 20_000);

  test("--cut netns without iproute2 (or root): a clear error, exit 4", async () => {
    const r = await runKvr(["drill", "--cut", "netns"], { env: { PATH: "/nonexistent" }, timeoutMs: 20_000 });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(isRoot ? /needs iproute2/ : /needs root/);
    expect(r.stderr).toContain("use --cut stall");
  }, 20_000);

  test("--help teaches both scenarios: their budget and give-up defaults, examples against a real node; kvr master's --send-timeout 0 = never", async () => {
    const [h, m] = await Promise.all([runKvr(["drill", "--help"]), runKvr(["master", "--help"])]);
    expect(h.code).toBe(0);
    for (const want of [
      "--scenario <name>",
      "fetch-hang: SETNODES must return within this (default 6s)",
      "slow-replica: the master must drop the stuck replica within this of its receive window closing (default 35s)",
      "fetch-hang: stop waiting for a hung SETNODES (default 30s)",
      "the #3356 signature (default 90s)",
      "--recover-timeout <duration>",
      "--no-recover",
      "--master <host:port>",
      "--send-timeout <duration>",
      "KVR_AUTH=secret kvr drill --replica 10.0.0.5:6666",
      "KVR_AUTH=secret kvr drill --scenario slow-replica --master 10.0.0.5:6666",
    ]) {
      expect(h.stdout).toContain(want);
    }
    // the negated flag's own line, without the parser's "(default: true)"
    const noRecover = h.stdout.split("\n").find((l) => l.trim().startsWith("--no-recover"));
    expect(noRecover).toContain("skip the recovery phase");
    expect(noRecover).not.toContain("(default: true)");
    expect(m.stdout).toContain("(0 = never, as Kvrocks before PR #3357)");
  });

  test("usage errors exit 2 before anything starts, naming the flag", async () => {
    const cases: Array<[string[], string]> = [
      [["--cut", "bogus"], "--cut"],
      [["--cut-at", "150%"], "--cut-at"],
      [["--budget", "10s", "--give-up", "5s"], "--give-up"],
      [["--replica", "nope"], "--replica"],
      [["--repeat", "0"], "--repeat"],
      [["--scenario", "bogus"], "--scenario: 'bogus' is not one of fetch-hang, slow-replica"],
      [["--recover-timeout", "0"], "--recover-timeout"],
      [["--master", "127.0.0.1:1"], "--master applies to --scenario slow-replica, not fetch-hang"],
      [["--send-timeout", "3s"], "--send-timeout applies to --scenario slow-replica"],
      [["--scenario", "slow-replica", "--replica", "127.0.0.1:1"], "--replica applies to --scenario fetch-hang, not slow-replica"],
      [["--scenario", "slow-replica", "--no-recover"], "--no-recover applies to --scenario fetch-hang"],
      [["--scenario", "slow-replica", "--cut", "netns"], "--cut applies to --scenario fetch-hang"],
      [["--scenario", "slow-replica", "--master", "127.0.0.1:1", "--send-timeout", "3s"], "--send-timeout sets the kvr master the drill starts"],
      [["--scenario", "slow-replica", "--write-rate", "lots"], "--write-rate"],
      [["--scenario", "slow-replica", "--budget", "100s"], "--give-up (90000 ms) must be at least --budget (100000 ms)"],
    ];
    const rs = await Promise.all(cases.map(([args]) => runKvr(["drill", ...args], { timeoutMs: 10_000 })));
    rs.forEach((r, i) => {
      expect({ args: cases[i][0], code: r.code }).toEqual({ args: cases[i][0], code: 2 });
      expect(r.stderr).toContain(cases[i][1]);
    });
  }, 30_000);
});
