/**
 * kvr master's cluster face (--node-id): CLUSTERX, CLUSTER NODES|INFO, INFO server|stats|cluster,
 * through the compiled binary — what lets a whole cluster be assembled from kvr processes.
 */
import { expect, test } from "bun:test";
import { KVR_SERVER_VERSION } from "../../lib/cluster/index.ts";
import { parseInfo } from "../../lib/client/index.ts";
import { replyText } from "../../lib/resp/index.ts";
import { cleanupAfterEach, runKvr } from "../helpers/kvr.ts";
import { admin, info, startMaster, startReplica, until, ID_A, ID_B, ID_R } from "../replica/helpers.ts";

const { defer, temp } = cleanupAfterEach();

async function master(args: string[]) {
  const m = await startMaster(["--generate", "4x64KiB", ...args]);
  defer(() => m.stop());
  return { ...m, text: async (...a: string[]) => replyText(await m.cmd(a)) };
}

test("without --node-id kvr master is standalone: CLUSTERX and CLUSTER answer 'Cluster mode is not enabled'", async () => {
  const m = await master([]);
  expect(await m.text("CLUSTERX", "VERSION")).toBe("-ERR Cluster mode is not enabled");
  expect(await m.text("CLUSTER", "NODES")).toBe("-ERR Cluster mode is not enabled");
  expect(parseInfo(await m.text("INFO", "server"))).toMatchObject({ redis_mode: "standalone", kvrocks_version: KVR_SERVER_VERSION, tcp_port: String(m.port) });
  expect(await m.text("INFO", "cluster")).toBe("# Cluster\r\ncluster_enabled:0\r\n");
});

test("--node-id: CLUSTERX MYID|VERSION|SETNODEID|SETNODES, CLUSTER NODES|INFO and INFO as a Kvrocks cluster node", async () => {
  const m = await master(["--node-id", ID_A]);
  expect(await m.text("CLUSTERX", "MYID")).toBe(ID_A);
  expect(await m.text("CLUSTERX", "VERSION")).toBe("-1");
  expect(await m.text("CLUSTER", "NODES")).toBe("-CLUSTERDOWN The cluster is not initialized");
  expect(await m.text("CLUSTER", "INFO")).toBe("-CLUSTERDOWN The cluster is not initialized");
  expect(await m.text("CLUSTERX", "SETNODES", `${ID_A} 127.0.0.1 ${m.port} master - 0-16383`, "x")).toBe("-ERR Invalid version");
  const topo = `${ID_A} 127.0.0.1 ${m.port} master - 0-16383\n${ID_R} 127.0.0.1 7999 slave ${ID_A}`;
  expect(await m.text("CLUSTERX", "SETNODES", topo, "3")).toBe("OK");
  expect(await m.text("CLUSTERX", "VERSION")).toBe("3");
  const nodes = (await m.text("CLUSTER", "NODES")).split("\n");
  expect(nodes[0]).toMatch(new RegExp(`^${ID_A} 127\\.0\\.0\\.1:${m.port}@${m.port + 10000} myself,master - \\d+ \\d+ 3 connected 0-16383$`));
  expect(nodes[1]).toMatch(new RegExp(`^${ID_R} 127\\.0\\.0\\.1:7999@17999 slave ${ID_A} \\d+ \\d+ 3 connected$`));
  expect(parseInfo(await m.text("CLUSTER", "INFO"))).toMatchObject({ cluster_state: "ok", cluster_slots_assigned: "16384", cluster_known_nodes: "2", cluster_size: "1", cluster_current_epoch: "3" });
  expect(parseInfo(await m.text("INFO", "server"))).toMatchObject({ redis_mode: "cluster", kvrocks_version: KVR_SERVER_VERSION, kvrocks_git_sha1: "00000000", tcp_port: String(m.port) });
  expect(Number(parseInfo(await m.text("INFO", "server")).process_id)).toBe(m.kvr.proc.pid);
  expect(await m.text("INFO", "cluster")).toBe("# Cluster\r\ncluster_enabled:1\r\n");
  expect(await m.text("CLUSTERX", "SETNODEID", "short")).toBe("-ERR Invalid cluster node id");
});

test("a topology that makes kvr master a slave is applied and answered with Kvrocks' replication-failure error; it keeps serving as a master", async () => {
  const m = await master(["--node-id", ID_A]);
  const topo = `${ID_B} 127.0.0.1 7001 master - 0-16383\n${ID_A} 127.0.0.1 ${m.port} slave ${ID_B}`;
  const r = await m.text("CLUSTERX", "SETNODES", topo, "5");
  expect(r).toStartWith("-ERR failed to set master-replica replication: kvr master does not replicate");
  expect(await m.text("CLUSTERX", "VERSION")).toBe("5");
  expect(await m.text("CLUSTER", "NODES")).toContain(`${ID_A} 127.0.0.1:${m.port}@${m.port + 10000} myself,slave ${ID_B}`);
  expect((await m.info()).role).toBe("master");
});

test("INFO stats counts the syncs served: a kvr replica's full sync then PSYNC → sync_full:1, sync_partial_ok:1", async () => {
  const m = await master([]);
  const r = await startReplica(["--dir", temp(), "--master", `127.0.0.1:${m.port}`]);
  defer(() => r.stop());
  await until(async () => (await info(r.port)).master_link_status === "up");
  const stats = parseInfo(await m.text("INFO", "stats"));
  expect(stats).toMatchObject({ sync_full: "1", sync_partial_ok: "1", sync_partial_err: "0" });
  expect(Number(stats.total_connections_received)).toBeGreaterThanOrEqual(3);
  expect(Number(stats.total_commands_processed)).toBeGreaterThanOrEqual(5);
  // The replica's own INFO: cluster mode, its admin port, no syncs served.
  expect(parseInfo(replyText(await admin(r.port, ["INFO", "server"])))).toMatchObject({ redis_mode: "cluster", tcp_port: String(r.port) });
});

test("a --node-id that is not 40 characters exits 2 naming the flag", async () => {
  const r = await runKvr(["master", "--port", "0", "--node-id", "abc"]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("--node-id");
});
