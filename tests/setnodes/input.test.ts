/**
 * Topology input is bounded: a file, a device or stdin is read to at most 8 MiB (the largest
 * argument a node's admin port takes), then refused with exit 2 naming the source and the limit.
 */
import { afterEach, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { MAX_NODES_BYTES } from "../../lib/cluster/index.ts";
import { MAX_ARG_BYTES } from "../../lib/replica/admin.ts";
import { readTopologyInput } from "../../lib/setnodes/input.ts";
import { UsageError } from "../../lib/ui/units.ts";
import { rejected } from "../helpers/errors.ts";
import { KVR_BIN, runKvr, tempDir } from "../helpers/kvr.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const LIMIT_TEXT = "more than 8 MiB (8388608 bytes), the largest topology a node accepts";

test("the limit is the admin port's largest argument", () => {
  expect(MAX_NODES_BYTES).toBe(MAX_ARG_BYTES);
  expect(MAX_NODES_BYTES).toBe(8 * 1024 * 1024);
});

test("stdin of exactly the limit is read whole; one byte more is a usage error naming stdin and the limit", async () => {
  async function* chunks(total: number) {
    const chunk = new Uint8Array(1 << 20).fill(0x0a);
    for (let left = total; left > 0; left -= chunk.length) yield left >= chunk.length ? chunk : chunk.subarray(0, left);
  }
  const ok = await readTopologyInput({ nodesFile: "-" }, () => chunks(MAX_NODES_BYTES));
  expect(ok.text.length).toBe(MAX_NODES_BYTES);
  const e = await rejected(UsageError, readTopologyInput({ nodesFile: "-" }, () => chunks(MAX_NODES_BYTES + 1)));
  expect(e.message).toBe(`--nodes-file - (stdin): ${LIMIT_TEXT} (its largest command argument); stopped reading there, nothing was sent`);
});

test("--nodes-file /dev/zero returns at once: exit 2 naming the file and the limit", async () => {
  const t0 = performance.now();
  const r = await runKvr(["setnodes", "--nodes-file", "/dev/zero", "--version", "1", "--dry-run"], { timeoutMs: 20_000 });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`--nodes-file /dev/zero: ${LIMIT_TEXT}`);
  expect(r.stderr.trim().split("\n").length).toBe(1);
  expect(performance.now() - t0).toBeLessThan(10_000);
  // The same reader serves kvr doctor's --nodes-file.
  const d = await runKvr(["doctor", "--nodes-file", "/dev/zero"], { timeoutMs: 20_000 });
  expect(d.code).toBe(2);
  expect(d.stderr).toContain(`--nodes-file /dev/zero: ${LIMIT_TEXT}`);
});

test("--nodes-file - fed by an endless pipe: exit 2 naming stdin and the limit", async () => {
  const t0 = performance.now();
  const p = Bun.spawn(["sh", "-c", `yes '${"1".repeat(40)} 127.0.0.1 7000 master - 0-16383' | "$KVR" setnodes --nodes-file - --version 1 --dry-run`], {
    env: { ...process.env, KVR: KVR_BIN },
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => p.kill("SIGKILL"), 20_000);
  const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  expect(code).toBe(2);
  expect(stderr).toContain(`--nodes-file - (stdin): ${LIMIT_TEXT}`);
  expect(performance.now() - t0).toBeLessThan(10_000);
});

test("a regular file one byte over the limit: exit 2; a file under it is read as before", async () => {
  const d = tempDir();
  cleanups.push(d.cleanup);
  const big = join(d.path, "big.txt");
  const line = `${"1".repeat(40)} 127.0.0.1 7000 master - 0-16383\n`;
  writeFileSync(big, Buffer.concat([Buffer.from(line), Buffer.alloc(MAX_NODES_BYTES + 1 - line.length, 0x0a)]));
  const r = await runKvr(["setnodes", "--nodes-file", big, "--version", "1", "--dry-run"]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`--nodes-file ${big}: ${LIMIT_TEXT}`);
  const small = join(d.path, "small.txt");
  writeFileSync(small, line);
  const s = await runKvr(["setnodes", "--nodes-file", small, "--version", "1", "--dry-run"]);
  expect(s.code).toBe(0);
  expect(s.stdout).toBe(line);
});
