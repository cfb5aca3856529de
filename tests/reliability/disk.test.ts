/**
 * Disk faults (root: the test mounts small tmpfs file systems and unmounts them in finally).
 * A full file system: ENOSPC is a clear error, the partial `.tmp` is removed, completed files
 * stay, and the attempt after space is freed resumes. A target that is read-only, not a
 * directory, or under a missing parent: a clear error at start (exit 2).
 */
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runKvr, tempDir } from "../helpers/kvr.ts";
import { DirWatcher, diffDir, generatedExpected, startKvr, type Proc } from "./harness.ts";

const root = process.getuid?.() === 0;
const procs: Proc[] = [];
const cleanups: Array<() => void> = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop("SIGKILL")));
  for (const c of cleanups) c();
});

function sh(...argv: string[]): void {
  const r = Bun.spawnSync(argv, { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString()}`);
}

/** Mount a tmpfs of `size` at a fresh directory; returns it and its unmount. */
function tmpfs(size: string, ro = false): { path: string; umount: () => void } {
  const d = tempDir("kvr-tmpfs-");
  const mnt = join(d.path, "mnt");
  mkdirSync(mnt);
  sh("mount", "-t", "tmpfs", "-o", `size=${size}${ro ? ",ro" : ""}`, "tmpfs", mnt);
  return {
    path: mnt,
    umount: () => {
      Bun.spawnSync(["umount", "-l", mnt]);
      d.cleanup();
    },
  };
}

test.skipIf(!root)("8 MiB tmpfs, 12 MiB checkpoint: ENOSPC named clearly, .tmp removed, completed files kept; space freed → resumes and completes identical", async () => {
  const fs = tmpfs("8m");
  try {
    const spec = "6x2MiB";
    const m = await startKvr("master", ["--generate", spec]);
    procs.push(m);
    const exp = generatedExpected(spec);
    const watcher = new DirWatcher(fs.path, [exp], ["kvr-stream.log"]);
    const r = await startKvr("replica", ["--dir", fs.path, "--master", `127.0.0.1:${m.port}`, "--once", "--retry-delay", "300ms"]);
    procs.push(r);
    const fail = await r.kvr.waitEvent((e) => e.event === "retry", 15_000);
    expect(fail.code).toBe("ENOSPC");
    expect(String(fail.reason)).toMatch(/ENOSPC|no space/i);
    expect(String(fail.reason)).toMatch(/\d{6}\.sst/); // names the file being written
    // After the failed attempt: no partial file, the completed ones in place with full size.
    const after = readdirSync(fs.path);
    expect(after.filter((n) => n.endsWith(".tmp"))).toEqual([]);
    const done = after.filter((n) => /\.sst$/.test(n));
    expect(done.length).toBeGreaterThanOrEqual(2);
    for (const n of done) expect(statSync(join(fs.path, n)).size).toBe(2 * 1024 * 1024);
    // Free space: grow the file system; the next attempt skips what is there.
    sh("mount", "-o", "remount,size=64m", fs.path);
    expect(await r.kvr.exited).toBe(0);
    const skips = r.kvr.events.filter((e) => e.event === "skip").map((e) => Number(e.count));
    expect(Math.max(...skips)).toBeGreaterThanOrEqual(done.length);
    await watcher.stop();
    expect(watcher.violations).toEqual([]);
    expect(diffDir(fs.path, exp, ["kvr-stream.log"])).toEqual([]);
    console.log(`ENOSPC: "${fail.reason}"; ${done.length} complete files kept, next attempt skipped ${Math.max(...skips)}; ${watcher.samples} directory samples`);
  } finally {
    fs.umount();
  }
}, 40_000);

test.skipIf(!root)("a read-only file system (an existing --dir, or a new one below it), a file, a missing parent: clear error at start, exit 2, nothing created", async () => {
  const ro = tmpfs("1m", true);
  const d = tempDir("kvr-disk-");
  cleanups.push(d.cleanup);
  try {
    const file = join(d.path, "a-file");
    writeFileSync(file, "x");
    const missing = join(d.path, "no", "such", "parent", "target");
    const cases: Array<[string, RegExp]> = [
      [ro.path, /not writable/],
      [file, /not a directory/],
      [missing, /does not exist/],
      [join(file, "below-a-file"), /does not exist|not a directory/],
      [join(ro.path, "new"), /does not exist and cannot be created .*\(EROFS\)/],
    ];
    for (const [dir, msg] of cases) {
      const r = await runKvr(["replica", "--dir", dir, "--master", "127.0.0.1:1", "--port", "0"], { timeoutMs: 10_000 });
      expect({ dir, code: r.code }).toEqual({ dir, code: 2 });
      expect(r.stderr.trim().split("\n").length).toBe(1);
      expect(r.stderr).toMatch(msg);
    }
    expect(readdirSync(d.path)).toEqual(["a-file"]);
    expect(readdirSync(ro.path)).toEqual([]);
  } finally {
    ro.umount();
  }
});


