/** Connect deadlines: a master whose accept queue never drains (connects hang). */
import { afterEach, expect, test } from "bun:test";
import { listenNoAccept } from "../../lib/net/index.ts";
import { replyText } from "../../lib/resp/index.ts";
import { runKvr, tempDir } from "../helpers/kvr.ts";
import { admin, ID_R, info, startReplica, topology } from "./helpers.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

test("connect deadline: a master that never accepts fails the attempt in --connect-timeout (exit 3)", async () => {
  const hole = await listenNoAccept("127.0.0.1", 0);
  cleanups.push(() => hole.close());
  const d = tempDir();
  cleanups.push(d.cleanup);
  const t0 = Date.now();
  const r = await runKvr(["replica", "--dir", d.path, "--master", `127.0.0.1:${hole.port}`, "--port", "0", "--once", "--max-retries", "1", "--connect-timeout", "300ms", "--retry-delay", "100ms"], { timeoutMs: 10_000 });
  const ms = Date.now() - t0;
  expect(r.code).toBe(3);
  expect(r.stderr).toContain(`control connection to 127.0.0.1:${hole.port}: could not connect to 127.0.0.1:${hole.port} within 300 ms`);
  expect(r.stderr.match(/attempt \d failed: CONNECT_TIMEOUT/g)?.length).toBe(2);
  expect(ms).toBeLessThan(4000);
});

test("SETNODES away from a master whose connect hangs returns at once", async () => {
  const hole = await listenNoAccept("127.0.0.1", 0);
  cleanups.push(() => hole.close());
  const d = tempDir();
  cleanups.push(d.cleanup);
  const r = await startReplica(["--dir", d.path, "--node-id", ID_R, "--connect-timeout", "30s"]);
  cleanups.push(() => r.stop());
  expect(replyText(await admin(r.port, ["CLUSTERX", "SETNODES", topology(r.port, { a: hole.port, b: 1 }, "a"), "1"]))).toBe("OK");
  await Bun.sleep(200);
  expect((await info(r.port)).kvr_state).toBe("connecting");
  const t0 = performance.now();
  expect(replyText(await admin(r.port, ["CLUSTERX", "SETNODES", topology(r.port, { a: hole.port, b: 1 }, "b"), "2"]))).toBe("OK");
  expect(performance.now() - t0).toBeLessThan(1000);
  expect((await info(r.port)).master_port).toBe("1");
});
