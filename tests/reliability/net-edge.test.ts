/** lib/net edge cases found by the reliability suite. */
import { expect, test } from "bun:test";
import { connect, listen } from "../../lib/net/index.ts";

test("garbage instead of a line after the peer closed is a PROTOCOL error, not CLOSED", async () => {
  const server = await listen("127.0.0.1", 0, async (c) => {
    // A size line, the file, then 100 KB without a newline where the next size line belongs; then FIN.
    await c.write(Buffer.concat([Buffer.from("5\r\nhello"), Buffer.alloc(100_000, 0xee)]));
    c.end();
  });
  const c = await connect("127.0.0.1", server.port, { readMs: 3000 });
  try {
    expect(await c.readLine(64)).toBe("5");
    // A slow sink: the peer's FIN and close arrive while the file is being written.
    await c.readExactly(5, async () => void (await Bun.sleep(200)));
    const err = await c.readLine(64).then(
      () => null,
      (e) => e as { code: string },
    );
    expect(err?.code).toBe("PROTOCOL");
  } finally {
    c.destroy();
    await server.close(0);
  }
});
