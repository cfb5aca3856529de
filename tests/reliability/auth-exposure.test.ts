/**
 * Authentication and exposure. With a password set, every master and admin command except AUTH
 * answers -NOAUTH and has no effect — PING included, as on a real Kvrocks node (docs/protocol.md §1:
 * only AUTH and HELLO pass). Default bind 127.0.0.1; another address without a password warns.
 * Secrets (passed by environment) never show in logs, --json events, INFO, error replies, or the
 * command lines of kvr's processes and of the children a drill starts. Constant-time compare.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { passwordChecker } from "../../lib/ui/secrets.ts";
import { connect } from "../../lib/net/index.ts";
import { call, replyText } from "../../lib/resp/index.ts";
import { KVR_BIN, spawnKvr, tempDir } from "../helpers/kvr.ts";
import { cmdline, command, descendants, diffDir, generatedExpected, infoMap, startKvr, until, type Proc } from "./harness.ts";

const procs: Proc[] = [];
const cleanups: Array<() => void> = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop("SIGKILL")));
  for (const c of cleanups) c();
});
async function start(cmd: "master" | "replica", args: string[], env: Record<string, string> = {}): Promise<Proc> {
  const p = await startKvr(cmd, args, env);
  procs.push(p);
  return p;
}
function dir(): string {
  const d = tempDir("kvr-auth-");
  cleanups.push(d.cleanup);
  return d.path;
}

const MASTER_COMMANDS: string[][] = [
  ["PING"],
  ["PING", "hello"],
  ["_db_name"],
  ["replconf", "listening-port", "6667"],
  ["PSYNC", "101"],
  ["PSYNC", "a".repeat(40), "101"],
  ["_fetch_meta"],
  ["_fetch_file", "CURRENT"],
  ["INFO"],
  ["INFO", "replication"],
  ["KVR", "FAULT", "LIST"],
  ["KVR", "FAULT", "ADD", "stall"],
  ["KVR", "FAULT", "CLEAR"],
];
const ADMIN_COMMANDS: string[][] = [
  ["PING"],
  ["INFO"],
  ["INFO", "replication"],
  ["ROLE"],
  ["SLAVEOF", "127.0.0.1", "1"],
  ["REPLICAOF", "NO", "ONE"],
  ["CLUSTERX", "SETNODEID", "d".repeat(40)],
  ["CLUSTERX", "MYID"],
  ["CLUSTERX", "VERSION"],
  ["CLUSTERX", "SETNODES", `${"d".repeat(40)} 127.0.0.1 1 master - 0-16383`, "7"],
  ["CLUSTER", "NODES"],
  ["CLUSTER", "INFO"],
];

describe("every command needs AUTH when a password is set", () => {
  test(`kvr master: ${MASTER_COMMANDS.length} commands → -NOAUTH, none takes effect; after AUTH they run`, async () => {
    const m = await start("master", ["--generate", "1x1KiB"], { KVR_REQUIREPASS: "m-pass-1" });
    const c = await connect("127.0.0.1", m.port, { connectMs: 2000, readMs: 3000 });
    try {
      for (const args of MASTER_COMMANDS) {
        // Raw bytes: a NOAUTH line and nothing else (no size line, no file bytes, no stream).
        expect({ args, reply: replyText(await call(c, args)) }).toEqual({ args, reply: "-NOAUTH Authentication required." });
      }
      expect(c.pending).toBe(0);
      expect(replyText(await call(c, ["AUTH", "m-pass-1"]))).toBe("OK");
      // KVR FAULT ADD stall before AUTH did nothing.
      const info = await infoMap(m.port, "m-pass-1");
      expect(info.kvr_active_faults).toBe("0");
      expect(info.kvr_files_served).toBe("0");
      expect(replyText(await call(c, ["PING"]))).toBe("PONG");
    } finally {
      c.destroy();
    }
  });

  test(`kvr replica admin port: ${ADMIN_COMMANDS.length} commands → -NOAUTH, none takes effect; after AUTH they run`, async () => {
    const r = await start("replica", ["--dir", dir()], { KVR_REQUIREPASS: "a-pass-1" });
    const c = await connect("127.0.0.1", r.port, { connectMs: 2000, readMs: 3000 });
    try {
      for (const args of ADMIN_COMMANDS) {
        expect({ args, reply: replyText(await call(c, args)) }).toEqual({ args, reply: "-NOAUTH Authentication required." });
      }
      expect(replyText(await call(c, ["AUTH", "wrong"]))).toBe("-ERR Invalid password");
      expect(replyText(await call(c, ["PING"]))).toBe("-NOAUTH Authentication required.");
      expect(replyText(await call(c, ["AUTH", "a-pass-1"]))).toBe("OK");
      // Nothing changed: no node id, no topology, no master.
      expect(replyText(await call(c, ["CLUSTERX", "MYID"]))).toBe("");
      expect(replyText(await call(c, ["CLUSTERX", "VERSION"]))).toBe("-1");
      const info = replyText(await call(c, ["INFO", "replication"]));
      expect(info).toContain("role:master");
      expect(info).not.toContain("master_host");
    } finally {
      c.destroy();
    }
  });
});

describe("exposure", () => {
  test("default bind is 127.0.0.1 for master and replica (listening socket checked with ss)", async () => {
    const m = await start("master", ["--generate", "1x1KiB"]);
    const r = await start("replica", ["--dir", dir()]);
    for (const p of [m, r]) {
      expect(p.kvr.events.find((e) => e.event === "listening")?.host).toBe("127.0.0.1");
      const ss = Bun.spawnSync(["ss", "-ltnH", `( sport = :${p.port} )`]).stdout.toString().trim().split("\n");
      expect(ss.length).toBe(1);
      expect(ss[0]).toContain(`127.0.0.1:${p.port}`);
    }
  });

  test("binding 127.0.0.2 without a password warns (master and replica); with one it does not", async () => {
    const cases = [
      { cmd: "master" as const, args: ["--generate", "1x1KiB", "--bind", "127.0.0.2"], env: { KVR_REQUIREPASS: "x-pass" } },
      { cmd: "replica" as const, args: ["--dir", dir(), "--bind", "127.0.0.2"], env: { KVR_REQUIREPASS: "x-pass" } },
    ];
    for (const c of cases) {
      const open = await start(c.cmd, c.args);
      // stderr is a separate pipe from the --json events: give it a moment.
      await until(() => /warn.*127\.0\.0\.2.*without a password/.test(open.kvr.stderr()), 3000, "the warning");
      const closed = await start(c.cmd, c.args, c.env);
      await Bun.sleep(300);
      expect(closed.kvr.stderr()).not.toMatch(/without a password/);
      // It really listens there.
      const conn = await connect("127.0.0.2", open.port, { connectMs: 2000, readMs: 2000 });
      expect(replyText(await call(conn, ["PING"]))).toBe("PONG");
      conn.destroy();
    }
  });

  test("secrets passed by environment never show in logs, --json events, INFO, error replies or /proc/<pid>/cmdline", async () => {
    const MPW = "sEcReT-master-91c4";
    const APW = "sEcReT-admin-77ab";
    const WRONG = "sEcReT-wrong-0042";
    const spec = "4x64KiB";
    const m = await start("master", ["--generate", spec, "--log-level", "debug"], { KVR_REQUIREPASS: MPW });
    const d = dir();
    const r = await start("replica", ["--dir", d, "--master", `127.0.0.1:${m.port}`, "--log-level", "debug"], {
      KVR_MASTERAUTH: MPW,
      KVR_REQUIREPASS: APW,
    });
    await r.kvr.waitEvent((e) => e.event === "done", 10_000);
    expect(diffDir(d, generatedExpected(spec), ["kvr-stream.log"])).toEqual([]);
    // A replica with a wrong masterauth: its error says what to fix, not the password.
    const bad = await start("replica", ["--dir", dir(), "--master", `127.0.0.1:${m.port}`, "--log-level", "debug", "--max-retries", "0", "--once"], {
      KVR_MASTERAUTH: WRONG,
    });
    expect(await bad.kvr.exited).not.toBe(0);
    expect(bad.kvr.stderr()).toContain("KVR_MASTERAUTH");
    // Error replies to wrong passwords, INFO of both.
    const replies = [
      replyText(await command(m.port, ["AUTH", WRONG])),
      replyText(await command(r.port, ["AUTH", WRONG])),
      replyText(await command(m.port, ["INFO"], MPW)),
      replyText(await command(r.port, ["INFO"], APW)),
      replyText(await command(r.port, ["CLUSTER", "NODES"], APW)),
    ];
    const texts = [
      ...[m, r, bad].flatMap((p) => [JSON.stringify(p.kvr.events), p.kvr.stderr(), cmdline(p.pid)]),
      ...replies,
    ];
    for (const secret of [MPW, APW, WRONG]) {
      for (const t of texts) expect(t.includes(secret)).toBe(false);
    }
    expect(texts.join("").length).toBeGreaterThan(2000); // there was plenty to look at
  });

  test("kvr drill with KVR_AUTH: no child's /proc/<pid>/cmdline (sampled during the run) and no output holds the secret", async () => {
    const SECRET = "sEcReT-drill-5e1d";
    const drill = spawnKvr(["drill", "--files", "8", "--file-size", "1MiB", "--cut-at", "20%"], { KVR_AUTH: SECRET });
    // Every distinct command line of every descendant (a child shows its parent's until exec).
    const seen = new Map<string, string>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const pid of descendants(drill.proc.pid)) {
          const line = cmdline(pid);
          seen.set(`${pid} ${line}`, line);
        }
        await Bun.sleep(10);
      }
    })();
    const code = await drill.exited;
    sampling = false;
    await sampler;
    expect(code).toBe(0);
    const lines = [...seen.values()].filter((l) => l.includes(" master ") || l.includes(" replica "));
    // Masters A and B and the replica were seen running, none with the secret on its command line.
    expect(new Set(lines.filter((l) => l.includes(" master "))).size).toBeGreaterThanOrEqual(2);
    expect(lines.filter((l) => l.includes(" replica ")).length).toBeGreaterThanOrEqual(1);
    for (const l of seen.values()) expect(l.includes(SECRET)).toBe(false);
    expect(JSON.stringify(drill.events).includes(SECRET)).toBe(false);
    expect(drill.stderr().includes(SECRET)).toBe(false);
    console.log(`drill children seen: ${seen.size}; e.g. ${lines[0]?.replace(KVR_BIN, "kvr")}`);
  }, 60_000);
});

describe("constant-time password comparison", () => {
  test("master and admin compare with crypto.timingSafeEqual over equal-length digests, and are correct", () => {
    // One checker serves the master and the admin port.
    const text = readFileSync(resolve(import.meta.dir, "../../lib/ui/secrets.ts"), "utf8");
    expect(text).toMatch(/timingSafeEqual\(/);
    expect(text).toMatch(/createHash\("sha256"\)/);
    for (const src of ["../../lib/master/server.ts", "../../lib/replica/admin.ts"]) {
      expect(readFileSync(resolve(import.meta.dir, src), "utf8")).toContain("passwordChecker(");
    }
    const check = passwordChecker("correct horse");
    const cases: Array<[string, boolean]> = [
      ["correct horse", true],
      ["correct hors", false],
      ["correct horsee", false],
      ["Correct horse", false],
      ["", false],
      ["x".repeat(10_000), false],
      ["correct horse\0", false],
    ];
    for (const [attempt, want] of cases) {
      expect(check(attempt)).toBe(want);
    }
    expect(passwordChecker("pässwörd")("pässwörd")).toBe(true);
    expect(passwordChecker("")("")).toBe(true);
  });
});



