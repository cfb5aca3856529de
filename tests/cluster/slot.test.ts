/**
 * The key hash slot as Redis Cluster computes it: known values from the Redis Cluster
 * specification and CLUSTER KEYSLOT, hash tags, and agreement with an independent implementation
 * (the cluster-key-slot package, which ioredis uses) on random keys.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { crc16, hashTag, keySlot, slotIn } from "../../lib/cluster/index.ts";

/** ioredis' own slot function (its dependency cluster-key-slot, which ships no types). */
const otherSlot = require("cluster-key-slot") as (key: string | Uint8Array) => number;

describe("keySlot", () => {
  test("CRC16-XMODEM check value: crc16('123456789') = 0x31C3 (the Redis Cluster specification's)", () => {
    expect(crc16(Buffer.from("123456789"))).toBe(0x31c3);
    expect(crc16(new Uint8Array(0))).toBe(0);
  });

  test("known slots: foo 12182, bar 5061, hello 866; the empty key is slot 0", () => {
    expect(keySlot("foo")).toBe(12182);
    expect(keySlot("bar")).toBe(5061);
    expect(keySlot("hello")).toBe(866);
    expect(keySlot("")).toBe(0);
  });

  test("hash tags: {user1000}.following and {user1000}.followers share the slot of user1000", () => {
    const s = keySlot("user1000");
    expect(keySlot("{user1000}.following")).toBe(s);
    expect(keySlot("{user1000}.followers")).toBe(s);
    expect(keySlot("user1000.following")).not.toBe(s);
  });

  test("hash tag edge cases from the specification: empty tag, nested and repeated braces", () => {
    // foo{}{bar}: the first tag is empty, so the whole key is hashed
    expect(Buffer.from(hashTag(Buffer.from("foo{}{bar}"))).toString()).toBe("foo{}{bar}");
    expect(keySlot("{}}")).toBe(crc16(Buffer.from("{}}")) % 16384);
    // foo{{bar}}zap: the tag is "{bar" (from the first { to the first } after it)
    expect(Buffer.from(hashTag(Buffer.from("foo{{bar}}zap"))).toString()).toBe("{bar");
    expect(keySlot("foo{{bar}}zap")).toBe(keySlot("{bar"));
    // foo{bar}{zap}: only the first tag counts
    expect(keySlot("foo{bar}{zap}")).toBe(keySlot("bar"));
    // no closing brace: the whole key
    expect(keySlot("foo{bar")).toBe(crc16(Buffer.from("foo{bar")) % 16384);
  });

  // cluster-key-slot goes on looking for a tag after an empty one ("{}}" → hashes ""); Redis hashes
  // the whole key then (keyHashSlot), as keySlot does: keys whose first tag is empty are left out.
  const emptyFirstTag = (k: string) => k.indexOf("{") >= 0 && k[k.indexOf("{") + 1] === "}";

  test("agrees with an independent implementation on random keys (UTF-8, braces included)", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom("a", "b", "{", "}", "é", "1", ":", "日"), maxLength: 24 }), (k) => {
        fc.pre(!emptyFirstTag(k));
        expect(keySlot(k)).toBe(otherSlot(k));
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (b) => {
        fc.pre(!emptyFirstTag(Buffer.from(b).toString("latin1")));
        expect(keySlot(b)).toBe(otherSlot(Buffer.from(b)));
      }),
      { numRuns: 2000 },
    );
  });

  test("slotIn: inclusive ranges", () => {
    expect(slotIn(5, [[0, 5]])).toBe(true);
    expect(slotIn(6, [[0, 5], [7, 9]])).toBe(false);
    expect(slotIn(9, [[0, 5], [7, 9]])).toBe(true);
    expect(slotIn(0, [])).toBe(false);
  });
});
