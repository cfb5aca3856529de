/**
 * kvr doctor on standalone kvr processes (no topology): discovery through INFO replication,
 * growing lag, a full-sync loop.
 */
import { expect, test } from "bun:test";
import { info, until } from "../replica/helpers.ts";
import { addr, doctor, findingsOf, lab, linkUp, nodeOf } from "./helpers.ts";

const L = lab();

test("standalone discovery: from the master through its slaveN lines, from a replica through master_host/master_port", async () => {
  const m = await L.master(null);
  const r1 = await L.replica(null, ["--master", addr(m.port)]);
  const r2 = await L.replica(null, ["--master", addr(m.port)]);
  await Promise.all([linkUp(r1.port), linkUp(r2.port)]);
  const run = await doctor(["--seed", addr(m.port), "--samples", "1"]);
  expect(run.summary).toMatchObject({ mode: "standalone", nodes: 3, answered: 3, exit: 0 });
  expect(run.findings).toEqual([]);
  for (const r of [r1, r2]) expect(nodeOf(run, addr(r.port))).toMatchObject({ role: "slave", master: addr(m.port), link: "up", discoveredFrom: addr(m.port), lag: 0 });
  expect(nodeOf(run, addr(m.port))).toMatchObject({ role: "master", seed: true, id: null });

  const fromReplica = await doctor(["--seed", addr(r1.port), "--samples", "1"]);
  expect(fromReplica.nodes.map((n) => n.address).sort()).toEqual([addr(m.port), addr(r1.port), addr(r2.port)].sort());
  expect(nodeOf(fromReplica, addr(m.port)).discoveredFrom).toBe(addr(r1.port));
  expect(nodeOf(fromReplica, addr(r2.port)).discoveredFrom).toBe(addr(m.port));
  expect(fromReplica.code).toBe(0);
});

test("growing lag: a --write-rate master and a replica whose stream is throttled → warn lag, growing across samples", async () => {
  const m = await L.master(null, ["--write-rate", "3000", "--fault", "bandwidth:rate=8KiB,on=psync"]);
  const r = await L.replica(null, ["--master", addr(m.port)]);
  await linkUp(r.port);
  const run = await doctor(["--seed", addr(m.port), "--samples", "3", "--interval", "700ms", "--max-lag", "100000000"]);
  const [lag] = findingsOf(run, "lag");
  expect(lag).toMatchObject({ severity: "warn", node: addr(r.port), nodes: [addr(r.port), addr(m.port)] });
  const values = lag.evidence.find((e: any) => e.field === "lag").values as number[];
  expect(values).toHaveLength(3);
  expect(values[1]).toBeGreaterThan(values[0]);
  expect(values[2]).toBeGreaterThan(values[1]);
  expect(lag.message).toContain("growing");
  expect(run.code).toBe(1);
  // The same lag above --max-lag is a finding with one look.
  const once = await doctor(["--seed", addr(m.port), "--samples", "1", "--max-lag", "10"]);
  expect(findingsOf(once, "lag")[0].message).toContain("above --max-lag 10");
});

test("a full-sync loop: every full sync fails mid-transfer, the master's sync_full grows while the replica never comes up", async () => {
  const m = await L.master(null, ["--fault", "reset:on=_fetch_file"]);
  const r = await L.replica(null, ["--master", addr(m.port), "--retry-delay", "50ms"]);
  await until(async () => Number((await info(r.port)).kvr_attempt) >= 1, 5000);
  const run = await doctor(["--seed", addr(m.port), "--seed", addr(r.port), "--samples", "2", "--interval", "1500ms"]);
  const [loop] = findingsOf(run, "full-sync-loop");
  expect(loop).toMatchObject({ severity: "crit", node: addr(m.port), nodes: [addr(m.port), addr(r.port)] });
  const full = loop.evidence.find((e: any) => e.field === "sync_full").values as number[];
  expect(full[1]).toBeGreaterThan(full[0]);
  expect(loop.evidence.find((e: any) => e.node === addr(r.port)).values).toEqual(["down", "down"]);
});
