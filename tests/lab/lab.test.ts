/**
 * kvr lab through the compiled binary: a local cluster of kvr processes on free ports, topology
 * version 1 on every node, every replica synced before `ready`; faults at run time; a node that
 * dies is reported; SIGTERM/SIGINT remove every process and file it started; start-up errors.
 */
import { expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { nodesTextFromClusterNodes } from "../../lib/cluster/index.ts";
import { replyText } from "../../lib/resp/index.ts";
import { runKvr, spawnKvr, withCleanup } from "../helpers/kvr.ts";
import { admin, info, until } from "../replica/helpers.ts";
import { pidAlive } from "../../lib/drill/sys.ts";
import { startLab, replicationOf, versionOf } from "./helpers.ts";

/** Pids of processes whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, "utf8").includes(text)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

test.concurrent("2 masters × 1 replica: free ports, ids, slots split, version 1 everywhere, replicas streaming; SIGTERM removes every process and file", () =>
  withCleanup(async ({ defer }) => {
    const lab = await startLab(["--masters", "2", "--replicas", "1"], defer);
    expect(lab.nodes.map((n) => [n.name, n.role, n.master])).toEqual([
      ["m1", "master", null],
      ["m2", "master", null],
      ["m1-r1", "slave", "m1"],
      ["m2-r1", "slave", "m2"],
    ]);
    expect(new Set(lab.nodes.map((n) => n.port)).size).toBe(4);
    for (const n of lab.nodes) {
      expect(n.id).toMatch(/^[0-9a-f]{40}$/);
      expect(pidAlive(n.pid)).toBe(true);
    }
    expect(lab.node("m1").slots).toBe("0-8191");
    expect(lab.node("m2").slots).toBe("8192-16383");
    expect(lab.node("m1-r1").masterId).toBe(lab.node("m1").id);
    expect(lab.seed).toBe(lab.node("m1").address);
    expect(readFileSync(lab.nodesFile, "utf8")).toBe(lab.nodesText + "\n");
    for (const n of lab.nodes) {
      expect(await versionOf(n.port)).toBe(1);
      expect(nodesTextFromClusterNodes(replyText(await admin(n.port, ["CLUSTER", "NODES"])))).toBe(lab.nodesText);
    }
    for (const r of ["m1-r1", "m2-r1"]) {
      const i = await replicationOf(lab.node(r).port);
      const m = lab.node(lab.node(r).master!);
      expect(i).toMatchObject({ role: "slave", master_host: "127.0.0.1", master_port: String(m.port), master_link_status: "up", master_sync_in_progress: "0" });
      expect(lab.node(r).dir!.startsWith(lab.dir)).toBe(true);
    }
    // The masters write: offsets move (10 batches/s by default).
    const before = Number((await info(lab.node("m1").port)).master_repl_offset);
    await until(async () => Number((await info(lab.node("m1").port)).master_repl_offset) > before, 10_000, "m1's offset to move", 100);

    expect(await lab.stop("SIGTERM")).toBe(0);
    expect(lab.kvr.events.at(-1)).toMatchObject({ event: "stopped", signal: "SIGTERM" });
    for (const n of lab.nodes) expect({ n: n.name, alive: pidAlive(n.pid) }).toEqual({ n: n.name, alive: false });
    expect(existsSync(lab.dir)).toBe(false);
  }), 120_000);

test.concurrent("faults at run time: KVR FAULT on a master's port and SIGUSR1/SIGUSR2 on its pid reach the replica; a node killed with SIGKILL is reported and the lab keeps running", () =>
  withCleanup(async ({ defer }) => {
    const lab = await startLab(["--masters", "1", "--replicas", "1", "--write-rate", "20"], defer);
    const m1 = lab.node("m1");
    const r1 = lab.node("m1-r1");
    const partial = async () => Number((await info(m1.port, "stats")).sync_partial_ok);
    const p0 = await partial();
    // A reset of the live stream: the replica reconnects and resumes by PSYNC.
    expect(replyText(await admin(m1.port, ["KVR", "FAULT", "ADD", "reset:once"]))).toBe("OK");
    await until(async () => (await partial()) > p0, 20_000, "a partial sync", 100);
    await until(async () => (await replicationOf(r1.port)).master_link_status === "up", 20_000, "m1-r1's link up", 100);
    // SIGUSR1 stalls every connection (the test's own INFO to the master too): the replica's offset stops.
    const offset = async () => Number((await replicationOf(r1.port)).slave_repl_offset);
    await until(async () => (await replicationOf(r1.port)).master_link_status === "up", 20_000, "m1-r1's link up", 100);
    process.kill(m1.pid, "SIGUSR1");
    await Bun.sleep(1000);
    const stalledAt = await offset();
    await Bun.sleep(1500);
    expect(await offset()).toBe(stalledAt);
    process.kill(m1.pid, "SIGUSR2");
    await until(async () => (await offset()) > stalledAt, 20_000, "the offset to move past the stall", 100);
    expect(replyText(await admin(m1.port, ["KVR", "FAULT", "LIST"]))).toBe("");

    process.kill(m1.pid, "SIGKILL");
    const exit = await lab.kvr.waitEvent((e) => e.event === "node-exit", 10_000);
    expect(exit).toMatchObject({ name: "m1", id: m1.id, address: m1.address, pid: m1.pid });
    expect(pidAlive(lab.kvr.proc.pid)).toBe(true);
    expect(await versionOf(r1.port)).toBe(1);
    expect(await lab.stop("SIGINT")).toBe(0);
    expect(pidAlive(r1.pid)).toBe(false);
  }), 120_000);

test.concurrent("--dir: a new directory is created and removed at the end; an existing empty one is emptied and kept; a non-empty one is refused (exit 2, untouched)", () =>
  withCleanup(async ({ defer, temp }) => {
    const base = temp("kvr-lab-dir-");
    const fresh = join(base, "new");
    const lab = await startLab(["--masters", "1", "--replicas", "1", "--dir", fresh], defer);
    expect(lab.dir).toBe(fresh);
    expect(readdirSync(fresh).sort()).toEqual(["m1-r1", "nodes.txt"]);
    expect(await lab.stop()).toBe(0);
    expect(existsSync(fresh)).toBe(false);

    const empty = join(base, "empty");
    mkdirSync(empty);
    const again = await startLab(["--masters", "1", "--replicas", "0", "--dir", empty], defer);
    expect(readdirSync(empty)).toEqual(["nodes.txt"]);
    expect(await again.stop()).toBe(0);
    expect(readdirSync(empty)).toEqual([]);

    const full = join(base, "full");
    mkdirSync(full);
    writeFileSync(join(full, "keep.txt"), "mine");
    const r = await runKvr(["lab", "--dir", full], { timeoutMs: 20_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--dir ${full} is not empty (it holds keep.txt): give a new or empty directory`);
    expect(readdirSync(full)).toEqual(["keep.txt"]);
  }), 120_000);

test.concurrent("a lab that cannot start within --timeout: exit 4, a clear error, every process and file it started removed", () =>
  withCleanup(async ({ defer, temp }) => {
    const dir = join(temp("kvr-lab-fail-"), "lab");
    const kvr = spawnKvr(["lab", "--masters", "1", "--replicas", "1", "--dir", dir, "--timeout", "5ms"]);
    defer(() => kvr.stop("SIGKILL"));
    expect(await kvr.exited).toBe(4);
    expect(kvr.stderr()).toContain("the lab could not start: m1-r1 did not report a completed sync (state connected) within --timeout 5.0 ms");
    expect(kvr.events.some((e) => e.event === "ready")).toBe(false);
    expect(existsSync(dir)).toBe(false);
    await until(() => processesMentioning(dir).length === 0, 5000, "the lab's processes to exit", 50);
  }), 60_000);

test.concurrent("usage errors: exit 2 naming the flag, nothing started", () =>
  withCleanup(async () => {
    const cases: Array<[string[], string]> = [
      [["--masters", "0"], "--masters: '0' is not a whole number between 1 and 16"],
      [["--replicas", "9"], "--replicas"],
      [["--generate", "lots"], "--generate: 'lots' is not <count>x<size>"],
      [["--read-timeout", "0"], "--read-timeout: must be above 0"],
      [["--write-rate", "fast"], "--write-rate"],
      [["--bogus"], "unknown option '--bogus'"],
    ];
    for (const [args, msg] of cases) {
      const r = await runKvr(["lab", ...args], { timeoutMs: 20_000 });
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toContain(msg);
    }
  }), 60_000);
