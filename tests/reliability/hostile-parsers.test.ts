/**
 * Hostile input to the parsers, property-based (fast-check): the RESP decoder (every reply kind,
 * nested, split anywhere; mutations; limits enforced on the header, before any payload) and the
 * topology parser (generated valid topologies round-trip; one mutation → Kvrocks' message).
 * Extends tests/resp and tests/cluster, whose properties cover commands and seeded topologies.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { RespDecoder, RespError, SimpleString, type RespValue } from "../../lib/resp/index.ts";
import { formatNodes, MSG, parseNodes, TopologyError, type ClusterNode, type Topology } from "../../lib/cluster/topology.ts";

// ---------- RESP ----------

/** Encode any RESP2 value (the reference encoder for these properties). */
function enc(v: RespValue): Buffer {
  if (v === null) return Buffer.from("$-1\r\n");
  if (v instanceof SimpleString) return Buffer.from(`+${v.value}\r\n`);
  if (v instanceof RespError) return Buffer.from(`-${v.message}\r\n`);
  if (typeof v === "number") return Buffer.from(`:${v}\r\n`);
  if (Buffer.isBuffer(v)) return Buffer.concat([Buffer.from(`$${v.length}\r\n`), v, Buffer.from("\r\n")]);
  return Buffer.concat([Buffer.from(`*${v.length}\r\n`), ...v.map(enc)]);
}

const lineText = fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, " "));
const { value: respValue } = fc.letrec<{ value: RespValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    lineText.map((s) => new SimpleString(s) as RespValue),
    lineText.map((s) => new RespError(`ERR ${s}`) as RespValue),
    fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }).filter((n) => Math.abs(n) < 1e18),
    fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a) as RespValue),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 5 }) as fc.Arbitrary<RespValue>,
  ),
}));

/** Decode every value from `pieces` fed in order; throws what the decoder throws. */
function decodeAll(pieces: Buffer[], limits = {}): RespValue[] {
  const d = new RespDecoder({ maxDepth: 16, ...limits });
  const out: RespValue[] = [];
  for (const p of pieces) {
    let off = 0;
    while (off < p.length) {
      const r = d.feed(p.subarray(off));
      off += r.used;
      if (r.done) out.push(r.value ?? null);
      else if (r.used === 0) throw new Error("decoder made no progress");
    }
  }
  return out;
}

/** Cut `buf` at the given points (taken modulo its length). */
function cut(buf: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of at) {
    out.push(buf.subarray(last, p));
    last = p;
  }
  out.push(buf.subarray(last));
  return out;
}

const codeOf = (f: () => unknown): string => {
  try {
    f();
    return "none";
  } catch (e) {
    return String((e as { code?: string }).code ?? (e as Error).name);
  }
};

describe("RESP decoder, hostile and split input", () => {
  test("property (1,000 runs): every reply kind, nested, several per stream, split anywhere → decoded identically", () => {
    fc.assert(
      fc.property(fc.array(respValue, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 10 }), (values, points) => {
        const stream = Buffer.concat(values.map(enc));
        expect(decodeAll(cut(stream, points))).toEqual(values);
      }),
      { numRuns: 1000 },
    );
  });

  test("property (2,000 runs): a valid stream with 1–4 bytes mutated → the same values or a protocol error, nothing else", () => {
    fc.assert(
      fc.property(
        fc.array(respValue, { minLength: 1, maxLength: 3 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        (values, muts, points) => {
          const stream = Buffer.from(Buffer.concat(values.map(enc)));
          for (const [at, byte] of muts) stream[at % stream.length] = byte;
          const code = codeOf(() => decodeAll(cut(stream, points), { maxBulk: 4096, maxArray: 64 }));
          expect(["none", "PROTOCOL"]).toContain(code);
        },
      ),
      { numRuns: 2000 },
    );
  });

  test("property (300 runs): 64 KiB of random bytes in random chunks never hangs (< 50 ms) and fails only with a protocol error", () => {
    let slowest = 0;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 65536 }), fc.array(fc.nat(), { maxLength: 20 }), fc.boolean(), (bytes, points, inline) => {
        const t0 = performance.now();
        const code = codeOf(() => decodeAll(cut(Buffer.from(bytes), points), { inline, maxBulk: 1 << 20, maxArray: 1 << 16 }));
        slowest = Math.max(slowest, performance.now() - t0);
        expect(["none", "PROTOCOL"]).toContain(code);
      }),
      { numRuns: 300 },
    );
    expect(slowest).toBeLessThan(50);
  });

  test("property (1,000 runs): an oversized bulk or array header, or an over-long line, is refused before its payload arrives", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1 << 20 }),
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.constantFrom("$", "*", "line"),
        fc.boolean(),
        (limit, over, kind, inline) => {
          const lim = { maxBulk: limit, maxArray: limit, maxLine: Math.max(16, limit), inline };
          if (kind === "line") {
            // No LF at all: refused as soon as the limit is crossed, whatever the chunking.
            const d = new RespDecoder(lim);
            let code = "none";
            let fed = 0;
            while (code === "none" && fed <= lim.maxLine + 1) {
              code = codeOf(() => d.feed(Buffer.alloc(Math.min(4096, lim.maxLine + 1 - fed + 1), 0x61)));
              fed += 4096;
            }
            expect(code).toBe("PROTOCOL");
            return;
          }
          // The header alone (no payload) must already fail.
          const header = Buffer.from(`${kind}${limit + over}\r\n`);
          expect(codeOf(() => new RespDecoder(lim).feed(header))).toBe("PROTOCOL");
        },
      ),
      { numRuns: 1000 },
    );
  });

  test("a 10^6-element array header within the limit allocates nothing up front (heap grows < 8 MiB)", () => {
    Bun.gc(true);
    const before = process.memoryUsage().heapUsed;
    const decoders = Array.from({ length: 50 }, () => {
      const d = new RespDecoder();
      expect(d.feed(Buffer.from("*1000000\r\n")).done).toBe(false);
      return d;
    });
    Bun.gc(true);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(8 * 1024 * 1024);
    expect(decoders.every((d) => d.busy)).toBe(true);
  });
});

// ---------- topology ----------

const hex40 = fc.stringMatching(/^[0-9a-f]{40}$/);
const host = fc.constantFrom("127.0.0.1", "10.1.2.3", "::1", "node-7.example", "192.168.0.10");

/** A valid topology: masters own disjoint slot ranges cut from 0..16383, slaves point at masters. */
const topologyArb: fc.Arbitrary<Topology> = fc
  .record({
    ids: fc.uniqueArray(hex40, { minLength: 2, maxLength: 10 }),
    cuts: fc.uniqueArray(fc.integer({ min: 1, max: 16383 }), { maxLength: 20 }),
    owners: fc.array(fc.nat(), { minLength: 21, maxLength: 21 }),
    keep: fc.array(fc.boolean(), { minLength: 21, maxLength: 21 }),
    masterShare: fc.integer({ min: 1, max: 100 }),
    ports: fc.array(fc.integer({ min: 0, max: 65535 }), { minLength: 10, maxLength: 10 }),
    hosts: fc.array(host, { minLength: 10, maxLength: 10 }),
  })
  .map(({ ids, cuts, owners, keep, masterShare, ports, hosts }) => {
    const nMasters = Math.max(1, Math.round((ids.length * masterShare) / 100));
    const nodes: ClusterNode[] = ids.map((id, i) => ({
      id,
      host: hosts[i],
      port: ports[i],
      role: i < nMasters ? "master" : "slave",
      masterId: i < nMasters ? "-" : ids[owners[i] % nMasters],
      slots: [],
    }));
    const bounds = [0, ...[...cuts].sort((a, b) => a - b), 16384];
    for (let i = 0; i + 1 < bounds.length; i++) {
      if (!keep[i]) continue;
      const [a, b] = [bounds[i], bounds[i + 1] - 1];
      nodes[owners[i] % nMasters].slots.push([a, b]);
    }
    return { nodes };
  });

type Mutation = { name: string; apply(lines: string[][], t: Topology, pick: number): boolean; message: string };

/** One change to one line (as fields) that Kvrocks rejects with a known message. */
const MUTATIONS: Mutation[] = [
  { name: "too few fields", message: MSG.nodesInfo, apply: (l, _t, i) => ((l[i] = l[i].slice(0, 4)), true) },
  { name: "id one char short", message: MSG.nodeId, apply: (l, _t, i) => ((l[i][0] = l[i][0].slice(1)), true) },
  { name: "id one char long", message: MSG.nodeId, apply: (l, _t, i) => ((l[i][0] += "a"), true) },
  { name: "port 65536", message: MSG.port, apply: (l, _t, i) => ((l[i][2] = "65536"), true) },
  { name: "port -1", message: MSG.port, apply: (l, _t, i) => ((l[i][2] = "-1"), true) },
  { name: "port not a number", message: MSG.port, apply: (l, _t, i) => ((l[i][2] = "66x"), true) },
  { name: "role leader", message: MSG.role, apply: (l, _t, i) => ((l[i][3] = "leader"), true) },
  {
    name: "a master naming a master id",
    message: MSG.nodeId,
    apply: (l, _t, i) => l[i][3] === "master" && ((l[i][4] = "f".repeat(40)), true),
  },
  { name: "a slave whose master id is '-'", message: MSG.nodeId, apply: (l, _t, i) => l[i][3] === "slave" && ((l[i][4] = "-"), true) },
  { name: "a slave with a slot", message: MSG.nodesInfo, apply: (l, _t, i) => l[i][3] === "slave" && (l[i].push("5"), true) },
  { name: "slot 16384", message: MSG.slotRange, apply: (l, _t, i) => l[i][3] === "master" && (l[i].push("16384"), true) },
  { name: "a reversed range", message: MSG.slotRange, apply: (l, _t, i) => l[i][3] === "master" && (l[i].push("9-3"), true) },
  { name: "a three-part range", message: MSG.slotRange, apply: (l, _t, i) => l[i][3] === "master" && (l[i].push("1-2-3"), true) },
  {
    name: "a slot owned by two masters",
    message: MSG.overlap,
    apply: (l, t, i) => {
      if (l[i][3] !== "master") return false;
      const other = t.nodes.find((n, j) => j !== i && n.role === "master" && n.slots.length > 0);
      if (!other) return false;
      l[i].push(String(other.slots[0][0]));
      return true;
    },
  },
  {
    name: "two masters on one line (missing newline)",
    message: MSG.missingNewline,
    apply: (l, _t, i) => l[i][3] === "master" && (l[i].push("e".repeat(40)), true),
  },
];

describe("topology parser, generated input", () => {
  test("property (500 runs): generated valid topologies parse, and format back identically", () => {
    fc.assert(
      fc.property(topologyArb, (t) => {
        const text = formatNodes(t);
        const back = parseNodes(text);
        expect(back).toEqual(t);
        expect(formatNodes(back)).toBe(text);
        // Kvrocks' tolerated noise (blank lines, doubled spaces, upper-case roles) parses the same.
        const noisy = "\n" + text.split("\n").map((l) => l.replace(/ /g, "  ").replace(" master ", " MASTER ")).join("\n\n") + "\n";
        expect(parseNodes(noisy)).toEqual(t);
      }),
      { numRuns: 500 },
    );
  }, 30_000);

  test(`property (2,000 runs): one of ${MUTATIONS.length} single mutations on one line → rejected with Kvrocks' message, on that line`, () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(topologyArb, fc.nat(), fc.nat(), (t, m, p) => {
        const lines = formatNodes(t).split("\n").map((l) => l.split(" "));
        const mut = MUTATIONS[m % MUTATIONS.length];
        const i = p % lines.length;
        fc.pre(mut.apply(lines, t, i));
        seen.add(mut.name);
        let err: unknown = null;
        try {
          parseNodes(lines.map((l) => l.join(" ")).join("\n"));
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(TopologyError);
        const te = err as TopologyError;
        // An overlap is reported on whichever of the two lines comes second.
        expect({ mutation: mut.name, message: te.kvrocksMessage }).toEqual({ mutation: mut.name, message: mut.message });
        if (mut.message !== MSG.overlap) expect(te.line).toBe(i + 1);
      }),
      { numRuns: 2000 },
    );
    expect(seen.size).toBe(MUTATIONS.length);
  }, 30_000);
});
