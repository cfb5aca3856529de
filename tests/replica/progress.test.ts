/** The progress line: shown when stdout and stderr are a terminal, never in a pipe or with --json. */
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { KVR_BIN, cleanupAfterEach, runKvr } from "../helpers/kvr.ts";
import { startMaster } from "./helpers.ts";

const { defer, temp } = cleanupAfterEach();
const PROGRESS = /\r\x1b\[2Kfiles \d+\/19 .*MiB\/s {2}ETA /;
const hasScript = existsSync("/usr/bin/script");

/** Run `kvr <args>` under a pseudo-terminal (util-linux `script`), returning what it showed. */
async function onTerminal(args: string[]): Promise<{ code: number; screen: string }> {
  const cmd = [KVR_BIN, ...args].map((a) => `'${a}'`).join(" ");
  const proc = Bun.spawn(["script", "-qec", cmd, "/dev/null"], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, TERM: "xterm" } });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  const [screen, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  clearTimeout(timer);
  return { code, screen };
}

test.skipIf(!hasScript)("on a terminal, a full sync shows a progress line (files, bytes, rate, ETA, current file)", async () => {
  const m = await startMaster(["--generate", "16x1MiB", "--rate", "6"]);
  defer(() => m.stop());
  const { code, screen } = await onTerminal(["replica", "--dir", temp(), "--master", `127.0.0.1:${m.port}`, "--port", "0", "--once"]);
  expect(code).toBe(0);
  expect(screen).toMatch(PROGRESS);
  expect(screen).toMatch(/\r\x1b\[2Kfiles \d+\/19 .*\d{6}\.sst/);
});

test("in a pipe, and with --json, there is no progress line", async () => {
  const m = await startMaster(["--generate", "16x1MiB", "--rate", "12"]);
  defer(() => m.stop());
  for (const extra of [[], ["--json"]]) {
    const r = await runKvr(["replica", "--dir", temp(), "--master", `127.0.0.1:${m.port}`, "--port", "0", "--once", ...extra]);
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(/\x1b\[2K/);
    expect(r.stdout + r.stderr).toMatch(/19 files|"files":19/);
  }
});
