/**
 * kvr replica creates its --dir as Kvrocks creates its own directories: the last path component
 * only, mode 0700 whatever the umask, when the parent exists. A missing parent, a file, a path
 * below a file and a directory holding foreign files are still refused (exit 2, nothing created).
 */
import { expect, test } from "bun:test";
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupAfterEach, runKvr, spawnKvr } from "../helpers/kvr.ts";

const { defer, temp } = cleanupAfterEach();

/** `kvr replica --dir <dir>` under `umask <mask>`; resolves once it listens. */
async function replicaUnder(mask: string, dir: string) {
  const kvr = spawnKvr(["replica", "--dir", dir, "--port", "0"], {}, ["sh", "-c", `umask ${mask}; exec "$0" "$@"`]);
  defer(() => kvr.stop("SIGTERM", 3000));
  await kvr.waitEvent((e) => e.event === "listening", 10_000);
  return kvr;
}

test("a --dir whose parent exists is created, mode 0700 under umask 000 and 077, and the replica starts", async () => {
  const parent = temp("kvr-targetdir-");
  for (const mask of ["000", "077"]) {
    const dir = join(parent, `new-${mask}`);
    const kvr = await replicaUnder(mask, dir);
    expect(statSync(dir).isDirectory()).toBe(true);
    expect((statSync(dir).mode & 0o777).toString(8)).toBe("700");
    expect(kvr.events.find((e) => e.event === "dir-created")).toMatchObject({ dir, mode: "0700" });
  }
  // A relative path, as a runbook gives it: created in the working directory.
  const rel = spawnKvr(["replica", "--dir", "./rel", "--port", "0"], {}, ["sh", "-c", `cd '${parent}' && exec "$0" "$@"`]);
  defer(() => rel.stop("SIGTERM", 3000));
  await rel.waitEvent((e) => e.event === "listening", 10_000);
  expect((statSync(join(parent, "rel")).mode & 0o777).toString(8)).toBe("700");
});

test("an existing --dir is used as it is: no event, its mode unchanged", async () => {
  const dir = temp("kvr-targetdir-");
  chmodSync(dir, 0o755);
  const kvr = await replicaUnder("022", dir);
  expect(kvr.events.some((e) => e.event === "dir-created")).toBe(false);
  expect((statSync(dir).mode & 0o777).toString(8)).toBe("755");
});

test("refused as before, exit 2 with one line, nothing created: a missing parent, a file, a path below a file, foreign files", async () => {
  const base = temp("kvr-targetdir-");
  const file = join(base, "a-file");
  writeFileSync(file, "x");
  const foreign = join(base, "foreign");
  mkdirSync(foreign);
  writeFileSync(join(foreign, "notes.txt"), "mine");
  const cases: Array<[string, string]> = [
    [join(base, "no", "such", "target"), `does not exist, nor does its parent ${join(base, "no", "such")}: kvr creates only the last component of --dir; create the parent first`],
    [file, "is not a directory"],
    [join(file, "below"), `its parent ${file} is not a directory`],
    [foreign, "holds notes.txt"],
  ];
  for (const [dir, msg] of cases) {
    const r = await runKvr(["replica", "--dir", dir, "--master", "127.0.0.1:1", "--port", "0"], { timeoutMs: 10_000 });
    expect({ dir, code: r.code }).toEqual({ dir, code: 2 });
    expect(r.stderr.trim().split("\n").length).toBe(1);
    expect(r.stderr).toContain(msg);
  }
  expect(readdirSync(base).sort()).toEqual(["a-file", "foreign"]);
  expect(readdirSync(foreign)).toEqual(["notes.txt"]);
});

const root = typeof process.getuid === "function" && process.getuid() === 0;
test.skipIf(root)("a parent this user cannot write to: exit 2 'cannot be created', nothing created", async () => {
  const base = temp("kvr-targetdir-");
  chmodSync(base, 0o500);
  defer(() => chmodSync(base, 0o700));
  const r = await runKvr(["replica", "--dir", join(base, "new"), "--master", "127.0.0.1:1", "--port", "0"], { timeoutMs: 10_000 });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("cannot be created");
  expect(readdirSync(base)).toEqual([]);
});
