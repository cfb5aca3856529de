/** A replica whose run gives up (--max-retries exhausted) without --once: exit, or stay up as an operator's node. */
import { expect, test } from "bun:test";
import { listenNoAccept } from "../../lib/net/index.ts";
import { replyText } from "../../lib/resp/index.ts";
import { failureExitCode } from "../../lib/replica/command.ts";
import { runKvr, cleanupAfterEach } from "../helpers/kvr.ts";
import { admin, info, startReplica, until } from "./helpers.ts";

const { defer, temp } = cleanupAfterEach();

test("started with --master, no --once: giving up exits 1 (a refused connection)", async () => {
  // Nothing listens on 127.0.0.1:1.
  const r = await runKvr(["replica", "--dir", temp(), "--master", "127.0.0.1:1", "--port", "0", "--max-retries", "1", "--retry-delay", "50ms"], { timeoutMs: 10_000 });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("replication from 127.0.0.1:1 gave up after 2 attempt(s)");
  expect(r.stderr.match(/attempt \d failed: REFUSED/g)?.length).toBe(2);
});

test("started with --master, no --once: giving up after a deadline exits 3", async () => {
  const hole = await listenNoAccept("127.0.0.1", 0);
  defer(() => hole.close());
  const r = await runKvr(["replica", "--dir", temp(), "--master", `127.0.0.1:${hole.port}`, "--port", "0", "--max-retries", "0", "--connect-timeout", "300ms"], { timeoutMs: 10_000 });
  expect(r.code).toBe(3);
  expect(r.stderr).toContain("attempt 1 failed: CONNECT_TIMEOUT");
});

test("a write deadline is a deadline too (exit 3); other failures exit 1", () => {
  expect(["CONNECT_TIMEOUT", "READ_TIMEOUT", "WRITE_TIMEOUT"].map(failureExitCode)).toEqual([3, 3, 3]);
  expect(["REFUSED", "CLOSED", "RESET", "PROTOCOL", "IO", "MASTER_ERROR"].map(failureExitCode)).toEqual([1, 1, 1, 1, 1, 1]);
});

test("started without --master: a master from SLAVEOF that gives up leaves the node up in state error", async () => {
  const r = await startReplica(["--dir", temp(), "--max-retries", "0"]);
  defer(() => r.stop());
  expect(replyText(await admin(r.port, ["SLAVEOF", "127.0.0.1", "1"]))).toBe("OK");
  await until(async () => (await info(r.port)).kvr_state === "error", 5000);
  await Bun.sleep(300);
  expect(r.kvr.proc.exitCode).toBeNull();
  expect(await info(r.port)).toMatchObject({ role: "slave", master_port: "1", kvr_state: "error", kvr_last_error: expect.stringContaining("connection refused") });
  // Still an operator's node: the next SLAVEOF is served.
  expect(replyText(await admin(r.port, ["SLAVEOF", "NO", "ONE"]))).toBe("OK");
  expect(await info(r.port)).toMatchObject({ role: "master", kvr_state: "idle" });
  expect(await r.stop()).toBe(0);
});
