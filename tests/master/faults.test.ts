/**
 * Fault injection on the wire: every connection fault kind with every trigger, the server
 * faults (refuse, blackhole-accept), run-time KVR FAULT, and the fault events.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { connect, type Conn } from "../../lib/net/index.ts";
import { generatedContent, parseGenerateSpec } from "../../lib/master/generate.ts";
import { generatedSource } from "../../lib/master/source.ts";
import { cmd, open, send, startTestMaster, until, type TestMaster } from "./helpers.ts";

const SPEC = parseGenerateSpec("2x64KiB:seed=4");
const A = "000010.sst";
const B = "000011.sst";
const LINE = Buffer.from("65536\r\n");
/** What `_fetch_file A,B` sends without faults. */
const CLEAN = Buffer.concat([LINE, generatedContent(SPEC, A), LINE, generatedContent(SPEC, B)]);

const masters: TestMaster[] = [];
afterEach(async () => {
  await Promise.all(masters.splice(0).map((m) => m.close()));
});
async function master(fault: string[], over = {}): Promise<TestMaster> {
  const m = await startTestMaster({ source: generatedSource(SPEC), fault, ...over });
  masters.push(m);
  return m;
}

interface Observed {
  bytes: Buffer;
  end: string; // eof | RESET | READ_TIMEOUT | ...
  /** [offset after the chunk, ms since the request] for every chunk received. */
  marks: Array<[number, number]>;
  ms: number;
}

/** Send `_fetch_file A,B` and record everything until EOF, an error, or a 400 ms silence. */
async function fetchBoth(c: Conn): Promise<Observed> {
  const parts: Buffer[] = [];
  const marks: Array<[number, number]> = [];
  let n = 0;
  const t0 = performance.now();
  let end = "eof";
  try {
    // after-ms faults may already have ended the connection: the write itself can fail.
    await send(c, "_fetch_file", `${A},${B}`);
    for (;;) {
      const b = await c.readChunk();
      if (b === null) break;
      parts.push(b);
      n += b.length;
      marks.push([n, performance.now() - t0]);
    }
  } catch (e) {
    end = (e as { code: string }).code;
  }
  return { bytes: Buffer.concat(parts), end, marks, ms: performance.now() - t0 };
}

/** Time at which the stream first went past `offset` bytes. */
const timeAfter = (o: Observed, offset: number) => o.marks.find(([n]) => n > offset)?.[1] ?? Infinity;
/** Time at which `offset` bytes had arrived. */
const timeAt = (o: Observed, offset: number) => o.marks.find(([n]) => n >= offset)?.[1] ?? Infinity;

interface TriggerCase {
  name: string;
  trigger: string;
  /** Offset in CLEAN where the fault takes effect. */
  at: number;
  /** Wait before sending the request. */
  waitMs?: number;
  /** A second connection must be unaffected. */
  secondClean?: boolean;
}
const TRIGGERS: TriggerCase[] = [
  { name: "after-bytes", trigger: "after-bytes=1000", at: LINE.length + 1000 },
  { name: "after-files", trigger: "after-files=1", at: LINE.length + 65536 },
  { name: "on", trigger: "on=_fetch_file", at: 0 },
  { name: "after-ms", trigger: "after-ms=150", at: 0, waitMs: 250 },
  { name: "conns", trigger: "conns=1", at: 0, secondClean: true },
  { name: "once", trigger: "once", at: 0, secondClean: true },
];

/** Next file boundary at or after `at` (where an error line replaces a size line). */
const boundary = (at: number) => (at === 0 ? 0 : at <= LINE.length + 65536 ? LINE.length + 65536 : CLEAN.length);

type Check = (o: Observed, at: number, m: TestMaster) => void;
const KINDS: Array<{ kind: string; spec: string; check: Check }> = [
  {
    kind: "stall",
    spec: "stall",
    check(o, at, m) {
      expect(o.end).toBe("READ_TIMEOUT");
      expect(o.bytes.equals(CLEAN.subarray(0, at))).toBe(true);
      // The master keeps the socket open: no FIN, no RST.
      const live = m.ctx.faults.liveLinks();
      expect(live.length).toBeGreaterThan(0);
      for (const l of live) expect(l.dead || l.conn.isClosed).toBe(false);
    },
  },
  {
    kind: "close",
    spec: "close",
    check(o, at) {
      // FIN: an orderly end (EOF, or CLOSED when it came before our request was written), never RESET.
      expect(["eof", "CLOSED"]).toContain(o.end);
      expect(o.bytes.equals(CLEAN.subarray(0, at))).toBe(true);
    },
  },
  {
    kind: "reset",
    spec: "reset",
    check(o, at) {
      expect(o.end).toBe("RESET");
      expect(o.bytes.length).toBeLessThanOrEqual(at);
      expect(o.bytes.equals(CLEAN.subarray(0, o.bytes.length))).toBe(true);
    },
  },
  {
    kind: "delay",
    spec: "delay:ms=300",
    check(o, at) {
      expect(o.end).toBe("eof");
      expect(o.bytes.equals(CLEAN)).toBe(true);
      if (at > 0) expect(timeAt(o, at)).toBeLessThan(200);
      expect(timeAfter(o, at) - (at > 0 ? timeAt(o, at) : 0)).toBeGreaterThanOrEqual(250);
    },
  },
  {
    kind: "bandwidth",
    spec: "bandwidth:rate=256KiB",
    check(o, at) {
      expect(o.end).toBe("eof");
      expect(o.bytes.equals(CLEAN)).toBe(true);
      if (at > 0) expect(timeAt(o, at)).toBeLessThan(150);
      const expected = ((CLEAN.length - at) / (256 * 1024)) * 1000;
      expect(o.ms - (at > 0 ? timeAt(o, at) : 0)).toBeGreaterThan(expected * 0.7);
    },
  },
  {
    kind: "trickle",
    spec: "trickle:bytes=16KiB,every=60ms",
    check(o, at) {
      expect(o.end).toBe("eof");
      expect(o.bytes.equals(CLEAN)).toBe(true);
      const pieces = Math.ceil((CLEAN.length - at) / 16384);
      expect(o.ms - (at > 0 ? timeAt(o, at) : 0)).toBeGreaterThan((pieces - 2) * 60 * 0.8);
      // After the fault point no single read brings more than one 16 KiB piece... plus what was already in flight.
      let prev = 0;
      for (const [n, t] of o.marks) {
        if (prev >= at && t > (at > 0 ? timeAt(o, at) : 0) + 30) expect(n - prev).toBeLessThanOrEqual(16384);
        prev = n;
      }
    },
  },
  {
    kind: "error",
    spec: "error:cmd=_fetch_file,msg=LOADING kvrocks is restoring the db from backup",
    check(o, at) {
      expect(o.end).toBe("eof");
      const b = boundary(at);
      expect(o.bytes.subarray(0, b).equals(CLEAN.subarray(0, b))).toBe(true);
      expect(o.bytes.subarray(b).toString()).toBe("-LOADING kvrocks is restoring the db from backup\r\n");
    },
  },
];

describe("connection faults × triggers, observed on the wire", () => {
  for (const k of KINDS) {
    test(`${k.kind} × ${TRIGGERS.map((t) => t.name).join(", ")}`, async () => {
      await Promise.all(
        TRIGGERS.map(async (t) => {
          const spec = `${k.spec.includes(":") ? k.spec + "," : k.spec + ":"}${t.trigger}`;
          const m = await master([spec]);
          const c = await open(m.port, 400);
          if (t.waitMs) await Bun.sleep(t.waitMs);
          const o = await fetchBoth(c);
          try {
            k.check(o, t.at, m);
          } catch (e) {
            throw new Error(`${spec}: ${(e as Error).message}\nend=${o.end} bytes=${o.bytes.length} ms=${o.ms.toFixed(0)}`);
          }
          const ev = m.events.find((e) => e.event === "fault");
          expect(ev).toMatchObject({ kind: k.kind, conn: 1 });
          if (t.name === "after-bytes") expect(ev!.offset).toBe(1000);
          if (t.name === "after-files") expect(ev!.offset).toBe(65536);
          expect(String(ev!.trigger)).toBe(t.name === "conns" || t.name === "once" ? "immediate" : t.trigger);
          c.destroy();
          if (t.secondClean) {
            const c2 = await open(m.port, 400);
            const o2 = await fetchBoth(c2);
            expect(o2.end).toBe("eof");
            expect(o2.bytes.equals(CLEAN)).toBe(true);
            expect(o2.ms).toBeLessThan(250);
            c2.destroy();
            expect(m.events.filter((e) => e.event === "fault").length).toBe(1);
            // Used up: it leaves the list (and INFO's count) though connection 1 stays hit.
            const ctl = await open(m.port);
            expect(await cmd(ctl, "KVR", "FAULT", "LIST")).toBe("");
            expect(await cmd(ctl, "INFO")).toContain("kvr_active_faults:0");
            ctl.destroy();
          }
        }),
      );
    });
  }
});

describe("error fault on commands", () => {
  test("error:cmd=psync answers PSYNC with the given line; other commands run", async () => {
    const m = await master(["error:cmd=psync,msg=LOADING kvrocks is restoring the db from backup"]);
    const c = await open(m.port);
    expect(await cmd(c, "PING")).toBe("PONG");
    expect(await cmd(c, "PSYNC", "101")).toBe("-LOADING kvrocks is restoring the db from backup");
    expect(await cmd(c, "replconf", "listening-port", "1")).toBe("OK");
  });
  test("error without cmd= and on=_db_name: every command from _db_name on gets the error", async () => {
    const m = await master(["error:on=_db_name,msg=ERR nope, really"]);
    const c = await open(m.port);
    expect(await cmd(c, "PING")).toBe("PONG");
    await send(c, "_db_name");
    expect(await c.readLine()).toBe("-ERR nope, really");
    expect(await cmd(c, "PING")).toBe("-ERR nope, really");
  });
});

describe("server faults", () => {
  const SERVER_TRIGGERS: Array<{ name: string; trigger: string; viaFetch: boolean; waitMs?: number }> = [
    { name: "immediate", trigger: "", viaFetch: false },
    { name: "after-bytes", trigger: "after-bytes=1000", viaFetch: true },
    { name: "after-files", trigger: "after-files=1", viaFetch: true },
    { name: "on", trigger: "on=_fetch_file", viaFetch: true },
    { name: "after-ms", trigger: "after-ms=150", viaFetch: false, waitMs: 250 },
    { name: "once", trigger: "once", viaFetch: false },
  ];
  for (const kind of ["refuse", "blackhole-accept"]) {
    test(`${kind} × ${SERVER_TRIGGERS.map((t) => t.name).join(", ")}; live connections keep working; clear restores`, async () => {
      await Promise.all(
        SERVER_TRIGGERS.map(async (t) => {
          const spec = t.trigger ? `${kind}:${t.trigger}` : kind;
          const m = await master(t.trigger === "" || t.trigger === "once" ? [] : [spec]);
          const live = await open(m.port, 1000);
          if (t.trigger === "" || t.trigger === "once") expect(await cmd(live, "KVR", "FAULT", "ADD", spec)).toBe("OK");
          if (t.viaFetch) {
            const other = await open(m.port, 1000);
            const o = await fetchBoth(other);
            expect(o.bytes.equals(CLEAN)).toBe(true);
          }
          if (t.waitMs) await Bun.sleep(t.waitMs);
          await until(() => m.events.some((e) => e.event === "fault" && e.kind === kind), 2000, `${spec} to fire`);
          await Bun.sleep(30);
          const attempt = connect("127.0.0.1", m.port, { connectMs: 300 });
          await expect(attempt).rejects.toMatchObject({ code: kind === "refuse" ? "REFUSED" : "CONNECT_TIMEOUT" });
          expect(await cmd(live, "PING")).toBe("PONG");
          expect(await cmd(live, "KVR", "FAULT", "CLEAR")).toBe("OK");
          const back = await open(m.port);
          expect(await cmd(back, "PING")).toBe("PONG");
          back.destroy();
          live.destroy();
        }),
      );
    });
  }
});

describe("run-time control", () => {
  test("KVR FAULT ADD stall mid-transfer stops a live stream; CLEAR resumes it and every byte arrives", async () => {
    const spec = parseGenerateSpec("1x4MiB:seed=2");
    const m = await startTestMaster({ source: generatedSource(spec), rate: 4 * 1024 * 1024 });
    masters.push(m);
    const ctl = await open(m.port);
    const c = await open(m.port, 5000);
    await send(c, "_fetch_file", A);
    expect(await c.readLine()).toBe(String(4 * 1024 * 1024));
    const got: Buffer[] = [];
    let n = 0;
    const done = c.readExactly(4 * 1024 * 1024, (b) => {
      got.push(b);
      n += b.length;
    });
    await until(() => n > 512 * 1024, 3000, "bytes to flow");
    expect(await cmd(ctl, "KVR", "FAULT", "ADD", "stall")).toBe("OK");
    expect(await cmd(ctl, "kvr", "fault", "list")).toBe("stall");
    expect(await cmd(ctl, "INFO")).toContain("kvr_active_faults:1");
    await Bun.sleep(300);
    const frozen = n;
    await Bun.sleep(400);
    expect(n).toBe(frozen);
    expect(n).toBeLessThan(4 * 1024 * 1024);
    expect(await cmd(ctl, "KVR", "FAULT", "CLEAR")).toBe("OK");
    expect(await cmd(ctl, "KVR", "FAULT", "LIST")).toBe("");
    await done;
    expect(Buffer.concat(got).equals(generatedContent(spec, A))).toBe(true);
    const ev = m.events.find((e) => e.event === "fault")!;
    expect(ev).toMatchObject({ kind: "stall", trigger: "immediate" });
    expect(ev.offset as number).toBeGreaterThan(0);
  });

  test("KVR FAULT ADD rejects a bad spec with what is accepted; KVR needs AUTH when a password is set", async () => {
    const m = await master([], { password: "pw" });
    const c = await open(m.port);
    expect(await cmd(c, "KVR", "FAULT", "ADD", "stall")).toBe("-NOAUTH Authentication required.");
    expect(await cmd(c, "AUTH", "pw")).toBe("OK");
    expect(await cmd(c, "KVR", "FAULT", "ADD", "explode")).toMatch(/^-ERR invalid fault spec: .*unknown fault kind 'explode' \(kinds: stall, close, reset/);
    expect(await cmd(c, "KVR", "FAULT", "ADD", "delay:sec=1")).toMatch(/delay accepts: ms=/);
    expect(await cmd(c, "KVR", "FAULT", "ADD", "delay:ms=50,on=ping")).toBe("OK");
    expect(await cmd(c, "KVR", "FAULT", "ADD", "error:cmd=psync,msg=LOADING", "kvrocks", "is", "restoring")).toBe("OK");
    expect(await cmd(c, "KVR", "FAULT", "LIST")).toBe("delay:ms=50,on=ping\nerror:cmd=psync,msg=LOADING kvrocks is restoring");
    expect(await cmd(c, "KVR", "FAULT", "NOPE")).toMatch(/^-ERR usage: KVR FAULT ADD/);
  });
});
