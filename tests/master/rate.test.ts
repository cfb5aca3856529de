/** --rate: one token bucket shared by every fetch connection, smooth within each file, fair. */
import { afterEach, expect, test } from "bun:test";
import { generatedContent, parseGenerateSpec } from "../../lib/master/generate.ts";
import { generatedSource } from "../../lib/master/source.ts";
import { open, send, startTestMaster, type TestMaster } from "./helpers.ts";

let master: TestMaster | null = null;
afterEach(async () => {
  await master?.close();
  master = null;
});

test("2 MiB/s shared by 3 connections: total rate within ±20%, smooth within files, fair between connections", async () => {
  const MiB = 1024 * 1024;
  const spec = parseGenerateSpec("3x2MiB:seed=8");
  master = await startTestMaster({ source: generatedSource(spec), rate: 2 * MiB });
  const names = ["000010.sst", "000011.sst", "000012.sst"];
  const t0 = performance.now();
  const results = await Promise.all(
    names.map(async (name) => {
      const c = await open(master!.port, 5000);
      await send(c, "_fetch_file", name);
      const size = Number(await c.readLine());
      const parts: Buffer[] = [];
      let n = 0;
      let half = 0;
      await c.readExactly(size, (b) => {
        parts.push(b);
        n += b.length;
        if (!half && n >= size / 2) half = performance.now() - t0;
      });
      c.destroy();
      return { name, half, done: performance.now() - t0, ok: Buffer.concat(parts).equals(generatedContent(spec, name)) };
    }),
  );
  const total = performance.now() - t0;
  const rate = (6 * MiB) / (total / 1000);
  console.log(`rate limit 2 MiB/s, 3 connections: measured ${(rate / MiB).toFixed(3)} MiB/s over ${(total / 1000).toFixed(2)} s; ` +
    results.map((r) => `${r.name} half ${r.half.toFixed(0)} ms done ${r.done.toFixed(0)} ms`).join(", "));
  for (const r of results) expect(r.ok).toBe(true);
  expect(rate).toBeGreaterThan(2 * MiB * 0.8);
  expect(rate).toBeLessThan(2 * MiB * 1.2);
  for (const r of results) {
    // Smooth: half of each file arrived near half of the time, not all at once and then a sleep.
    expect(r.half / r.done).toBeGreaterThan(0.35);
    expect(r.half / r.done).toBeLessThan(0.65);
  }
  // Fair: the connections finish close together.
  const dones = results.map((r) => r.done);
  expect(Math.min(...dones) / Math.max(...dones)).toBeGreaterThan(0.8);
});
