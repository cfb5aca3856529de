/** kvr master as a compiled binary: starts, serves a full sync, signals, exits 0 on SIGTERM. */
import { afterEach, expect, test } from "bun:test";
import { generatedContent, generatedFiles } from "../../lib/master/generate.ts";
import { runKvr, spawnKvr, type KvrProcess } from "../helpers/kvr.ts";
import { cmd, fullSync, open, send, sha } from "./helpers.ts";

let proc: KvrProcess | null = null;
afterEach(async () => {
  await proc?.stop("SIGKILL");
  proc = null;
});

async function start(args: string[], env: Record<string, string> = {}): Promise<number> {
  proc = spawnKvr(["master", "--port", "0", ...args], env);
  const ev = await proc.waitEvent((e) => e.event === "listening");
  expect(ev.host).toBe("127.0.0.1");
  return ev.port as number;
}

test("serves a full sync of generated data (password from KVR_REQUIREPASS) and exits 0 on SIGTERM within 1 s", async () => {
  const port = await start(["--generate", "24x128KiB:seed=3"], { KVR_REQUIREPASS: "pw" });
  const src = proc!.events.find((e) => e.event === "source")!;
  expect(src.files).toBe(27);
  const { data } = await fullSync(port, { password: "pw" });
  for (const f of generatedFiles("24x128KiB:seed=3")) expect(sha(data.get(f.name)!)).toBe(sha(generatedContent("24x128KiB:seed=3", f.name)));
  expect(proc!.stderr()).not.toContain("pw\n");
  const t0 = performance.now();
  expect(await proc!.stop("SIGTERM")).toBe(0);
  expect(performance.now() - t0).toBeLessThan(1000);
});

test("SIGINT with a connection mid-stream (stalled) still exits 0 within 1 s", async () => {
  const port = await start(["--generate", "2x1MiB", "--fault", "stall:after-bytes=1000"]);
  const c = await open(port);
  await send(c, "_fetch_file", "000010.sst");
  await c.readLine();
  const t0 = performance.now();
  expect(await proc!.stop("SIGINT")).toBe(0);
  expect(performance.now() - t0).toBeLessThan(1000);
  c.destroy();
});

test("SIGUSR1 stalls live connections, SIGUSR2 releases them", async () => {
  const port = await start(["--generate", "1x64KiB"]);
  const c = await open(port, 400);
  expect(await cmd(c, "PING")).toBe("PONG");
  proc!.proc.kill("SIGUSR1");
  await proc!.waitEvent((e) => e.event === "fault" && e.kind === "stall");
  await send(c, "PING");
  const other = await open(port, 400);
  await send(other, "PING");
  // Both the live connection and a new one get no answer, and neither is closed by the master.
  await Promise.all([
    expect(c.readLine()).rejects.toMatchObject({ code: "READ_TIMEOUT" }),
    expect(other.readLine()).rejects.toMatchObject({ code: "READ_TIMEOUT" }),
  ]);
  const c2 = await open(port, 2000);
  await send(c2, "PING");
  const answered = c2.readLine();
  await Bun.sleep(100);
  proc!.proc.kill("SIGUSR2");
  expect(await answered).toBe("+PONG");
  expect(await cmd(c2, "PING")).toBe("PONG");
});

test("usage errors exit 2 with one line", async () => {
  for (const args of [
    ["master", "--dir", "/nonexistent-kvr-dir"],
    ["master", "--generate", "banana"],
    ["master", "--seq", "0"],
    ["master", "--fault", "explode"],
    ["master", "--fault", "delay:ms=fast"],
    ["master", "--dir", ".", "--generate", "1x1"],
  ]) {
    const r = await runKvr(args, { timeoutMs: 10_000 });
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toMatch(/^kvr: /);
  }
});

test("a port in use: one line naming the port and suggesting --port 0, exit 1", async () => {
  const { listen } = await import("../../lib/net/index.ts");
  const holder = await listen("127.0.0.1", 0, (c) => c.destroy());
  try {
    const r = await runKvr(["master", "--port", String(holder.port)], { timeoutMs: 10_000 });
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`cannot listen on the master's port 127.0.0.1:${holder.port}: the port is already in use`);
    expect(lines[0]).toContain("--port 0");
    expect(lines[0].match(/EADDRINUSE|already in use/g)).toHaveLength(1);
  } finally {
    await holder.close(0);
  }
});
