/** lib/client: INFO parsing and the session's reply limit, on real sockets. */
import { afterEach, expect, test } from "bun:test";
import { clusterVersion, intField, NodeFailure, openSession, parseInfo, slaveLines } from "../../lib/client/index.ts";
import { listen, type Conn, type Server } from "../../lib/net/index.ts";
import { RespDecoder, RespError, SimpleString } from "../../lib/resp/index.ts";
import { rejected } from "../helpers/errors.ts";

let servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close(20)));
  servers = [];
});

test("parseInfo skips headers and blank lines; slaveLines reads a master's replicas in N order", () => {
  const i = parseInfo("# Replication\r\nrole:master\r\nconnected_slaves:3\r\nslave1:ip=10.0.0.2,port=7002,offset=9,lag=1\r\n\r\nslave0:ip=::1,port=7001,offset=500,lag=0\r\nslave2:ip=x,port=99999\r\nmaster_repl_offset:500\r\n");
  expect(i.role).toBe("master");
  expect(slaveLines(i)).toEqual([
    { index: 0, ip: "::1", port: 7001, offset: 500, lag: 0 },
    { index: 1, ip: "10.0.0.2", port: 7002, offset: 9, lag: 1 },
  ]);
  expect([intField("12"), intField("-1"), intField(" 3 "), intField(""), intField("1.5"), intField(undefined), intField("x")]).toEqual([12, -1, 3, null, null, null, null]);
});

test("clusterVersion reads CLUSTERX VERSION as a bulk string, a simple string or an integer; anything else is null", () => {
  const replies = [Buffer.from("-1"), Buffer.from("42"), new SimpleString("7"), 9, Buffer.from("v1"), Buffer.from(""), new RespError("ERR Cluster mode is not enabled"), null, 1.5];
  expect(replies.map(clusterVersion)).toEqual([-1, 42, 7, 9, null, null, null, null, null]);
});

async function server(reply: (c: Conn) => Promise<void>): Promise<Server> {
  const s = await listen("127.0.0.1", 0, async (c) => {
    try {
      await c.read(new RespDecoder());
      await reply(c);
    } catch {
      c.destroy();
    }
  }, { readMs: 0 });
  servers.push(s);
  return s;
}

const failureOf = (p: Promise<unknown>) => rejected(NodeFailure, p);

test("a reply announcing more than maxReplyBytes is a protocol failure at its header, not buffered", async () => {
  const s = await server(async (c) => {
    await c.write("$104857600\r\n");
    await c.write(Buffer.alloc(1 << 20, 120));
  });
  const session = await openSession({ host: "127.0.0.1", port: s.port }, { connectMs: 1000, timeoutMs: 2000, auth: null, maxReplyBytes: 1 << 20 });
  const f = await failureOf(session.command("info", ["INFO"]));
  session.close();
  expect([f.kind, f.code, f.phase]).toEqual(["failed", "PROTOCOL", "info"]);
  expect(f.message).toContain("above the limit");
});

test("failure kinds: refused at connect, no reply within the deadline, closed mid-reply, error reply", async () => {
  const closed = await listen("127.0.0.1", 0, (c) => c.destroy());
  const port = closed.port;
  await closed.close(10);
  const refused = await failureOf(openSession({ host: "127.0.0.1", port }, { connectMs: 1000, timeoutMs: 1000, auth: null }));
  expect([refused.kind, refused.phase, refused.code]).toEqual(["refused", "connect", "REFUSED"]);

  const silent = await server(() => new Promise(() => {}));
  const s1 = await openSession({ host: "127.0.0.1", port: silent.port }, { connectMs: 1000, timeoutMs: 300, auth: null });
  const t0 = performance.now();
  const timeout = await failureOf(s1.command("ping", ["PING"]));
  expect([timeout.kind, timeout.phase]).toEqual(["timeout", "ping"]);
  expect(performance.now() - t0).toBeGreaterThanOrEqual(250);

  const half = await server(async (c) => {
    await c.write("$10\r\nabc");
    c.end();
  });
  const s2 = await openSession({ host: "127.0.0.1", port: half.port }, { connectMs: 1000, timeoutMs: 1000, auth: null });
  const cut = await failureOf(s2.command("info", ["INFO"]));
  expect([cut.kind, cut.code]).toEqual(["failed", "CLOSED"]);

  const err = await server(async (c) => void (await c.write("-NOAUTH Authentication required.\r\n")));
  const s3 = await openSession({ host: "127.0.0.1", port: err.port }, { connectMs: 1000, timeoutMs: 1000, auth: null });
  const noauth = await failureOf(s3.command("ping", ["PING"]));
  expect([noauth.kind, noauth.message, noauth.code]).toEqual(["error", "-NOAUTH Authentication required. (the node needs a password: give --auth or set KVR_AUTH)", null]);
  for (const s of [s1, s2, s3]) s.close();
});
