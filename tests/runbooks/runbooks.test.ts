/**
 * The runbooks end to end against `kvr lab` (the compiled binary as a child process): a failover
 * after a master is SIGKILLed, a failover while another replica is stuck in a full sync (and
 * stuck-replica.sh and topology-verify.sh --fix around it), preflight PASS on a lab replica
 * followed by topology-verify healing the split the drill leaves, preflight FAIL on a node that
 * hangs like a pre-fix Kvrocks, wrong arguments and unreachable seeds; and shellcheck on each.
 * The independent scenarios run concurrently, each with its own small lab.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { nodesTextFromClusterNodes } from "../../lib/cluster/index.ts";
import { replyText } from "../../lib/resp/index.ts";
import { startBrokenReplica } from "../drill/broken-replica.ts";
import { doctor } from "../doctor/helpers.ts";
import { closedPort } from "../helpers/ports.ts";
import { withCleanup } from "../helpers/kvr.ts";
import { startLab, versionOf, replicationOf, type Lab } from "../lab/helpers.ts";
import { admin, until } from "../replica/helpers.ts";
import { minimalPath, runbook, RUNBOOKS, type ScriptRun } from "./helpers.ts";

/** Quick looks: two samples a second apart. */
const QUICK_DOCTOR = ["--interval", "1s"];
/** A quick drill: 8 × 1 MiB at 8 MB/s, cut at 10%. */
const QUICK_DRILL = ["--files", "8", "--file-size", "1MiB", "--rate", "8", "--cut-at", "10%"];

const show = (r: ScriptRun) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/** The nodes string a node holds (its CLUSTER NODES, converted). */
async function topologyOf(port: number): Promise<string> {
  return nodesTextFromClusterNodes(replyText(await admin(port, ["CLUSTER", "NODES"])));
}

/** Add faults on a master's port (KVR FAULT ADD), each must reply OK. */
async function faults(port: number, specs: string[]): Promise<void> {
  for (const s of specs) expect(replyText(await admin(port, ["KVR", "FAULT", "ADD", s]))).toBe("OK");
}

/** Kill a lab node with SIGKILL and wait until the lab reports it gone. */
async function kill(lab: Lab, name: string): Promise<void> {
  process.kill(lab.node(name).pid, "SIGKILL");
  await lab.kvr.waitEvent((e) => e.event === "node-exit" && e.name === name, 10_000);
}

describe("failover.sh", () => {
  test.concurrent("a master killed with SIGKILL: its replica promoted, the dead master dropped, every node at the new version, doctor clean (kvr alone on PATH, no jq)", () =>
    withCleanup(async ({ defer, temp }) => {
      const lab = await startLab(["--masters", "2", "--replicas", "1"], defer);
      const [m1, m2, r1, r2] = ["m1", "m2", "m1-r1", "m2-r1"].map((n) => lab.node(n));
      await kill(lab, "m1");
      const r = await runbook("failover.sh", [...QUICK_DOCTOR, m2.address, m1.id], { path: minimalPath(temp("kvr-rb-")) });
      expect({ code: r.code, out: r.code === 0 ? "" : show(r) }).toEqual({ code: 0, out: "" });
      expect(r.stdout).toContain(`dead master: ${m1.address}, slots 0-8191`);
      expect(r.stdout).toContain(`${m1.address} is unreachable: it is down`);
      expect(r.stdout).toContain(`promote ${r1.address} (${r1.id})`);
      expect(r.stdout).toContain(`next: give ${r1.address} a replica`);
      const expected = [`${m2.id} 127.0.0.1 ${m2.port} master - 8192-16383`, `${r1.id} 127.0.0.1 ${r1.port} master - 0-8191`, `${r2.id} 127.0.0.1 ${r2.port} slave ${m2.id}`].join("\n");
      for (const n of [m2, r1, r2]) {
        expect({ n: n.name, version: await versionOf(n.port) }).toEqual({ n: n.name, version: 2 });
        expect(await topologyOf(n.port)).toBe(expected);
      }
      expect((await replicationOf(r1.port)).role).toBe("master");
      // Doctor clean after a failover: every node answers, one topology, and nothing above info
      // but the promoted master's missing replica (it was the dead master's only one).
      const d = await doctor(["--seed", m2.address, "--samples", "1"]);
      expect(d.findings.filter((f) => f.severity !== "info").map((f) => [f.code, f.node])).toEqual([["no-replica", r1.address]]);
      expect(d.nodes.map((n) => n.status)).toEqual(["ok", "ok", "ok"]);
    }), 150_000);

  test.concurrent("the replica with the highest offset is promoted, not the first listed; --dry-run pushes nothing", () =>
    withCleanup(async ({ defer }) => {
      const lab = await startLab(["--masters", "1", "--replicas", "2", "--write-rate", "20"], defer);
      const [m1, a, b] = ["m1", "m1-r1", "m1-r2"].map((n) => lab.node(n));
      // m1-r1 loses its master (SLAVEOF a port where nothing listens) while m1 writes on: it falls
      // behind m1-r2, as a replica cut off from its master before it died.
      expect(replyText(await admin(a.port, ["SLAVEOF", "127.0.0.1", String(await closedPort())]))).toBe("OK");
      const cutAt = Number((await replicationOf(a.port)).slave_repl_offset);
      await until(async () => Number((await replicationOf(b.port)).slave_repl_offset) > cutAt + 10, 20_000, "the replica's offset to move", 100);
      await kill(lab, "m1");
      const [oa, ob] = [Number((await replicationOf(a.port)).slave_repl_offset), Number((await replicationOf(b.port)).slave_repl_offset)];
      expect(ob).toBeGreaterThan(oa);
      const r = await runbook("failover.sh", [...QUICK_DOCTOR, "--dry-run", a.address, m1.id]);
      expect({ code: r.code, out: r.code === 0 ? "" : show(r) }).toEqual({ code: 0, out: "" });
      expect(r.stdout).toContain(`${a.address}: offset ${oa}`);
      expect(r.stdout).toContain(`promote ${b.address} (${b.id}), offset ${ob}`);
      expect(r.stdout).toContain(`${b.id} 127.0.0.1 ${b.port} master - 0-16383`);
      expect(r.stdout).toContain(`${a.id} 127.0.0.1 ${a.port} slave ${b.id}`);
      expect(r.stdout).toContain("dry run: would push it with a bumped version to 2 node(s); nothing pushed");
      for (const n of [a, b]) expect(await versionOf(n.port)).toBe(1);
    }), 150_000);

  test.concurrent("while another replica is stuck in a full sync: stuck-replica.sh names it (exit 1), failover leaves it alone and names it (exit 1); once it recovers, stuck-replica.sh exits 0 and topology-verify.sh --fix heals the split (jq on PATH)", () =>
    withCleanup(async ({ defer }) => {
      const lab = await startLab(["--masters", "2", "--replicas", "1", "--read-timeout", "60s"], defer);
      const [m1, m2, r1, r2] = ["m1", "m2", "m1-r1", "m2-r1"].map((n) => lab.node(n));
      // m2-r1's stream is reset; its PSYNC refused, it full-syncs, and m2 stalls its _fetch_meta:
      // with a 60 s read deadline it hangs as a build without the fetch read deadline would.
      await faults(m2.port, ["error:cmd=psync,msg=ERR psync refused by the test", "stall:on=_fetch_meta", "reset:once"]);
      await until(async () => {
        const i = await replicationOf(r2.port);
        return i.kvr_state === "fetch_meta" && i.master_sync_in_progress === "1";
      }, 20_000, "m2-r1 stuck in fetch_meta", 100);

      const s = await runbook("stuck-replica.sh", [...QUICK_DOCTOR, m2.address]);
      expect({ code: s.code, out: s.code === 1 ? "" : show(s) }).toEqual({ code: 1, out: "" });
      expect(s.stdout).toContain(`STUCK ${r2.address} (node id ${r2.id}): full sync from ${m2.address}`);
      expect(s.stdout).toContain(`push nothing to ${r2.address} now`);
      expect(s.stdout).toContain("1 node(s) stuck or frozen");

      await kill(lab, "m1");
      const f = await runbook("failover.sh", [...QUICK_DOCTOR, m2.address, m1.id]);
      expect({ code: f.code, out: f.code === 1 ? "" : show(f) }).toEqual({ code: 1, out: "" });
      expect(f.stdout).toContain(`STUCK ${r2.address}: in a full sync with no progress; it gets no push now`);
      expect(f.stdout).toContain(`promote ${r1.address}`);
      expect(f.stdout).toContain(`left alone: ${r2.address}`);
      // The stuck node was left alone: still at version 1, still following m2; the others moved on.
      expect(await versionOf(r2.port)).toBe(1);
      expect((await replicationOf(r2.port)).master_port).toBe(String(m2.port));
      for (const n of [m2, r1]) expect(await versionOf(n.port)).toBe(2);
      expect((await replicationOf(r1.port)).role).toBe("master");

      // Its master is healthy again: the sync completes, nothing is stuck.
      expect(replyText(await admin(m2.port, ["KVR", "FAULT", "CLEAR"]))).toBe("OK");
      await until(async () => (await replicationOf(r2.port)).master_link_status === "up", 30_000, "m2-r1's link up", 100);
      const s2 = await runbook("stuck-replica.sh", [...QUICK_DOCTOR, m2.address]);
      expect({ code: s2.code, out: s2.code === 0 ? "" : show(s2) }).toEqual({ code: 0, out: "" });
      expect(s2.stdout).toContain("no node is stuck in a full sync");

      const v = await runbook("topology-verify.sh", [...QUICK_DOCTOR, m2.address, "--fix"]);
      expect({ code: v.code, out: v.code === 0 ? "" : show(v) }).toEqual({ code: 0, out: "" });
      expect(v.stdout).toContain(`behind: ${r2.address} (version 1)`);
      expect(v.stdout).toContain("healed: every node holds topology version 2");
      const want = await topologyOf(m2.port);
      expect(want).not.toContain(m1.id);
      for (const n of [m2, r1, r2]) {
        expect(await versionOf(n.port)).toBe(2);
        expect(await topologyOf(n.port)).toBe(want);
      }
    }), 180_000);
});

describe("preflight.sh and topology-verify.sh", () => {
  test.concurrent("PASS on a kvr replica of the lab (exit 0); the drill leaves that node at a newer version: topology-verify.sh reports the split (exit 1), --fix pushes it to the others (exit 0) (no jq)", () =>
    withCleanup(async ({ defer, temp }) => {
      const lab = await startLab(["--masters", "1", "--replicas", "1"], defer);
      const [m1, r1] = [lab.node("m1"), lab.node("m1-r1")];
      const path = minimalPath(temp("kvr-rb-"));
      const p = await runbook("preflight.sh", [r1.address, "--", ...QUICK_DRILL], { path });
      expect({ code: p.code, out: p.code === 0 ? "" : show(p) }).toEqual({ code: 0, out: "" });
      expect(p.stdout).toContain(`verdict: PASS — ${r1.address} stopped its hung fetch in time: this build has the fetch read deadline`);
      const drilled = await versionOf(r1.port);
      expect(drilled).toBeGreaterThan(1);
      expect(await topologyOf(r1.port)).toBe(lab.nodesText);

      const v = await runbook("topology-verify.sh", [...QUICK_DOCTOR, m1.address], { path });
      expect({ code: v.code, out: v.code === 1 ? "" : show(v) }).toEqual({ code: 1, out: "" });
      expect(v.stdout).toContain(`version 1: ${m1.address}`);
      expect(v.stdout).toContain(`version ${drilled}: ${r1.address}`);
      expect(v.stdout).toContain(`run with --fix to push version ${drilled}'s topology to them`);
      expect(await versionOf(m1.port)).toBe(1);

      const fix = await runbook("topology-verify.sh", [...QUICK_DOCTOR, m1.address, "--fix"], { path });
      expect({ code: fix.code, out: fix.code === 0 ? "" : show(fix) }).toEqual({ code: 0, out: "" });
      expect(fix.stdout).toContain(`behind: ${m1.address} (version 1)`);
      expect(await versionOf(m1.port)).toBe(drilled);
      expect(await topologyOf(m1.port)).toBe(lab.nodesText);
      const again = await runbook("topology-verify.sh", [...QUICK_DOCTOR, r1.address], { path });
      expect(again.code).toBe(0);
      expect(again.stdout).toContain(`every node holds topology version ${drilled}`);
    }), 150_000);

  test.concurrent("FAIL on a node that hangs like a pre-fix Kvrocks: exit 1 with the verdict and 'this build lacks the fetch read deadline'", () =>
    withCleanup(async ({ defer }) => {
      const node = await startBrokenReplica("hang");
      defer(() => node.close());
      const r = await runbook("preflight.sh", [`127.0.0.1:${node.port}`, "--", ...QUICK_DRILL, "--budget", "2s", "--give-up", "4s"]);
      expect({ code: r.code, out: r.code === 1 ? "" : show(r) }).toEqual({ code: 1, out: "" });
      expect(r.stdout).toMatch(/FAIL — .*SETNODES hung/);
      expect(r.stdout).toContain("verdict: FAIL — this build lacks the fetch read deadline");
    }), 90_000);
});

describe("wrong arguments and unreachable seeds", () => {
  const scripts = ["preflight.sh", "failover.sh", "stuck-replica.sh", "topology-verify.sh"];

  test.concurrent("every runbook: --help teaches (usage, exit codes, an example) and exits 0; no or extra arguments and unknown options exit 2 with the usage", async () => {
    for (const s of scripts) {
      const h = await runbook(s, ["--help"]);
      expect({ s, code: h.code }).toEqual({ s, code: 0 });
      for (const part of ["Usage:", "Exit codes:", "Example:", "KVR_AUTH"]) expect({ s, has: h.stdout.includes(part) }).toEqual({ s, has: true });
      for (const args of [[], ["a:1", "b", "c", "d"], ["--bogus", "127.0.0.1:1"]]) {
        const r = await runbook(s, args);
        expect({ s, args, code: r.code }).toEqual({ s, args, code: 2 });
        expect(r.stderr).toContain("Usage:");
        expect(r.stdout).not.toContain("==");
      }
    }
    const missing = await runbook("failover.sh", ["--samples"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--samples needs a value");
    const noKvr = await runbook("stuck-replica.sh", ["127.0.0.1:1"], { env: { KVR: "/nonexistent/kvr" } });
    expect(noKvr.code).toBe(2);
    expect(noKvr.stderr).toContain("cannot find kvr: put it on PATH or set KVR=/path/to/kvr");
  }, 60_000);

  test.concurrent("an unreachable seed or node: a clear error, exit 4, nothing pushed", async () => {
    const port = await closedPort();
    const seed = `127.0.0.1:${port}`;
    const f = await runbook("failover.sh", [seed, "a".repeat(40)]);
    expect(f.code).toBe(4);
    expect(f.stderr).toContain(`--from ${seed}: cannot read the topology: connect: connection refused; nothing was sent`);
    expect(f.stderr).toContain(`could not read the topology from ${seed}: nothing was pushed`);
    for (const s of ["stuck-replica.sh", "topology-verify.sh"]) {
      const r = await runbook(s, ["--samples", "1", seed]);
      expect({ s, code: r.code }).toEqual({ s, code: 4 });
      expect(r.stderr).toContain(`${seed} did not answer kvr doctor`);
    }
    const p = await runbook("preflight.sh", [seed]);
    expect(p.code).toBe(4);
    expect(p.stdout).toContain("the drill could not run (kvr drill exit 4): nothing was judged");
  }, 60_000);

  test.concurrent("failover.sh refuses, nothing pushed (exit 3): an id not in the topology, a replica given as the dead master, a master that still answers", () =>
    withCleanup(async ({ defer }) => {
      const lab = await startLab(["--masters", "1", "--replicas", "1"], defer);
      const [m1, r1] = [lab.node("m1"), lab.node("m1-r1")];
      const cases: Array<[string, string]> = [
        ["f".repeat(40), `no node ${"f".repeat(40)} in the topology of ${m1.address}`],
        [r1.id, `${r1.id} (${r1.address}) is a slave, not a master`],
        [m1.id, `${m1.address} answers (doctor status: ok): a master that answers is not failed over`],
      ];
      for (const [id, msg] of cases) {
        const r = await runbook("failover.sh", ["--samples", "1", m1.address, id]);
        expect({ id, code: r.code }).toEqual({ id, code: 3 });
        expect(r.stderr).toContain(msg);
      }
      for (const n of [m1, r1]) expect(await versionOf(n.port)).toBe(1);
    }), 90_000);
});

const shellcheck = Bun.which("shellcheck");
if (!shellcheck) console.warn("SKIPPING the runbook lint: shellcheck is not installed (Debian: apt-get install shellcheck)");
test.skipIf(!shellcheck)("shellcheck finds nothing in any runbook; each is executable and starts with set -euo pipefail", () => {
  const scripts = readdirSync(RUNBOOKS).filter((f) => f.endsWith(".sh"));
  expect(scripts.sort()).toEqual(["failover.sh", "lib.sh", "preflight.sh", "stuck-replica.sh", "topology-verify.sh"]);
  const r = Bun.spawnSync([shellcheck!, "-x", ...scripts.map((s) => join(RUNBOOKS, s))], { stdout: "pipe", stderr: "pipe" });
  expect(r.stdout.toString() + r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
  for (const s of scripts.filter((x) => x !== "lib.sh")) {
    const text = Bun.spawnSync(["head", "-n", "6", join(RUNBOOKS, s)]).stdout.toString();
    expect({ s, ok: text.startsWith("#!/usr/bin/env bash\n") && text.includes("\nset -euo pipefail\n") }).toEqual({ s, ok: true });
    expect({ s, exec: Bun.spawnSync(["test", "-x", join(RUNBOOKS, s)]).exitCode }).toEqual({ s, exec: 0 });
  }
});
