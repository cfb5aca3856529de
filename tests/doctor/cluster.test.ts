/**
 * kvr doctor against clusters of real kvr processes (kvr master --node-id as masters, kvr replica
 * as replicas, a topology pushed with CLUSTERX SETNODES): the findings the "Done when"
 * lists, each from the failure itself.
 */
import { expect, test } from "bun:test";
import { admin, info, until } from "../replica/helpers.ts";
import { closedPort } from "../helpers/ports.ts";
import { addr, doctor, findingsOf, id, lab, linkUp, nodeOf, push } from "./helpers.ts";

const L = lab();
const A = id("a");
const B = id("b");
const R = id("c");
const F = id("f");

/** Master A with all slots, replica R of A, topology version 1 on both; R streaming. */
async function healthy(extraReplica: string[] = []) {
  const a = await L.master(A);
  const r = await L.replica(R, extraReplica);
  const lines = [`${A} 127.0.0.1 ${a.port} master - 0-16383`, `${R} 127.0.0.1 ${r.port} slave ${A}`];
  await push([a.port, r.port], lines, 1);
  await linkUp(r.port);
  return { a, r, lines };
}

test("a healthy cluster: every node discovered from one seed, a table row each, no finding, exit 0", async () => {
  const { a, r } = await healthy();
  const run = await doctor(["--seed", addr(a.port), "--samples", "2", "--interval", "300ms"]);
  expect(run.findings).toEqual([]);
  expect(run.code).toBe(0);
  expect(run.summary).toMatchObject({ mode: "cluster", nodes: 2, answered: 2, counts: { crit: 0, warn: 0, info: 0 }, exit: 0 });
  expect(nodeOf(run, addr(a.port))).toMatchObject({ id: A, role: "master", status: "ok", seed: true, samples: 2, clusterVersion: 1 });
  expect(nodeOf(run, addr(r.port))).toMatchObject({ id: R, role: "slave", master: addr(a.port), link: "up", sync: false, lag: 0, discoveredFrom: addr(a.port), samples: 2 });
  expect(nodeOf(run, addr(r.port)).version).toMatch(/^kvr-\d/);
});

test("a replica stuck in a full sync (master stalled mid-file, --read-timeout 120s) → crit stuck-full-sync with the do-not-push warning", async () => {
  const a = await L.master(A, ["--generate", "4x4MiB", "--fault", "stall:after-bytes=1MiB"]);
  const r = await L.replica(R, ["--read-timeout", "120s"]);
  await push([a.port, r.port], [`${A} 127.0.0.1 ${a.port} master - 0-16383`, `${R} 127.0.0.1 ${r.port} slave ${A}`], 1);
  await until(async () => (await info(r.port)).kvr_bytes_done === String(1 << 20), 10_000);
  const run = await doctor(["--seed", addr(r.port), "--samples", "2", "--interval", "1500ms"]);
  const [stuck] = findingsOf(run, "stuck-full-sync");
  expect(stuck).toMatchObject({ severity: "crit", node: addr(r.port) });
  expect(stuck.message).toContain(addr(a.port));
  expect(stuck.next[0]).toBe(
    "do not push topology to this node now: on builds without the fetch read deadline a SETNODES freezes it; bring its master back or restart the node first",
  );
  const io = stuck.evidence.find((e: any) => e.field === "master_last_io_seconds_ago").values.map(Number);
  expect(io[1]).toBeGreaterThan(io[0]);
  expect(stuck.evidence.find((e: any) => e.field === "master_sync_in_progress").values).toEqual(["1", "1"]);
  expect(run.code).toBe(1);
  // --stuck-after: one look is enough once the stall is older than it.
  const once = await doctor(["--seed", addr(r.port), "--samples", "1", "--stuck-after", "1s"]);
  expect(findingsOf(once, "stuck-full-sync")[0].message).toContain("≥ --stuck-after 1 s");
});

test("a frozen node (accepts, never replies) is unresponsive within --timeout + 1 s and costs one deadline; exit 3", async () => {
  const { a, r, lines } = await healthy();
  const f = await L.master(F, ["--fault", "stall"]);
  await push([a.port, r.port], [...lines, `${F} 127.0.0.1 ${f.port} master -`], 2);
  const run = await doctor(["--seed", addr(a.port), "--samples", "1", "--timeout", "1s"]);
  const [u] = findingsOf(run, "unresponsive");
  expect(u).toMatchObject({ severity: "crit", node: addr(f.port) });
  expect(u.message).toContain("a CLUSTERX SETNODES or SLAVEOF blocked behind a hung SST fetch");
  const ms = u.evidence.find((e: any) => e.field === "ms").values[0];
  expect(ms).toBeGreaterThanOrEqual(900);
  expect(ms).toBeLessThan(2000);
  expect(run.summary.ms).toBeLessThan(2000);
  expect(nodeOf(run, addr(f.port))).toMatchObject({ status: "unresponsive", samples: 0 });
  expect(nodeOf(run, addr(r.port))).toMatchObject({ status: "ok", link: "up" });
  expect(run.code).toBe(3);
  // Two samples: the frozen node is not probed again, so the run takes one deadline, not two.
  const two = await doctor(["--seed", addr(a.port), "--samples", "2", "--interval", "200ms", "--timeout", "1s"]);
  expect(two.summary.ms).toBeLessThan(2000);
  expect(nodeOf(two, addr(a.port)).samples).toBe(2);
});

test("a version split (SETNODES of another version on one node) → crit topology-split naming both nodes", async () => {
  const a = await L.master(A);
  const r = await L.replica(R);
  const lines = [`${A} 127.0.0.1 ${a.port} master - 0-16383`, `${R} 127.0.0.1 ${r.port} slave ${A}`];
  await push([a.port], lines, 1);
  await push([r.port], lines, 2);
  const run = await doctor(["--seed", addr(a.port), "--samples", "1"]);
  const split = findingsOf(run, "topology-split");
  expect(split).toHaveLength(1);
  expect(split[0].message).toBe(`nodes disagree on CLUSTERX VERSION: 1 on ${addr(a.port)}; 2 on ${addr(r.port)}`);
  expect(run.code).toBe(1);
});

test("nodes holding different topologies → topology-split with the differing lines; a node without any → version -1", async () => {
  const a = await L.master(A);
  const r = await L.replica(R);
  const r2 = await L.replica(F);
  await push([a.port], [`${A} 127.0.0.1 ${a.port} master - 0-16383`, `${R} 127.0.0.1 ${r.port} slave ${A}`, `${F} 127.0.0.1 ${r2.port} slave ${A}`], 3);
  await push([r.port], [`${A} 127.0.0.1 ${a.port} master - 0-16383`, `${R} 127.0.0.1 ${r.port} slave ${A}`], 3);
  const run = await doctor(["--seed", addr(a.port), "--samples", "1"]);
  const [version, content] = findingsOf(run, "topology-split");
  expect(version.message).toContain(`-1 on ${addr(r2.port)}`);
  expect(content.message).toContain("2 versions of it, 1 differing line(s)");
  expect(content.evidence.find((e: any) => e.node === addr(a.port)).values).toEqual([`${F} 127.0.0.1 ${r2.port} slave ${A}`]);
  expect(content.evidence.find((e: any) => e.node === addr(r.port)).values).toEqual([]);
});

test("a role mismatch: a replica moved by SLAVEOF to a master that is not its topology master → crit role-mismatch", async () => {
  const a = await L.master(A);
  const b = await L.master(B);
  const r = await L.replica(R);
  const lines = [`${A} 127.0.0.1 ${a.port} master - 0-8191`, `${B} 127.0.0.1 ${b.port} master - 8192-16383`, `${R} 127.0.0.1 ${r.port} slave ${A}`];
  await push([a.port, b.port, r.port], lines, 1);
  await admin(r.port, ["SLAVEOF", "127.0.0.1", String(b.port)]);
  const run = await doctor(["--seed", addr(a.port), "--samples", "1"]);
  const [m] = findingsOf(run, "role-mismatch");
  expect(m).toMatchObject({ severity: "crit", node: addr(r.port) });
  expect(m.message).toBe(`role mismatch: it replicates from ${addr(b.port)}, the topology's master is ${A.slice(0, 12)} (${addr(a.port)})`);
  expect(m.next[0]).toContain(`kvr setnodes --nodes-file <topology> --bump --target ${addr(r.port)}`);
  // B has no replica in the topology: a warning, not a crit.
  expect(findingsOf(run, "no-replica").map((f) => [f.node, f.severity])).toEqual([[addr(b.port), "warn"]]);
});

test("a topology master that INFO shows as a slave → role-mismatch", async () => {
  const a = await L.master(A);
  const r = await L.replica(R);
  const lines = [`${A} 127.0.0.1 ${a.port} master - 0-16383`, `${R} 127.0.0.1 ${r.port} master -`];
  await push([a.port, r.port], lines, 1);
  await admin(r.port, ["SLAVEOF", "127.0.0.1", String(a.port)]);
  const run = await doctor(["--seed", addr(a.port), "--samples", "1"]);
  expect(findingsOf(run, "role-mismatch").map((f) => f.message)).toEqual([`role mismatch: the topology makes it a master, INFO says role:slave of ${addr(a.port)}`]);
});

test("uncovered slots → crit slot-coverage with the unassigned ranges", async () => {
  const a = await L.master(A);
  const r = await L.replica(R);
  await push([a.port, r.port], [`${A} 127.0.0.1 ${a.port} master - 0-8000 9000`, `${R} 127.0.0.1 ${r.port} slave ${A}`], 1);
  const run = await doctor(["--seed", addr(a.port), "--samples", "1"]);
  const [c] = findingsOf(run, "slot-coverage");
  expect(c.severity).toBe("crit");
  expect(c.evidence[0].values).toEqual(["8001-8999", "9001-16383"]);
  expect(c.message).toStartWith("8382 slot(s) served by no master");
  expect(run.code).toBe(1);
});

test("a master gone (killed): its replica's link is down (warn link-down), the master unreachable (crit), exit 3", async () => {
  const { a, r } = await healthy();
  await a.stop("SIGKILL");
  await until(async () => (await info(r.port)).master_link_status === "down", 5000);
  const run = await doctor(["--seed", addr(r.port), "--samples", "1", "--connect-timeout", "500ms"]);
  expect(findingsOf(run, "unreachable").map((f) => [f.node, f.message])).toEqual([[addr(a.port), expect.stringContaining("connection refused")]]);
  const [down] = findingsOf(run, "link-down");
  expect(down).toMatchObject({ severity: "warn", node: addr(r.port) });
  expect(down.message).toContain(`master ${addr(a.port)}`);
  expect(run.code).toBe(3);
});

test("an unreachable seed beside a live one → crit unreachable, exit 3; only unreachable seeds → exit 4", async () => {
  const { a } = await healthy();
  const closed = await closedPort();
  const run = await doctor(["--seed", addr(closed), "--seed", addr(a.port), "--samples", "1"]);
  expect(findingsOf(run, "unreachable").map((f) => f.node)).toEqual([addr(closed)]);
  expect(nodeOf(run, addr(closed))).toMatchObject({ status: "unreachable", seed: true });
  expect(run.summary.nodes).toBe(3);
  expect(run.code).toBe(3);
  const none = await doctor(["--seed", addr(closed), "--samples", "1"]);
  expect(none.code).toBe(4);
  expect(none.summary).toMatchObject({ seedsAnswered: 0, exit: 4 });
  expect(none.stderr).toContain("no seed answered");
});
