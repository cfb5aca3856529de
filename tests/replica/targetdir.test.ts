/** The target directory guard: a full sync deletes only what looks like a checkpoint or kvr's state. */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { replyText } from "../../lib/resp/index.ts";
import { isReplicaFileName, prepareDir } from "../../lib/replica/files.ts";
import { runKvr, cleanupAfterEach } from "../helpers/kvr.ts";
import { admin, info, startMaster, startReplica, until } from "./helpers.ts";

const { defer, temp } = cleanupAfterEach();
const ls = (dir: string) => readdirSync(dir).sort();

test("names a full sync may delete: checkpoint files and kvr's state only", () => {
  for (const n of ["000012.sst", "000014.log", "000020.blob", "MANIFEST-000009", "OPTIONS-000011", "CURRENT", "IDENTITY", "LOCK", "LOG", "LOG.old.1700000000123456", "000012.sst.tmp", "CURRENT.tmp", "kvr-stream.log"]) {
    expect({ n, ok: isReplicaFileName(n) }).toEqual({ n, ok: true });
  }
  for (const n of ["notes.txt", "stale.sst", "a.log", "MANIFEST", "MANIFEST-x", "OPTIONS-", "current", ".bashrc", "kvrocks.conf", "000012.sst.bak", "dump.rdb"]) {
    expect({ n, ok: isReplicaFileName(n) }).toEqual({ n, ok: false });
  }
});

test("prepareDir: a foreign file among those to delete → FOREIGN_FILE naming it, nothing deleted", async () => {
  const dir = temp();
  for (const n of ["000001.sst", "000099.sst", "CURRENT", "notes.txt"]) writeFileSync(join(dir, n), n);
  const err = await prepareDir(dir, ["000001.sst", "CURRENT", "MANIFEST-000003"]).catch((e) => e);
  expect(err.code).toBe("FOREIGN_FILE");
  expect(err.message).toContain("notes.txt");
  expect(err.message).toContain("use an empty directory or a former replica directory");
  expect(ls(dir)).toEqual(["000001.sst", "000099.sst", "CURRENT", "notes.txt"]);
  // A file the master lists is kept, whatever its name; without the foreign file the stale ones go.
  writeFileSync(join(dir, "notes.txt"), "listed now");
  expect([...(await prepareDir(dir, ["000001.sst", "notes.txt", "CURRENT"]))].sort()).toEqual(["000001.sst", "notes.txt"]);
  expect(ls(dir)).toEqual(["000001.sst", "notes.txt"]);
});

test("start-up: --dir holding notes.txt → exit 2 before connecting, a clear error, every file still there", async () => {
  const dir = temp();
  writeFileSync(join(dir, "notes.txt"), "mine");
  writeFileSync(join(dir, "000007.sst"), "sst");
  const r = await runKvr(["replica", "--dir", dir, "--master", "127.0.0.1:1", "--port", "0", "--once"], { timeoutMs: 10_000 });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`--dir ${dir} holds notes.txt`);
  expect(r.stderr).toContain("use an empty directory or a former replica directory");
  expect(r.stderr).not.toContain("connecting");
  expect(ls(dir)).toEqual(["000007.sst", "notes.txt"]);
  expect(readFileSync(join(dir, "notes.txt"), "utf8")).toBe("mine");
});

test("a foreign file that appears after start-up fails the full sync with the same error; nothing is deleted or fetched", async () => {
  const m = await startMaster(["--generate", "4x16KiB"]);
  defer(() => m.stop());
  const dir = temp();
  const r = await startReplica(["--dir", dir, "--max-retries", "0"]);
  defer(() => r.stop());
  writeFileSync(join(dir, "notes.txt"), "mine");
  writeFileSync(join(dir, "000099.sst"), "stale");
  expect(replyText(await admin(r.port, ["SLAVEOF", "127.0.0.1", String(m.port)]))).toBe("OK");
  await until(async () => (await info(r.port)).kvr_state === "error", 5000);
  const i = await info(r.port);
  expect(i.kvr_last_error).toContain(`--dir ${dir} holds notes.txt`);
  expect(i.kvr_last_error).toContain("use an empty directory or a former replica directory");
  expect(r.kvr.events.find((e) => e.event === "retry" || (e.event === "state" && e.state === "fetch_files"))).toBeUndefined();
  expect(ls(dir)).toEqual(["000099.sst", "notes.txt"]);
});

test("start-up: a symbolic link named like kvr's state or a checkpoint file → exit 2, the file it points to untouched", async () => {
  const outside = join(temp(), "outside.txt");
  writeFileSync(outside, "28 bytes that must stay here");
  for (const name of ["kvr-stream.log", "CURRENT", "000012.sst.tmp"]) {
    const dir = temp();
    symlinkSync(outside, join(dir, name));
    const r = await runKvr(["replica", "--dir", dir, "--master", "127.0.0.1:1", "--port", "0"], { timeoutMs: 10_000 });
    expect({ name, code: r.code }).toEqual({ name, code: 2 });
    expect(r.stderr).toContain(`--dir ${dir}: ${name} is a symbolic link; kvr writes only regular files inside --dir: remove it`);
    expect(r.stderr).not.toContain("connecting");
  }
  expect(readFileSync(outside, "utf8")).toBe("28 bytes that must stay here");
});
