/** Reading CLUSTER NODES back (lib/cluster/nodes.ts) and the INFO / CLUSTER replies kvr servers share (lib/cluster/info.ts). */
import { describe, expect, test } from "bun:test";
import {
  canonicalLine,
  clusterCommand,
  clusterInfoText,
  ClusterNodesError,
  formatClusterNodes,
  infoReply,
  initialClusterState,
  KVR_SERVER_VERSION,
  parseClusterNodes,
  parseNodes,
  serverSection,
  slotOwner,
  statsSection,
  topologyFromClusterNodes,
  TopologyError,
  type ClusterState,
} from "../../lib/cluster/index.ts";
import { parseInfo } from "../../lib/client/index.ts";
import { thrown } from "../helpers/errors.ts";
import { randomTopology, rng } from "./random.ts";

const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(40);

const nodesError = (text: string) => thrown(ClusterNodesError, () => parseClusterNodes(text));

describe("parseClusterNodes", () => {
  test("a line as a real Kvrocks node prints it (docs/protocol.md §6)", () => {
    const v = parseClusterNodes(`${C} 127.0.0.1:7000@17000 myself,master - 1795547720116 1795547720117 28 connected 1\n`);
    expect(v.entries).toEqual([
      { id: C, host: "127.0.0.1", port: 7000, busPort: 17000, flags: ["myself", "master"], myself: true, role: "master", masterId: "-", pingSent: 1795547720116, pongRecv: 1795547720117, epoch: 28, link: "connected", slots: [[1, 1]] },
    ]);
    expect(v.myself?.id).toBe(C);
    expect(v.version).toBe(28);
  });

  test("slaves, IPv6 hosts, hostnames after a comma, Redis-style migration markers, CRLF line ends", () => {
    const text = [
      `${A} ::1:7000@17000 master - 0 1 3 connected 0-100 200 [300->-${B}]`,
      `${B} 10.0.0.2:7001@17001,node-b.example slave ${A} 0 1 3 connected`,
      `${C} [fe80::1]:7002@17002 myself,slave ${A} 0 1 3 disconnected`,
    ].join("\r\n");
    const v = parseClusterNodes(text + "\r\n\r\n");
    expect(v.entries.map((e) => [e.host, e.port, e.role, e.masterId, e.slots, e.link])).toEqual([
      ["::1", 7000, "master", "-", [[0, 100], [200, 200]], "connected"],
      ["10.0.0.2", 7001, "slave", A, [], "connected"],
      ["fe80::1", 7002, "slave", A, [], "disconnected"],
    ]);
    expect(v.myself?.id).toBe(C);
  });

  test("epochs that disagree give no version; an empty reply is an empty view", () => {
    expect(parseClusterNodes(`${A} h:1@10001 master - 0 1 3 connected\n${B} h:2@10002 master - 0 1 4 connected`).version).toBeNull();
    expect(parseClusterNodes("")).toEqual({ entries: [], myself: null, version: null });
  });

  test("malformed lines are errors naming the line", () => {
    expect(nodesError(`${A} h:1@10001 master - 0 1 3`).line).toBe(1);
    expect(nodesError(`\n${"a".repeat(39)} h:1@10001 master - 0 1 3 connected`).line).toBe(2);
    expect(nodesError(`${A} nohostport master - 0 1 3 connected`).reason).toContain("host:port");
    expect(nodesError(`${A} h:99999@1 master - 0 1 3 connected`).reason).toContain("port");
    expect(nodesError(`${A} h:1@10001 slave - 0 1 3 connected`).reason).toContain("master id");
    expect(nodesError(`${A} h:1@10001 master - 0 1 3 connected 16384`).reason).toContain("slot");
    expect(nodesError(`${A} h:1@10001 master - 0 1 3 connected 9-3`).reason).toContain("slot");
  });

  test("round trip: CLUSTER NODES of 150 random topologies reads back to the same owners, roles and masters", () => {
    for (let seed = 1; seed <= 150; seed++) {
      const t = randomTopology(rng(seed));
      const myself = t.nodes[seed % t.nodes.length].id;
      const v = parseClusterNodes(formatClusterNodes(t, myself, seed, 1_000_000));
      expect(v.version).toBe(seed);
      expect(v.myself?.id).toBe(myself);
      const back = topologyFromClusterNodes(v);
      expect(back.nodes.map((n) => [n.id, n.host, n.port, n.role, n.masterId])).toEqual(t.nodes.map((n) => [n.id, n.host, n.port, n.role, n.masterId]));
      const owners = (x: typeof t) => Array.from({ length: 16384 / 64 }, (_, k) => slotOwner(x, k * 64 + (seed % 64))?.id ?? null);
      expect(owners(back)).toEqual(owners(t));
    }
  });

  test("canonicalLine is the nodes-string form; topologyFromClusterNodes applies Kvrocks' rules", () => {
    const v = parseClusterNodes(`${A} h:1@10001 myself,master - 0 1 3 connected 0-10 12\n${B} h:2@10002 slave ${A} 0 1 3 connected`);
    expect(v.entries.map(canonicalLine)).toEqual([`${A} h 1 master - 0-10 12`, `${B} h 2 slave ${A}`]);
    expect(() => topologyFromClusterNodes(parseClusterNodes(`${A} h:1@1 master - 0 1 3 connected 0-10\n${B} h:2@2 master - 0 1 3 connected 5`))).toThrow(TopologyError);
    expect(() => topologyFromClusterNodes(parseClusterNodes(`${A} h:1@1 handshake - 0 1 3 connected`))).toThrow(ClusterNodesError);
  });
});

describe("INFO sections and CLUSTER replies shared by kvr master and kvr replica", () => {
  const state = (): ClusterState => ({
    nodeId: B,
    version: 7,
    topology: parseNodes(`${A} 127.0.0.1 7000 master - 0-8191\n${C} 127.0.0.1 7002 master -\n${B} 127.0.0.1 7001 slave ${A}`),
  });

  test("# Server names kvr in kvrocks_version and carries Kvrocks' field names", () => {
    const text = serverSection({ cluster: true, port: 7001, startedMs: 1_000 }, 91_000);
    expect(text.startsWith("# Server\r\n")).toBe(true);
    expect(text.endsWith("\r\n")).toBe(true);
    const f = parseInfo(text);
    expect(f).toMatchObject({ kvrocks_version: KVR_SERVER_VERSION, version: KVR_SERVER_VERSION, kvrocks_git_sha1: "00000000", redis_mode: "cluster", tcp_port: "7001", uptime_in_seconds: "90", uptime_in_days: "0", process_id: String(process.pid) });
    expect(KVR_SERVER_VERSION).toMatch(/^kvr-\d+\.\d+\.\d+/);
    expect(parseInfo(serverSection({ cluster: false, port: 1, startedMs: 0 })).redis_mode).toBe("standalone");
  });

  test("# Stats carries sync_full, sync_partial_ok, sync_partial_err", () => {
    const f = parseInfo(statsSection({ connectionsReceived: 4, commandsProcessed: 9, syncFull: 2, syncPartialOk: 1, syncPartialErr: 3 }));
    expect(f).toEqual({ total_connections_received: "4", total_commands_processed: "9", sync_full: "2", sync_partial_ok: "1", sync_partial_err: "3" });
  });

  test("INFO: one section, every section joined by an empty line (bare, all), or nothing for an unknown one", () => {
    const s = { server: () => "# Server\r\na:1\r\n", stats: () => "# Stats\r\nb:2\r\n", replication: () => "# Replication\r\nc:3\r\n", cluster: () => "# Cluster\r\nd:4\r\n" };
    const all = "# Server\r\na:1\r\n\r\n# Stats\r\nb:2\r\n\r\n# Replication\r\nc:3\r\n\r\n# Cluster\r\nd:4\r\n";
    expect(infoReply(undefined, s)).toBe(all);
    expect(infoReply("ALL", s)).toBe(all);
    expect(infoReply("Stats", s)).toBe("# Stats\r\nb:2\r\n");
    expect(infoReply("keyspace", s)).toBe("");
  });

  test("CLUSTER INFO as Kvrocks prints it: slots assigned, known nodes, masters with slots, the version as epoch", () => {
    expect(clusterInfoText(state())).toBe(
      "cluster_state:ok\r\ncluster_slots_assigned:8192\r\ncluster_slots_ok:8192\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\n" +
        "cluster_known_nodes:3\r\ncluster_size:1\r\ncluster_current_epoch:7\r\ncluster_my_epoch:7\r\n",
    );
  });

  test("CLUSTER NODES|INFO: CLUSTERDOWN before a topology, not enabled without cluster mode, usage otherwise", () => {
    expect(clusterCommand(initialClusterState(), ["NODES"])).toEqual({ type: "error", message: "CLUSTERDOWN The cluster is not initialized" });
    expect(clusterCommand(initialClusterState(), ["info"])).toEqual({ type: "error", message: "CLUSTERDOWN The cluster is not initialized" });
    expect(clusterCommand(null, ["NODES"])).toEqual({ type: "error", message: "ERR Cluster mode is not enabled" });
    expect(clusterCommand(state(), ["SLOTS"]).type).toBe("error");
    expect(clusterCommand(state(), ["NODES", "x"]).type).toBe("error");
    const nodes = clusterCommand(state(), ["nodes"], 5000);
    expect(nodes).toEqual({ type: "bulk", value: formatClusterNodes(state().topology!, B, 7, 5000) });
    expect(clusterCommand(state(), ["INFO"])).toEqual({ type: "bulk", value: clusterInfoText(state()) });
  });
});

test("a Kvrocks reply with a migration entry: flags, ping/pong/version/link state dropped, myself found, pushable as it is", () => {
  const text =
    `${A} 10.0.0.1:7000@17000 master - 1795547720116 1795547720117 28 connected 0-8191 [8192->-${B}]\n` +
    `${C} 10.0.0.3:7000@17000 myself,slave ${A} 0 1795547720117 28 connected\n` +
    `${B} 10.0.0.2:7000@17000 master - 0 1795547720117 28 connected 8192-16383\n`;
  const v = parseClusterNodes(text);
  expect(v.myself?.id).toBe(C);
  expect(v.version).toBe(28);
  expect(v.entries.map(canonicalLine)).toEqual([`${A} 10.0.0.1 7000 master - 0-8191`, `${C} 10.0.0.3 7000 slave ${A}`, `${B} 10.0.0.2 7000 master - 8192-16383`]);
  expect(parseNodes(v.entries.map(canonicalLine).join("\n"))).toEqual(topologyFromClusterNodes(v));
});
