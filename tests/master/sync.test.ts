/** kvr master: the real replica's full-sync sequence, byte for byte, generated and --dir. */
import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generatedContent, generatedFiles, parseGenerateSpec } from "../../lib/master/generate.ts";
import { dirSource, generatedSource } from "../../lib/master/source.ts";
import { tempDir } from "../helpers/kvr.ts";
import { cmd, fullSync, open, send, sha, startTestMaster, type TestMaster } from "./helpers.ts";
import { FIXTURE } from "../helpers/fixture.ts";

let master: TestMaster | null = null;
const cleanups: Array<() => void> = [];
afterEach(async () => {
  await master?.close();
  master = null;
  for (const c of cleanups.splice(0)) c();
});

describe("full sync", () => {
  test("generated checkpoint, 24 files over 4 connections with AUTH: every byte equals the generator's", async () => {
    const spec = parseGenerateSpec("24x96KiB:seed=9", 100);
    master = await startTestMaster({ source: generatedSource(spec), password: "s3cret" });
    const { files, data } = await fullSync(master.port, { password: "s3cret" });
    expect(files).toEqual(generatedFiles(spec).map((f) => f.name));
    expect(files.length).toBe(27);
    for (const f of generatedFiles(spec)) {
      expect(data.get(f.name)!.length).toBe(f.size);
      expect(sha(data.get(f.name)!)).toBe(sha(generatedContent(spec, f.name)));
    }
    expect(master.ctx.stats.filesServed).toBe(27);
    expect(master.events.filter((e) => e.event === "file-served").length).toBe(27);
  });

  test("--dir with the real Kvrocks checkpoint: listed in directory order, bytes equal the files", async () => {
    master = await startTestMaster({ source: dirSource(FIXTURE) });
    const { files, data } = await fullSync(master.port);
    expect(files).toEqual(readdirSync(FIXTURE, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name));
    expect(files.sort()).toEqual(["000014.log", "000016.sst", "000018.sst", "CURRENT", "MANIFEST-000011", "OPTIONS-000013"]);
    for (const f of files) expect(sha(data.get(f)!)).toBe(sha(readFileSync(join(FIXTURE, f))));
  });

  test("--dir with more than 20 files over 4 connections, one file larger than a chunk", async () => {
    const d = tempDir("kvr-master-dir-");
    cleanups.push(d.cleanup);
    for (let i = 0; i < 22; i++) writeFileSync(join(d.path, `${String(i + 10).padStart(6, "0")}.sst`), Buffer.alloc(1000 + i * 777, i));
    writeFileSync(join(d.path, "big.sst"), Buffer.from(Array.from({ length: 700_000 }, (_, i) => (i * 31) & 255)));
    writeFileSync(join(d.path, "empty"), "");
    master = await startTestMaster({ source: dirSource(d.path) });
    const { files, data } = await fullSync(master.port);
    expect(files.length).toBe(24);
    for (const f of files) expect(sha(data.get(f)!)).toBe(sha(readFileSync(join(d.path, f))));
  });

  test("a file's chunks are read into the same memory again only when the consumer says nothing refers to it", async () => {
    const d = tempDir("kvr-master-reuse-");
    cleanups.push(d.cleanup);
    const content = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) & 255));
    writeFileSync(join(d.path, "000010.sst"), content);
    const spec = parseGenerateSpec("1x300000:seed=3");
    for (const [src, name, want] of [
      [dirSource(d.path), "000010.sst", content],
      [generatedSource(spec), "000010.sst", generatedContent(spec, "000010.sst")],
    ] as const) {
      for (const reuse of [true, false]) {
        const file = await src.open(name);
        const memory = new Set<ArrayBufferLike>();
        const copies: Buffer[] = [];
        let asked = 0;
        for await (const c of file.chunks(65536, () => (asked++, reuse))) {
          memory.add(c.buffer);
          copies.push(Buffer.from(c));
        }
        await file.close();
        expect(Buffer.concat(copies).equals(want)).toBe(true);
        expect(copies.length).toBe(5);
        expect(asked).toBe(4);
        expect(memory.size).toBe(reuse ? 1 : 5);
      }
    }
  });

  test("the generator is deterministic and the seed changes the bytes", () => {
    const a = generatedContent("2x100000:seed=5", "000011.sst");
    expect(a.length).toBe(100000);
    expect(sha(a)).toBe(sha(generatedContent("2x100000:seed=5", "000011.sst")));
    expect(sha(a)).not.toBe(sha(generatedContent("2x100000:seed=6", "000011.sst")));
    expect(sha(a)).not.toBe(sha(generatedContent("2x100000:seed=5", "000010.sst")));
    expect(generatedContent("2x1KiB", "CURRENT").toString()).toBe("MANIFEST-000005\n");
    expect(generatedFiles("3x1KiB").map((f) => f.name)).toEqual(["000010.sst", "000011.sst", "000012.sst", "CURRENT", "MANIFEST-000005", "OPTIONS-000007"]);
  });
});

describe("replication commands", () => {
  test("PSYNC accepts only seq+1 (old and new form) and then sends ping heartbeats", async () => {
    master = await startTestMaster({ seq: 100, heartbeatMs: 100 });
    const c = await open(master.port);
    expect(await cmd(c, "PSYNC", "1")).toBe("-ERR sequence out of range, please use fullsync");
    expect(await cmd(c, "psync", "100")).toBe("-ERR sequence out of range, please use fullsync");
    expect(await cmd(c, "PSYNC", "102")).toBe("-ERR sequence out of range, please use fullsync");
    expect(await cmd(c, "PSYNC", "x")).toBe("-ERR value is not an unsigned long long or out of range");
    expect(await cmd(c, "PSYNC", "short-id", "101")).toBe("-ERR Wrong replication id length");
    expect(await cmd(c, "INFO")).toContain("connected_slaves:0");
    expect(await cmd(c, "PSYNC", "a".repeat(40), "101")).toBe("OK");
    const t0 = performance.now();
    expect((await c.readBytes(10)).toString()).toBe("$4\r\nping\r\n");
    expect((await c.readBytes(10)).toString()).toBe("$4\r\nping\r\n");
    expect(performance.now() - t0).toBeGreaterThan(150);
    const info = await cmd(await open(master.port), "info", "replication");
    expect(info).toContain("connected_slaves:1");
    expect(info).toMatch(/slave0:ip=127\.0\.0\.1,port=0,offset=100,lag=0/);
    expect(info).toContain("master_repl_offset:100");
    c.destroy();
  });

  test("--psync refuse: every PSYNC is refused as out of range, even the next sequence (psync-refused events); a full sync still works", async () => {
    master = await startTestMaster({ seq: 100, psync: "refuse" });
    const c = await open(master.port);
    expect(await cmd(c, "PSYNC", "101")).toBe("-ERR sequence out of range, please use fullsync");
    expect(await cmd(c, "PSYNC", "a".repeat(40), "101")).toBe("-ERR sequence out of range, please use fullsync");
    // Malformed arguments are still reported as such.
    expect(await cmd(c, "PSYNC", "x")).toBe("-ERR value is not an unsigned long long or out of range");
    // `from` is a number, as in the psync event.
    expect(master.events.filter((e) => e.event === "psync-refused")).toMatchObject([
      { from: 101, reason: "--psync refuse" },
      { from: 101, reason: "--psync refuse" },
    ]);
    expect(master.events.some((e) => e.event === "psync")).toBe(false);
    expect((await fullSync(master.port)).files.length).toBe(7);
    c.destroy();
  });

  test("events for the drill: every connection, every AUTH (ok or refused, with why) and every NOAUTH refusal; psync names its sequence", async () => {
    master = await startTestMaster({ seq: 100, password: "pw" });
    const c = await open(master.port);
    await send(c, "_db_name");
    expect(await c.readLine()).toBe("-NOAUTH Authentication required.");
    expect(await cmd(c, "AUTH", "nope")).toBe("-ERR Invalid password");
    expect(await cmd(c, "AUTH", "pw")).toBe("OK");
    expect(await cmd(c, "PSYNC", "101")).toBe("OK");
    const peer = `127.0.0.1:${c.localPort}`;
    const mine = (type: string) => master!.events.filter((e) => e.event === type && e.peer === peer);
    expect(mine("connection")).toMatchObject([{ conn: 1 }]);
    expect(mine("noauth")).toMatchObject([{ conn: 1, command: "_db_name" }]);
    expect(mine("auth")).toMatchObject([{ ok: false, reason: "Invalid password" }, { ok: true }]);
    expect(mine("psync")).toMatchObject([{ seq: 100, from: 101 }]);
    c.destroy();
    const other = await startTestMaster();
    cleanups.push(() => void other.close());
    const d = await open(other.port);
    expect(await cmd(d, "AUTH", "pw")).toBe("-ERR Client sent AUTH, but no password is set");
    expect(other.events.find((e) => e.event === "auth")).toMatchObject({ ok: false, reason: "Client sent AUTH, but no password is set" });
    d.destroy();
  });

  test("_db_name, replconf options, PING, QUIT, unknown command and arity, in any case and inline", async () => {
    master = await startTestMaster({ dbName: "my.db" });
    const c = await open(master.port);
    await send(c, "_DB_NAME");
    expect(await c.readLine()).toBe("my.db");
    expect(await cmd(c, "REPLCONF", "listening-port", "6667", "ip-address", "10.0.0.1")).toBe("OK");
    expect(await cmd(c, "replconf", "capa", "eof")).toBe("-ERR unknown option");
    expect(await cmd(c, "replconf", "listening-port", "x")).toBe("-ERR listening-port should be number or out of range");
    expect(await cmd(c, "replconf", "listening-port")).toBe("-ERR wrong number of arguments");
    expect(await cmd(c, "FOO", "a", "b")).toBe("-ERR unknown command `FOO`, with args beginning with: `a`, `b`");
    expect(await cmd(c, "_fetch_file")).toBe("-ERR wrong number of arguments");
    expect(await cmd(c, "Ping")).toBe("PONG");
    await c.write("ping hello\r\n");
    expect(await c.readLine()).toBe("$5");
    expect(await c.readLine()).toBe("hello");
    await c.write("PING\r\n");
    expect(await c.readLine()).toBe("+PONG");
    expect(await cmd(c, "QUIT")).toBe("OK");
    expect(await c.readChunk()).toBeNull();
  });

  test("INFO reports checkpoint size, bytes sent, files served", async () => {
    master = await startTestMaster();
    await fullSync(master.port);
    const c = await open(master.port);
    // Bare INFO is every section, as on Kvrocks; INFO replication is that section alone.
    const info = await cmd(c, "INFO");
    expect(info.split("\r\n\r\n").map((s) => s.split("\r\n")[0])).toEqual(["# Server", "# Stats", "# Replication", "# Cluster"]);
    expect((await cmd(c, "INFO", "replication")).split("\r\n")[0]).toBe("# Replication");
    c.destroy();
    expect(info).toContain("role:master");
    // The full sync above: one PSYNC refused (out of range), one _fetch_meta.
    expect(info).toContain("\r\nsync_full:1\r\nsync_partial_ok:0\r\nsync_partial_err:1\r\n");
    expect(info).toContain("kvr_checkpoint_files:7");
    const total = master.ctx.checkpointBytes;
    expect(info).toContain(`kvr_checkpoint_bytes:${total}`);
    expect(info).toContain(`kvr_bytes_sent:${total}`);
    expect(info).toContain("kvr_files_served:7");
    expect(info).toContain("kvr_fetch_connections:0");
    expect(info).toContain("kvr_active_faults:0");
  });
});
