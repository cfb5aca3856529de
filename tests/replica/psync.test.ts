/** PSYNC only when the target holds a complete checkpoint; an empty target goes straight to full sync. */
import { expect, test } from "bun:test";
import { cleanupAfterEach } from "../helpers/kvr.ts";
import { fakeCheckpoint, startFakeMaster } from "./fake-master.ts";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { diffDir, info, startReplica } from "./helpers.ts";
import { FIXTURE } from "../helpers/fixture.ts";

const { defer, temp } = cleanupAfterEach();

test("an empty target: AUTH, _db_name, replconf, then _fetch_meta — no PSYNC", async () => {
  const m = await startFakeMaster({ files: fakeCheckpoint(2, 1000), password: "pw" });
  defer(() => m.close());
  const dir = temp();
  const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--once"], { KVR_MASTERAUTH: "pw" });
  defer(() => r.stop());
  expect(await r.kvr.exited).toBe(0);
  const words = m.commands.map((c) => c[0]);
  expect(words.slice(0, 4)).toEqual(["auth", "_db_name", "replconf", "auth"]);
  expect(m.commands[2]).toEqual(["replconf", "listening-port", String(r.port)]);
  expect(words).not.toContain("psync");
  expect(words.filter((w) => w === "_fetch_meta").length).toBe(1);
  expect(words.filter((w) => w === "_fetch_file").length).toBe(1);
  const states = r.kvr.events.filter((e) => e.event === "state").map((e) => e.state);
  expect(states).toEqual(["connecting", "send_auth", "check_db_name", "replconf", "fetch_meta", "fetch_files", "synced"]);
});

/** The real Kvrocks checkpoint fixture (sequence 2256: MANIFEST 2156 + WAL up to 2256). */
function fixtureFiles() {
  return readdirSync(FIXTURE).map((name) => ({ name, data: readFileSync(join(FIXTURE, name)) }));
}
/** A temp target directory already holding `files` (a complete checkpoint). */
function filledTarget(files: Array<{ name: string; data: Buffer }>): string {
  const dir = temp();
  for (const f of files) writeFileSync(join(dir, f.name), f.data);
  return dir;
}

test("a target holding a complete checkpoint asks PSYNC <its sequence + 1>; +OK → connected, no full sync", async () => {
  const files = fixtureFiles();
  const m = await startFakeMaster({ files, psyncReply: "OK" });
  defer(() => m.close());
  const dir = filledTarget(files);
  const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`]);
  defer(() => r.stop());
  await r.kvr.waitEvent((e) => e.event === "state" && e.state === "connected", 5000);
  expect(m.commands.find((c) => c[0] === "psync")).toEqual(["psync", "2257"]);
  expect(m.commands.map((c) => c[0])).not.toContain("_fetch_meta");
  expect(await info(r.port)).toMatchObject({ master_link_status: "up", kvr_state: "connected", slave_repl_offset: "2256" });
});

test("PSYNC refused → full sync that skips the files already present (CURRENT fetched again)", async () => {
  const files = fixtureFiles();
  const m = await startFakeMaster({ files });
  defer(() => m.close());
  const dir = filledTarget(files);
  // Without --once: a --once replica does one full sync and never sends PSYNC.
  const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`]);
  defer(() => r.stop());
  await r.kvr.waitEvent((e) => e.event === "done", 5000);
  // This fake master refuses every PSYNC: stop before the next full sync deletes CURRENT again.
  expect(await r.stop()).toBe(0);
  expect(m.commands.find((c) => c[0] === "psync")).toEqual(["psync", "2257"]);
  const states = r.kvr.events.filter((e) => e.event === "state").map((e) => e.state);
  expect(states.slice(0, 7)).toEqual(["connecting", "check_db_name", "replconf", "send_psync", "fetch_meta", "fetch_files", "synced"]);
  expect(r.kvr.events.find((e) => e.event === "skip")!.count).toBe(files.length - 1);
  expect(m.commands.find((c) => c[0] === "_fetch_file")).toEqual(["_fetch_file", "CURRENT"]);
  expect(diffDir(dir, files)).toEqual([]);
  expect(r.kvr.events.find((e) => e.event === "done")).toMatchObject({ files: files.length, skipped: files.length - 1 });
});

test("--once into a target holding a complete checkpoint: no PSYNC, one full sync skipping all but CURRENT", async () => {
  const files = fixtureFiles();
  // A master that would accept the PSYNC and stream forever.
  const m = await startFakeMaster({ files, psyncReply: "OK" });
  defer(() => m.close());
  const dir = filledTarget(files);
  const r = await startReplica(["--dir", dir, "--master", `127.0.0.1:${m.port}`, "--once"]);
  defer(() => r.stop());
  expect(await Promise.race([r.kvr.exited, Bun.sleep(5000).then(() => "still running")])).toBe(0);
  expect(m.commands.map((c) => c[0])).not.toContain("psync");
  expect(r.kvr.events.find((e) => e.event === "skip")!.count).toBe(files.length - 1);
  expect(diffDir(dir, files)).toEqual([]);
});
