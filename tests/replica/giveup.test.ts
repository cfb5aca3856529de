/**
 * A replica whose run gives up — --max-retries exhausted (5 by default with --once), or at once on
 * a failure a retry cannot fix — exits, or stays up in state error as an operator's node.
 */
import { describe, expect, test } from "bun:test";
import { listenNoAccept } from "../../lib/net/index.ts";
import { replyText } from "../../lib/resp/index.ts";
import { failureExitCode } from "../../lib/replica/command.ts";
import { runKvr, cleanupAfterEach, spawnKvr } from "../helpers/kvr.ts";
import { admin, info, startMaster, startReplica, until } from "./helpers.ts";

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

test("--once gives up by default after 5 retries (6 attempts), exit 1: a script never hangs on a dead master", async () => {
  const r = await runKvr(["replica", "--dir", temp(), "--master", "127.0.0.1:1", "--once", "--retry-delay", "10ms"], { timeoutMs: 20_000 });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("full sync failed after 6 attempt(s)");
  expect(r.stderr.match(/attempt \d failed: REFUSED/g)?.length).toBe(6);
});

test("--max-retries n allows n + 1 attempts, as --help says", async () => {
  const r = await runKvr(["replica", "--dir", temp(), "--master", "127.0.0.1:1", "--port", "0", "--max-retries", "2", "--retry-delay", "10ms"], { timeoutMs: 10_000 });
  expect(r.code).toBe(1);
  expect(r.stderr.match(/attempt \d failed/g)?.length).toBe(3);
  const help = await runKvr(["replica", "--help"]);
  expect(help.stdout.replace(/\s+/g, " ")).toContain("Retries after a failed attempt before giving up: n allows n + 1 attempts (default: never give up; 5 with --once)");
});

describe("failures a retry cannot fix end the run at once (exit 1), whatever --max-retries says", () => {
  const cases: Array<{ name: string; master: string[]; replica: string[]; env?: Record<string, string>; code: string; says: string[] }> = [
    { name: "AUTH refused (wrong --masterauth)", master: ["--requirepass", "pw"], replica: ["--masterauth", "nope"], code: "AUTH", says: ["Invalid password", "--masterauth / KVR_MASTERAUTH"] },
    { name: "NOAUTH (no password given)", master: ["--requirepass", "pw"], replica: [], code: "NOAUTH", says: ["NOAUTH Authentication required.", "--masterauth or KVR_MASTERAUTH"] },
    { name: "AUTH to a master without a password", master: [], replica: [], env: { KVR_MASTERAUTH: "pw" }, code: "AUTH", says: ["no password is set"] },
    { name: "another db name", master: ["--db-name", "other.db"], replica: [], code: "DB_NAME", says: ["Mismatched the db name", "--db-name"] },
  ];
  for (const c of cases) {
    for (const mode of ["--once", "--master"] as const) {
      test(`${c.name}, ${mode === "--once" ? "--once" : "--master without --once"}: one attempt, exit 1`, async () => {
        const m = await startMaster(["--generate", "2x1KiB", ...c.master]);
        defer(() => m.stop());
        const extra = mode === "--once" ? ["--once", "--max-retries", "10"] : ["--port", "0"];
        const r = await runKvr(["replica", "--dir", temp(), "--master", `127.0.0.1:${m.port}`, "--retry-delay", "10ms", ...c.replica, ...extra], {
          env: { KVR_MASTERAUTH: "", ...c.env },
          timeoutMs: 10_000,
        });
        expect(r.code).toBe(1);
        expect(r.stderr.match(/attempt \d failed/g)).toEqual(["attempt 1 failed"]);
        expect(r.stderr).toContain(`attempt 1 failed: ${c.code}:`);
        expect(r.stderr).toContain("after 1 attempt(s)");
        for (const s of c.says) expect(r.stderr).toContain(s);
      });
    }
  }

  test("started without --master: a wrong --masterauth stops the run in state error with the reason in INFO; the process stays up", async () => {
    const m = await startMaster(["--generate", "2x1KiB", "--requirepass", "pw"]);
    defer(() => m.stop());
    const r = await startReplica(["--dir", temp(), "--masterauth", "nope", "--retry-delay", "10ms"]);
    defer(() => r.stop());
    expect(replyText(await admin(r.port, ["SLAVEOF", "127.0.0.1", String(m.port)]))).toBe("OK");
    await until(async () => (await info(r.port)).kvr_state === "error", 5000);
    await Bun.sleep(300);
    expect(r.kvr.proc.exitCode).toBeNull();
    expect(await info(r.port)).toMatchObject({
      kvr_state: "error",
      kvr_attempt: "1",
      kvr_last_error: expect.stringContaining("master refused AUTH: -ERR Invalid password (check --masterauth / KVR_MASTERAUTH)"),
    });
    expect(r.kvr.events.filter((e) => e.event === "connect")).toHaveLength(1);
  });
});

test("--once without --port takes a free admin port: two one-shot syncs at once do not collide", async () => {
  const m = await startMaster(["--generate", "2x1KiB"]);
  defer(() => m.stop());
  const a = spawnKvr(["replica", "--dir", temp(), "--master", `127.0.0.1:${m.port}`, "--once"]);
  const b = spawnKvr(["replica", "--dir", temp(), "--master", `127.0.0.1:${m.port}`, "--once"]);
  defer(() => a.stop("SIGKILL"));
  defer(() => b.stop("SIGKILL"));
  expect(await Promise.all([a.exited, b.exited])).toEqual([0, 0]);
  const ports = [a, b].map((p) => Number(p.events.find((e) => e.event === "listening")?.port));
  expect(ports[0]).not.toBe(ports[1]);
  expect(ports).not.toContain(6667);
});
