/** The admin port: AUTH, Kvrocks' messages, CLUSTERX / CLUSTER NODES / ROLE / INFO wiring. */
import { afterEach, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { connect } from "../../lib/net/index.ts";
import { call, replyText } from "../../lib/resp/index.ts";
import { runKvr, tempDir } from "../helpers/kvr.ts";
import { admin, ID_A, ID_B, ID_R, info, startReplica, topology } from "./helpers.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
async function replica(args: string[] = [], env: Record<string, string> = {}) {
  const d = tempDir();
  cleanups.push(d.cleanup);
  const r = await startReplica(["--dir", d.path, ...args], env);
  cleanups.push(() => r.stop());
  return r;
}
const text = async (port: number, args: string[]) => replyText(await admin(port, args));

test("requirepass: NOAUTH before AUTH, wrong password, then every command works", async () => {
  const r = await replica([], { KVR_REQUIREPASS: "s3cret" });
  const conn = await connect("127.0.0.1", r.port, { readMs: 3000 });
  cleanups.push(() => conn.destroy());
  for (const cmd of [["PING"], ["INFO"], ["CLUSTERX", "VERSION"], ["SLAVEOF", "NO", "ONE"], ["CLUSTER", "NODES"], ["ROLE"]]) {
    expect(replyText(await call(conn, cmd))).toBe("-NOAUTH Authentication required.");
  }
  expect(replyText(await call(conn, ["AUTH", "wrong"]))).toBe("-ERR Invalid password");
  expect(replyText(await call(conn, ["AUTH", "s3cret"]))).toBe("OK");
  expect(replyText(await call(conn, ["PING"]))).toBe("PONG");
  expect(replyText(await call(conn, ["CLUSTERX", "VERSION"]))).toBe("-1");
  // The password never shows in INFO.
  expect(replyText(await call(conn, ["INFO"]))).not.toContain("s3cret");
});

test("AUTH without a password set; unknown command; inline commands", async () => {
  const r = await replica();
  expect(await text(r.port, ["AUTH", "x"])).toBe("-ERR Client sent AUTH, but no password is set");
  expect(await text(r.port, ["FLUSHALL", "a", "b"])).toBe("-ERR unknown command `FLUSHALL`, with args beginning with: `a`, `b`");
  const conn = await connect("127.0.0.1", r.port, { readMs: 3000 });
  cleanups.push(() => conn.destroy());
  await conn.write("PING\r\n");
  expect(await conn.readLine()).toBe("+PONG");
});

test("SETNODES errors are Kvrocks' exact messages", async () => {
  const r = await replica(["--node-id", ID_R]);
  const good = topology(r.port, { a: 7001, b: 7002 }, "a");
  const cases: Array<[string[], string]> = [
    [["CLUSTERX", "SETNODES", good, "x"], "-ERR Invalid version"],
    [["CLUSTERX", "SETNODES", good, "-1"], "-ERR Invalid cluster version"],
    [["CLUSTERX", "SETNODES", good, "1", "NOW"], "-ERR Invalid setnodes options"],
    [["CLUSTERX", "SETNODES", `${ID_A} 127.0.0.1 7001 master`, "1"], "-ERR Invalid cluster nodes info"],
    [["CLUSTERX", "SETNODES", `${"a".repeat(39)} 127.0.0.1 7001 master -`, "1"], "-ERR Invalid cluster node id"],
    [["CLUSTERX", "SETNODES", `${ID_A} 127.0.0.1 99999 master -`, "1"], "-ERR Invalid cluster node port"],
    [["CLUSTERX", "SETNODES", `${ID_A} 127.0.0.1 7001 leader -`, "1"], "-ERR Invalid cluster node role"],
    [["CLUSTERX", "SETNODES", `${ID_A} 127.0.0.1 7001 master - 9-3`, "1"], "-ERR Slot is out of range"],
    [["CLUSTERX", "SETNODES", `${ID_A} 127.0.0.1 7001 master - 0-10\n${ID_B} 127.0.0.1 7002 master - 10`, "1"], "-ERR Slot distribution is overlapped"],
    [["CLUSTERX", "SETNODEID", "short"], "-ERR Invalid cluster node id"],
  ];
  for (const [cmd, want] of cases) expect(await text(r.port, cmd)).toBe(want);
  // A lower version after a good one.
  expect(await text(r.port, ["CLUSTERX", "SETNODES", good.replace(/slave a{40}$/, "master -").replace(/ 0-8191/, " 0-8191"), "3"])).toBe("OK");
  expect(await text(r.port, ["CLUSTERX", "SETNODES", good, "2"])).toBe("-ERR Invalid cluster version");
  expect(await text(r.port, ["CLUSTERX", "VERSION"])).toBe("3");
});

test("CLUSTERX MYID/SETNODEID, CLUSTER NODES with myself, ROLE and INFO after SETNODES", async () => {
  const r = await replica(["--node-id", ID_R, "--connect-timeout", "200ms", "--retry-delay", "5s"]);
  expect(await text(r.port, ["CLUSTERX", "MYID"])).toBe(ID_R);
  expect(await text(r.port, ["CLUSTER", "NODES"])).toBe("-CLUSTERDOWN The cluster is not initialized");
  expect(await info(r.port)).toMatchObject({ role: "master", kvr_state: "idle", kvr_fetch_connections: "0" });
  // Master A does not exist (a closed port): the replica keeps retrying, the admin port answers.
  const closedPort = 1; // nothing listens on 127.0.0.1:1
  expect(await text(r.port, ["CLUSTERX", "SETNODES", topology(r.port, { a: closedPort, b: 7002 }, "a"), "7"])).toBe("OK");
  const nodes = await text(r.port, ["CLUSTER", "NODES"]);
  expect(nodes).toContain(`${ID_R} 127.0.0.1:${r.port}@${r.port + 10000} myself,slave ${ID_A}`);
  expect(nodes).toContain(`${ID_A} 127.0.0.1:1@10001 master -`);
  const role = await admin(r.port, ["ROLE"]);
  expect(Array.isArray(role) && role.slice(0, 3).map((v) => (Buffer.isBuffer(v) ? v.toString() : v))).toEqual(["slave", "127.0.0.1", 1]);
  const i = await info(r.port);
  expect(i).toMatchObject({ role: "slave", master_host: "127.0.0.1", master_port: "1", master_link_status: "down" });
  await Bun.sleep(100);
  expect((await info(r.port)).kvr_last_error).toContain("connection refused");
  expect(await text(r.port, ["INFO", "cluster"])).toBe("# Cluster\r\ncluster_enabled:1\r\n");
  expect(await text(r.port, ["CLUSTER", "INFO"])).toContain("cluster_current_epoch:7\r\n");
});

test("INFO server: the replica's own process id (default INFO too; not in INFO replication)", async () => {
  const r = await replica();
  expect(await info(r.port, "server")).toMatchObject({ process_id: String(r.kvr.proc.pid), kvrocks_version: expect.stringMatching(/^kvr-/) });
  const all = await text(r.port, ["INFO"]);
  expect(all).toMatch(new RegExp(`^# Server\r\n(?:[a-z_0-9]+:[^\r\n]*\r\n)*process_id:${r.kvr.proc.pid}\r\n`));
  expect(all.indexOf("# Server")).toBeLessThan(all.indexOf("# Replication"));
  expect(await text(r.port, ["INFO", "replication"])).not.toContain("process_id");
});

test("usage errors exit 2: missing --dir, a --dir that does not exist, bad --node-id", async () => {
  expect((await runKvr(["replica", "--port", "0"])).code).toBe(2);
  const missing = await runKvr(["replica", "--dir", "/nonexistent/kvr-target", "--port", "0"]);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain("does not exist");
  expect((await runKvr(["replica", "--dir", ".", "--node-id", "abc", "--port", "0"])).code).toBe(2);
});

test("command order as Kvrocks: unknown command, then arity, then NOAUTH; full arguments in the unknown-command message", async () => {
  const r = await replica([], { KVR_REQUIREPASS: "s3cret" });
  const conn = await connect("127.0.0.1", r.port, { readMs: 3000 });
  cleanups.push(() => conn.destroy());
  const long = "x".repeat(300);
  const cases: Array<[string[], string]> = [
    [["FOO", "a"], "-ERR unknown command `FOO`, with args beginning with: `a`"],
    [["_db_name", "x"], "-ERR unknown command `_db_name`, with args beginning with: `x`"],
    [["flushall", long, "b"], `-ERR unknown command \`flushall\`, with args beginning with: \`${long}\`, \`b\``],
    [["ROLE", "x"], "-ERR wrong number of arguments"],
    [["SLAVEOF", "127.0.0.1"], "-ERR wrong number of arguments"],
    [["CLUSTERX"], "-ERR wrong number of arguments"],
    [["CLUSTER"], "-ERR wrong number of arguments"],
    [["QUIT", "now"], "-ERR wrong number of arguments"],
    [["AUTH"], "-ERR wrong number of arguments"],
    [["ROLE"], "-NOAUTH Authentication required."],
    [["SLAVEOF", "127.0.0.1", "1"], "-NOAUTH Authentication required."],
  ];
  for (const [cmd, want] of cases) expect({ cmd: cmd[0], reply: replyText(await call(conn, cmd)) }).toEqual({ cmd: cmd[0], reply: want });
  // Nothing took effect; after AUTH the same arity check applies.
  expect(replyText(await call(conn, ["AUTH", "s3cret"]))).toBe("OK");
  expect(replyText(await call(conn, ["ROLE", "x"]))).toBe("-ERR wrong number of arguments");
  expect(replyText(await call(conn, ["INFO", "replication"]))).toContain("role:master");
  // QUIT needs no AUTH (as on kvr master): +OK, then the connection ends.
  const q = await connect("127.0.0.1", r.port, { readMs: 3000 });
  cleanups.push(() => q.destroy());
  expect(replyText(await call(q, ["QUIT"]))).toBe("OK");
  expect(await q.readLine().catch((e) => (e as { code?: string }).code)).toMatch(/^(CLOSED|RESET)$/);
});

test("PING: no argument → +PONG, one → its bulk, more → -ERR wrong number of arguments (as kvr master), byte for byte", async () => {
  const r = await replica();
  const conn = await connect("127.0.0.1", r.port, { readMs: 3000 });
  cleanups.push(() => conn.destroy());
  await conn.write("*4\r\n$4\r\nPING\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n" + "PING a b c\r\n" + "*2\r\n$4\r\nPING\r\n$1\r\na\r\n" + "PING\r\n" + "QUIT\r\n");
  const got: Buffer[] = [];
  for (let chunk = await conn.readChunk(); chunk !== null; chunk = await conn.readChunk()) got.push(Buffer.from(chunk));
  expect(Buffer.concat(got).toString("latin1")).toBe("-ERR wrong number of arguments\r\n".repeat(2) + "$1\r\na\r\n+PONG\r\n+OK\r\n");
});

test("an HTTP request (POST or Host:, any case) closes the admin connection without a reply", async () => {
  const r = await replica();
  for (const first of ["POST / HTTP/1.1\r\n", "post /x HTTP/1.0\r\n", "HOST: 127.0.0.1\r\n", "host: x\r\n"]) {
    const conn = await connect("127.0.0.1", r.port, { readMs: 2000 });
    cleanups.push(() => conn.destroy());
    await conn.write(first + "Content-Length: 0\r\n\r\n");
    const t0 = performance.now();
    const err = await conn.readLine().then(
      (line) => ({ line }),
      (e) => ({ code: (e as { code?: string }).code }),
    );
    expect({ first, got: err }).toEqual({ first, got: { code: expect.stringMatching(/^(CLOSED|RESET)$/) } });
    expect(performance.now() - t0).toBeLessThan(1500);
  }
  // The port still serves.
  expect(await text(r.port, ["PING"])).toBe("PONG");
});

test("an argument above 8 MiB is refused at its bulk header; one of 8 MiB is served", async () => {
  const r = await replica();
  const max = 8 * 1024 * 1024;
  const big = await connect("127.0.0.1", r.port, { readMs: 3000 });
  cleanups.push(() => big.destroy());
  await big.write(`*2\r\n$4\r\nPING\r\n$${max + 1}\r\n`);
  expect(await big.readLine()).toBe(`-ERR Protocol error: bulk length ${max + 1} above the limit of ${max}`);
  const ok = await connect("127.0.0.1", r.port, { readMs: 5000 });
  cleanups.push(() => ok.destroy());
  const arg = "n".repeat(max);
  const echoed = await call(ok, ["PING", arg]);
  expect(Buffer.isBuffer(echoed) && echoed.length).toBe(max);
});

test("an admin port in use: one line naming the admin port and suggesting --port 0, exit 1", async () => {
  const { listen } = await import("../../lib/net/index.ts");
  const holder = await listen("127.0.0.1", 0, (c) => c.destroy());
  cleanups.push(() => holder.close(0));
  const d = tempDir();
  cleanups.push(d.cleanup);
  const r = await runKvr(["replica", "--dir", d.path, "--port", String(holder.port)], { timeoutMs: 10_000 });
  expect(r.code).toBe(1);
  const lines = r.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain(`cannot listen on the admin port 127.0.0.1:${holder.port}: the port is already in use`);
  expect(lines[0]).toContain("--port 0");
  // A --dir it would have created is not left behind.
  const fresh = `${d.path}/new`;
  const again = await runKvr(["replica", "--dir", fresh, "--port", String(holder.port)], { timeoutMs: 10_000 });
  expect(again.code).toBe(1);
  const againLines = again.stderr.trim().split("\n");
  expect(againLines).toHaveLength(1);
  expect(againLines[0]).toContain(`cannot listen on the admin port 127.0.0.1:${holder.port}`);
  expect(existsSync(fresh)).toBe(false);
});

test("SLAVEOF with CR/LF or spaces in the host: -ERR Invalid host, nothing forged in INFO or the log; host names and addresses accepted", async () => {
  const r = await replica();
  const forged = "10.255.255.1\r\nmaster_link_status:up\r\nslave_repl_offset:999999";
  for (const host of [forged, "10.0.0.1 6379", "a\nb", "", "-x", "x:y"]) {
    expect({ host, reply: await text(r.port, ["SLAVEOF", host, "6379"]) }).toEqual({ host, reply: "-ERR Invalid host" });
  }
  const i = replyText(await admin(r.port, ["INFO", "replication"]));
  expect(i).toContain("role:master");
  expect(i).not.toContain("999999");
  expect(i).not.toContain("master_link_status:up");
  expect(r.kvr.stderr()).not.toContain("999999");
  expect(JSON.stringify(r.kvr.events)).not.toContain("999999");
  // Valid names and addresses are taken (nothing listens on port 1: the run just retries).
  for (const host of ["localhost", "127.0.0.1", "::1", "kvrocks-0.kvrocks.svc.cluster.local"]) {
    expect({ host, reply: await text(r.port, ["SLAVEOF", host, "1"]) }).toEqual({ host, reply: "OK" });
    expect((await info(r.port)).master_host).toBe(host);
  }
  expect(await text(r.port, ["SLAVEOF", "NO", "ONE"])).toBe("OK");
});
