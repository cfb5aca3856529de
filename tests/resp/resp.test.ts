import { afterEach, describe, expect, test } from "bun:test";
import Redis from "ioredis";
import fc from "fast-check";
import { listen, type Server } from "../../lib/net/index.ts";
import { array, bulk, encodeCommand, error, integer, simple, OK } from "../../lib/resp/encoder.ts";
import { MAX_UNAUTHENTICATED_BYTES, RespDecoder, RespError, SimpleString, type RespValue } from "../../lib/resp/decoder.ts";
import { commandRefusal, requestDecoder } from "../../lib/resp/server.ts";

/** Decode every complete value in `bytes`, feeding it in the given pieces. */
function decodeAll(pieces: Uint8Array[], limits = {}): RespValue[] {
  const d = new RespDecoder(limits);
  const out: RespValue[] = [];
  for (const p of pieces) {
    let rest = Buffer.from(p);
    while (rest.length) {
      const r = d.feed(rest);
      if (r.done) out.push(r.value!);
      rest = rest.subarray(r.used);
    }
  }
  return out;
}

const sample = Buffer.concat([
  simple("OK"),
  error("ERR unknown command `foo`, with args beginning with: `a`"),
  integer(-42),
  bulk("hello\r\nworld"),
  bulk(null),
  bulk(""),
  array([bulk("a"), integer(1), array([simple("nested"), bulk(null)]), array([])]),
  array(null),
  encodeCommand(["CLUSTERX", "SETNODES", "a b c\nd e f", 7]),
]);

const expected: RespValue[] = [
  new SimpleString("OK"),
  new RespError("ERR unknown command `foo`, with args beginning with: `a`"),
  -42,
  Buffer.from("hello\r\nworld"),
  null,
  Buffer.alloc(0),
  [Buffer.from("a"), 1, [new SimpleString("nested"), null], []],
  null,
  [Buffer.from("CLUSTERX"), Buffer.from("SETNODES"), Buffer.from("a b c\nd e f"), Buffer.from("7")],
];

describe("decoder", () => {
  test("round trip of every reply kind", () => {
    expect(decodeAll([sample])).toEqual(expected);
  });

  test("the same stream split at every possible byte boundary decodes identically", () => {
    for (let i = 1; i < sample.length; i++) {
      expect(decodeAll([sample.subarray(0, i), sample.subarray(i)])).toEqual(expected);
    }
  });

  test("fed one byte at a time decodes identically", () => {
    const pieces = [...sample].map((b) => Uint8Array.of(b));
    expect(decodeAll(pieces)).toEqual(expected);
  });

  test("stops right after one value, leaving raw bytes for another mode", () => {
    const d = new RespDecoder();
    const buf = Buffer.concat([simple("OK"), Buffer.from("change.me.db\r\n")]);
    const r = d.feed(buf);
    expect(r.done).toBe(true);
    expect(buf.subarray(r.used).toString()).toBe("change.me.db\r\n");
  });

  test("inline commands (telnet style) on the server side, with quotes", () => {
    const d = new RespDecoder({ inline: true });
    const r = d.feed(Buffer.from('set "a b" \'c\'  d\r\n'));
    expect(r.value).toEqual([Buffer.from("set"), Buffer.from("a b"), Buffer.from("c"), Buffer.from("d")]);
    expect(decodeAll([Buffer.from("\r\nPING\n")], { inline: true })).toEqual([[Buffer.from("PING")]]);
  });

  test("maxTotal caps one request at its headers (framing counted), resets per request, and may change between requests", () => {
    let authed = false;
    const d = new RespDecoder({ inline: true, maxTotal: () => (authed ? 100 : 40) });
    // 4 + 10 + 8 + 10 bytes = 32 ≤ 40: fine, twice in a row (the count starts again).
    const small = encodeCommand(["AUTH", "pw"]);
    expect(d.feed(small).value).toEqual([Buffer.from("AUTH"), Buffer.from("pw")]);
    expect(d.feed(small).value).toEqual([Buffer.from("AUTH"), Buffer.from("pw")]);
    // A bulk header that would pass the cap is refused before any of its bytes arrive.
    expect(() => new RespDecoder({ maxTotal: 40 }).feed(Buffer.from("*2\r\n$4\r\nAUTH\r\n$30\r\n"))).toThrow("Protocol error: request larger than 40 bytes");
    authed = true;
    expect(d.feed(encodeCommand(["PING", "x".repeat(60)])).done).toBe(true);
    expect(() => d.feed(encodeCommand(["PING", "x".repeat(90)]))).toThrow("Protocol error: request larger than 100 bytes");
  });

  test("a server's checks: unknown command, then arity, then AUTH, as Kvrocks orders them; its decoder caps a request at 2 args' worth, 64 KiB before AUTH", () => {
    const arity = { ping: -1, auth: 2, quit: 1 };
    expect(commandRefusal(arity, ["FOO", "a", "b"], false)).toBe("ERR unknown command `FOO`, with args beginning with: `a`, `b`");
    expect(commandRefusal(arity, ["AUTH"], false)).toBe("ERR wrong number of arguments");
    expect(commandRefusal(arity, ["PING"], false)).toBe("NOAUTH Authentication required.");
    expect([commandRefusal(arity, ["auth", "pw"], false), commandRefusal(arity, ["QUIT"], false), commandRefusal(arity, ["Ping", "x"], true)]).toEqual([null, null, null]);
    // [min, max]: the upper bound is the command's own check, after AUTH (PING a b → NOAUTH, then wrong number).
    const ranged = { ping: [1, 2] as const, auth: 2 };
    expect([commandRefusal(ranged, ["PING", "a", "b"], false), commandRefusal(ranged, ["PING", "a", "b"], true), commandRefusal(ranged, ["PING", "a"], true), commandRefusal(ranged, ["PING"], true)]).toEqual([
      "NOAUTH Authentication required.",
      "ERR wrong number of arguments",
      null,
      null,
    ]);
    let authed = false;
    const d = requestDecoder(1 << 20, () => authed);
    expect(() => d.feed(encodeCommand(["AUTH", "x".repeat(MAX_UNAUTHENTICATED_BYTES)]))).toThrow(`request larger than ${MAX_UNAUTHENTICATED_BYTES} bytes`);
    authed = true;
    const e = requestDecoder(1000, () => authed);
    expect(e.feed(encodeCommand(["SET", "x".repeat(900), "y".repeat(900)])).done).toBe(true);
    expect(() => e.feed(encodeCommand(["SET", "x".repeat(999), "y".repeat(999)]))).toThrow("request larger than 2000 bytes");
  });

  test("inline is refused on the client side", () => {
    expect(() => new RespDecoder().feed(Buffer.from("hello\r\n"))).toThrow(/Protocol error/);
  });

  test("limits: bulk length, array length, line length and depth are protocol errors, before any allocation", () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as { code?: string }).code;
      }
      return "none";
    };
    expect(code(() => new RespDecoder({ maxBulk: 1024 }).feed(Buffer.from("$1073741824\r\n")))).toBe("PROTOCOL");
    expect(code(() => new RespDecoder({ maxArray: 1000 }).feed(Buffer.from("*1000000\r\n")))).toBe("PROTOCOL");
    expect(code(() => new RespDecoder({ maxLine: 100 }).feed(Buffer.alloc(200, 0x41)))).toBe("PROTOCOL");
    expect(code(() => new RespDecoder({ maxDepth: 3 }).feed(Buffer.from("*1\r\n*1\r\n*1\r\n*1\r\n")))).toBe("PROTOCOL");
  });

  test("garbage gives a protocol error", () => {
    for (const g of ["$abc\r\n", ":1.5\r\n", "*-7\r\n", "$-5\r\n", "$3\r\nabcXY", "+OK\n", "?what\r\n"]) {
      expect(() => decodeAll([Buffer.from(g)])).toThrow(/Protocol error/);
    }
  });

  test("property: any bytes either decode or throw a protocol error, never anything else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, inline) => {
        try {
          decodeAll([bytes], { inline, maxBulk: 1000, maxArray: 100 });
        } catch (e) {
          expect((e as { code?: string }).code).toBe("PROTOCOL");
        }
      }),
      { numRuns: 3000 },
    );
  });

  test("property: encoded commands split at random points decode to the same arguments", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 50 }), { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 6 }), (args, cuts) => {
        const buf = encodeCommand(args);
        const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
        const pieces: Buffer[] = [];
        let last = 0;
        for (const p of points) {
          pieces.push(buf.subarray(last, p));
          last = p;
        }
        pieces.push(buf.subarray(last));
        expect(decodeAll(pieces)).toEqual([args.map((a) => Buffer.from(a))]);
      }),
      { numRuns: 500 },
    );
  });
});

describe("conformance with a real client (ioredis)", () => {
  let srv: Server | null = null;
  let client: Redis | null = null;
  afterEach(async () => {
    client?.disconnect();
    client = null;
    await srv?.close(50);
    srv = null;
  });

  test("the decoder reads what ioredis sends, and ioredis reads every reply kind the encoder writes", async () => {
    const seen: string[][] = [];
    srv = await listen(
      "127.0.0.1",
      0,
      async (c) => {
        const d = new RespDecoder({ inline: true });
        for (;;) {
          let cmd: RespValue;
          try {
            cmd = await c.read(d);
          } catch {
            return;
          }
          const args = (cmd as Buffer[]).map((b) => b.toString());
          seen.push(args);
          const name = args[0].toLowerCase();
          const replies: Record<string, Buffer> = {
            ping: simple("PONG"),
            set: OK,
            get: bulk("v\r\n1"),
            getnull: bulk(null),
            incr: integer(42),
            mixed: array([bulk("a"), integer(-1), bulk(null), array([simple("x")])]),
            fail: error("LOADING kvrocks is restoring the db from backup"),
          };
          await c.write(replies[name] ?? error(`ERR unknown command \`${args[0]}\`, with args beginning with: `));
        }
      },
      { readMs: 0 },
    );
    client = new Redis({ port: srv.port, host: "127.0.0.1", enableReadyCheck: false, lazyConnect: true, maxRetriesPerRequest: 0 });
    await client.connect();
    expect(await client.ping()).toBe("PONG");
    expect(await client.set("k", "binary\r\nvalue \u00e9")).toBe("OK");
    expect(await client.get("k")).toBe("v\r\n1");
    expect(await client.call("getnull")).toBeNull();
    expect(await client.incr("n")).toBe(42);
    expect(await client.call("mixed")).toEqual(["a", -1, null, ["x"]]);
    await expect(client.call("fail")).rejects.toThrow("LOADING kvrocks is restoring the db from backup");
    expect(seen).toContainEqual(["set", "k", "binary\r\nvalue \u00e9"]);
    expect(seen).toContainEqual(["incr", "n"]);
  });
});
