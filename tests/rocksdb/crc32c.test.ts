import { describe, expect, test } from "bun:test";
import { crc32c, maskCrc, unmaskCrc } from "../../lib/rocksdb/crc32c.ts";

/** Bit-by-bit reference implementation. */
function slowCrc(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

describe("crc32c", () => {
  test("known vectors (RFC 3720 and the check value)", () => {
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  test("matches a bitwise reference for every length 0..100 and random data", () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (let n = 0; n <= 100; n++) {
      const d = Uint8Array.from({ length: n }, rnd);
      expect(crc32c(d)).toBe(slowCrc(d));
    }
    const big = Uint8Array.from({ length: 100_003 }, rnd);
    expect(crc32c(big)).toBe(slowCrc(big));
  });

  test("extend: crc of a then b equals crc of a+b; ranges", () => {
    const a = Buffer.from("hello, ");
    const b = Buffer.from("world of blocks and records");
    const ab = Buffer.concat([a, b]);
    expect(crc32c(b, crc32c(a))).toBe(crc32c(ab));
    expect(crc32c(ab, 0, a.length, ab.length)).toBe(crc32c(b));
    expect(crc32c(ab, 0, 3, 10)).toBe(crc32c(ab.subarray(3, 10)));
  });

  test("mask/unmask as RocksDB does", () => {
    const c = crc32c(Buffer.from("foo"));
    expect(maskCrc(c)).not.toBe(c);
    expect(unmaskCrc(maskCrc(c))).toBe(c);
    expect(maskCrc(maskCrc(c))).not.toBe(maskCrc(c));
    expect(unmaskCrc(unmaskCrc(maskCrc(maskCrc(c))))).toBe(c);
    // rot-right-15(0) + 0xa282ead8
    expect(maskCrc(0)).toBe(0xa282ead8);
    expect(maskCrc(1)).toBe(((1 << 17) + 0xa282ead8) >>> 0);
  });

  test("fast: 64 MiB in well under a second", () => {
    const d = new Uint8Array(64 << 20).fill(7);
    const t = performance.now();
    crc32c(d);
    expect(performance.now() - t).toBeLessThan(2000);
  });
});
