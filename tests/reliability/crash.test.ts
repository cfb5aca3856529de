/**
 * Crash consistency of the target directory, attacked with strace: a SIGKILL injected at every
 * unlink while a full sync clears an old checkpoint, and the order of renames and directory
 * fsyncs a full sync and the stream log perform. The promise: a CURRENT in --dir always names a
 * complete checkpoint, whatever moment the process died at.
 */
import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { hasCompleteCheckpoint } from "../../lib/replica/files.ts";
import { spawnKvr, tempDir } from "../helpers/kvr.ts";
import { straced, straceLines } from "../helpers/strace.ts";
import { diffDir, generatedExpected, startKvr, type ExpectedFile, type Proc } from "./harness.ts";

const procs: Proc[] = [];
const cleanups: Array<() => void> = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop("SIGKILL")));
  for (const c of cleanups) c();
});
function temp(): string {
  const d = tempDir("kvr-crash-");
  cleanups.push(d.cleanup);
  return d.path;
}

/** A master serving a small checkpoint whose names differ from the generated ones. */
async function otherMaster(): Promise<Proc> {
  const src = temp();
  writeFileSync(join(src, "900001.sst"), Buffer.alloc(3000, 1));
  writeFileSync(join(src, "900002.sst"), Buffer.alloc(3000, 2));
  writeFileSync(join(src, "MANIFEST-900000"), Buffer.alloc(300, 3));
  writeFileSync(join(src, "CURRENT"), "MANIFEST-900000\n");
  const m = await startKvr("master", ["--dir", src, "--seq", "100"]);
  procs.push(m);
  return m;
}

function seed(dir: string, files: ExpectedFile[]): void {
  for (const f of files) writeFileSync(join(dir, f.name), f.data);
}

test("SIGKILL at each unlink while a full sync clears the old checkpoint: a CURRENT left behind always names a complete checkpoint", async () => {
  // The old checkpoint: 12 SSTs, MANIFEST, OPTIONS, CURRENT. The new master lists none of them,
  // so a full sync deletes all 15: a crash at the deletion of each one in turn. (strace counts
  // calls per thread and Bun unlinks on a thread pool, so the deletion is picked by path.)
  const old = generatedExpected("12x4KiB:seed=5");
  const m = await otherMaster();
  const outcomes: string[] = [];
  for (const victim of old.map((f) => f.name)) {
    const dir = temp();
    seed(dir, old);
    const r = spawnKvr(
      ["replica", "--dir", dir, "--master", `127.0.0.1:${m.port}`, "--once", "--port", "0"],
      {},
      straced(["-P", join(dir, victim), "-e", "trace=unlink", "-e", "inject=unlink:signal=SIGKILL"]),
    );
    const code = await Promise.race([r.exited, Bun.sleep(15_000).then(() => "timeout")]);
    if (code === "timeout") await r.stop("SIGKILL");
    expect({ victim, killed: r.proc.signalCode }).toEqual({ victim, killed: "SIGKILL" });
    const complete = await hasCompleteCheckpoint(dir);
    // A complete-looking checkpoint must be the old one, whole (the new one never finished).
    if (complete) expect({ victim, missing: diffDir(dir, old) }).toEqual({ victim, missing: [] });
    outcomes.push(`${victim}: ${complete ? "old checkpoint whole" : "no CURRENT"}`);
  }
  console.log(`SIGKILL at the unlink of each file: ${outcomes.join(", ")}`);
  // CURRENT is the first file removed: a crash at any other deletion leaves no CURRENT.
  expect(outcomes.filter((o) => o.endsWith("whole"))).toEqual(["CURRENT: old checkpoint whole"]);
}, 120_000);

/** strace -f lines with `<unfinished ...>` / `<... resumed>` halves joined per pid. */
function joinResumed(lines: string[]): string[] {
  const open = new Map<string, string>();
  const out: string[] = [];
  for (const l of lines) {
    const m = /^(\d+)\s+(.*)$/.exec(l);
    if (!m) continue;
    const [, pid, rest] = m;
    if (rest.endsWith("<unfinished ...>")) open.set(pid, rest.slice(0, -"<unfinished ...>".length).trimEnd());
    else if (rest.startsWith("<... ")) {
      out.push(`${open.get(pid) ?? ""}${rest.replace(/^<\.\.\. \w+ resumed>/, "")}`);
      open.delete(pid);
    } else out.push(rest);
  }
  return out;
}

test("a full sync renames CURRENT only after a directory fsync that follows every other rename; creating kvr-stream.log is followed by a directory fsync", async () => {
  const m = await startKvr("master", ["--generate", "6x4KiB", "--write-rate", "50"]);
  procs.push(m);
  const dir = temp();
  const log = join(temp(), "strace.log");
  const r = spawnKvr(
    ["replica", "--dir", dir, "--master", `127.0.0.1:${m.port}`, "--port", "0"],
    {},
    straced(["-y", "-e", "trace=rename,fsync,openat"], log),
  );
  try {
    await r.waitEvent((e) => e.event === "stream", 15_000);
    // One batch or more logged, then stop.
    await Bun.sleep(500);
  } finally {
    await r.stop("SIGTERM");
  }
  const calls = joinResumed(straceLines(log)).filter((l) => l.includes(dir));
  const isDirFsync = (l: string) => l.startsWith(`fsync(`) && l.includes(`<${dir}>)`) && /= 0$/.test(l);
  const renames = calls.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith("rename("));
  const current = renames.find(([l]) => l.includes(`"${join(dir, "CURRENT")}"`));
  expect(current).toBeDefined();
  const lastOther = Math.max(...renames.filter(([l]) => !l.includes(`"${join(dir, "CURRENT")}"`)).map(([, i]) => i));
  expect(lastOther).toBeLessThan(current![1]);
  // A directory fsync completed between the last other rename and the rename of CURRENT …
  expect(calls.slice(lastOther + 1, current![1]).some(isDirFsync)).toBe(true);
  // … and another after it.
  expect(calls.slice(current![1] + 1).some(isDirFsync)).toBe(true);
  // kvr-stream.log is created (O_CREAT), then the directory is fsynced.
  const created = calls.findIndex((l) => l.startsWith("openat(") && l.includes(`"${join(dir, "kvr-stream.log")}"`) && l.includes("O_CREAT"));
  expect(created).toBeGreaterThan(current![1]);
  expect(calls.slice(created + 1).some(isDirFsync)).toBe(true);
}, 40_000);
