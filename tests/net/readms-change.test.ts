import { afterEach, expect, test } from "bun:test";
import { connect, listen, NetError, type Conn } from "../../lib/net/index.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A server that answers each line "x" with "y" and otherwise stays silent. */
async function echoOnce() {
  const s = await listen("127.0.0.1", 0, (c: Conn) => {
    (async () => {
      while ((await c.readLine().catch(() => null)) !== null) await c.write("y\r\n").catch(() => {});
    })();
  }, { readMs: 0 });
  cleanups.push(() => s.close(50));
  return s;
}

test("a changed readMs applies to the next read (shorter deadline)", async () => {
  const s = await echoOnce();
  const c = await connect("127.0.0.1", s.port, { readMs: 3000 });
  cleanups.push(() => c.destroy());
  await c.write("x\r\n");
  expect(await c.readLine()).toBe("y");
  c.readMs = 300;
  const t = performance.now();
  const err = (await c.readLine().catch((e) => e)) as NetError;
  expect(err.code).toBe("READ_TIMEOUT");
  expect(performance.now() - t).toBeLessThan(1500);
});

test("readMs = 0 after a read with a deadline disables the deadline for the next read", async () => {
  const s = await echoOnce();
  const c = await connect("127.0.0.1", s.port, { readMs: 200 });
  cleanups.push(() => c.destroy());
  await c.write("x\r\n");
  expect(await c.readLine()).toBe("y");
  c.readMs = 0;
  const r = await Promise.race([c.readLine().then(() => "data", (e: NetError) => e.code), Bun.sleep(700).then(() => "still waiting")]);
  expect(r).toBe("still waiting");
});
