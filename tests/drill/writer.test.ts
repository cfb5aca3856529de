/**
 * The drill's writes on a running master (lib/drill/writer.ts), against the Kvrocks master double
 * on real sockets: keys in the slots the node owns (any key in standalone mode), SETs at the
 * rate asked, a refused SET stops the writes with the node's error, DEL of every key.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { keySlot, slotIn } from "../../lib/cluster/index.ts";
import { chooseKeys, deleteKeys, KEY_PREFIX, VALUE_BYTES, Writer } from "../../lib/drill/writer.ts";
import { startKvrocksMaster, type KvrocksMaster } from "./kvrocks-master.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function double(slots: Array<[number, number]> | null, password?: string): Promise<KvrocksMaster> {
  const m = await startKvrocksMaster({ slots, password });
  cleanups.push(() => m.close());
  return m;
}

describe("chooseKeys", () => {
  test("every key in an owned slot, distinct, under the prefix; any key in standalone mode", () => {
    const owned: Array<[number, number]> = [[100, 200], [16000, 16383]];
    const keys = chooseKeys("t1", owned, 64);
    expect(keys).toHaveLength(64);
    expect(new Set(keys).size).toBe(64);
    for (const k of keys) {
      expect(k).toStartWith(`${KEY_PREFIX}t1:`);
      expect(slotIn(keySlot(k), owned)).toBe(true);
    }
    expect(chooseKeys("t1", null, 5)).toEqual([0, 1, 2, 3, 4].map((i) => `${KEY_PREFIX}t1:${i}`));
  });

  test("a node owning a single slot still gets its keys; one owning none gets none", () => {
    const keys = chooseKeys("one", [[12182, 12182]], 3);
    expect(keys).toHaveLength(3);
    for (const k of keys) expect(keySlot(k)).toBe(12182);
    expect(chooseKeys("none", [], 3)).toEqual([]);
  });
});

describe("Writer and deleteKeys against the double", () => {
  test("SETs of 1 KiB at about the rate asked, in cluster mode with a password; every key deleted afterwards", async () => {
    const slots: Array<[number, number]> = [[0, 8000]];
    const m = await double(slots, "pw");
    const keys = chooseKeys("w", slots, 16);
    const w = new Writer({ host: "127.0.0.1", port: m.port }, "pw", keys, 500);
    await w.start();
    await Bun.sleep(1000);
    await w.stop();
    expect(w.error).toBeNull();
    expect(w.sent).toBeGreaterThan(300);
    expect(w.sent).toBeLessThan(700);
    expect(m.counts.moved).toBe(0);
    expect([...m.store.keys()].sort()).toEqual([...keys].sort());
    for (const v of m.store.values()) expect(v).toHaveLength(VALUE_BYTES);
    const d = await deleteKeys({ host: "127.0.0.1", port: m.port }, "pw", keys);
    expect(d).toEqual({ deleted: 16, error: null });
    expect(m.store.size).toBe(0);
    // one DEL per key (keys in different slots cannot share a command in cluster mode)
    expect(m.commands.filter(([c]) => c === "del")).toHaveLength(16);
  });

  test("a refused SET (MOVED) stops the writes with the node's error; a wrong password is an error, not a throw", async () => {
    const m = await double([[0, 100]]);
    const notMine = chooseKeys("x", [[200, 16383]], 4);
    const w = new Writer({ host: "127.0.0.1", port: m.port }, undefined, notMine, 200);
    await w.start();
    await Bun.sleep(300);
    await w.stop();
    expect(w.error).toMatch(/^SET kvr:drill:x:\d+: -MOVED \d+ 127\.0\.0\.1:1$/);
    expect(w.sent).toBe(0);
    const locked = await double(null, "pw");
    const d = await deleteKeys({ host: "127.0.0.1", port: locked.port }, "wrong", ["kvr:drill:k:1"]);
    expect(d.deleted).toBe(0);
    expect(d.error).toContain("Invalid password");
  });
});
