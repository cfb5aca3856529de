/**
 * Minimal RESP servers in the benchmark process (lib/net + lib/resp), for the fan-out rows: each
 * reads commands and answers them with `answer`, or never answers (silent: accepts and reads, the
 * frozen-node signature).
 */
import { listen, type Conn, type Server } from "../../lib/net/index.ts";
import { RespDecoder } from "../../lib/resp/index.ts";

/** Answer one command (its words as strings) with reply bytes; null = no reply to it. */
export type Answer = (args: string[]) => Buffer | null;

/** A target on 127.0.0.1 (a free port); `answer` null = silent. */
export async function respTarget(answer: Answer | null): Promise<Server> {
  return listen(
    "127.0.0.1",
    0,
    async (c: Conn) => {
      const dec = new RespDecoder({ inline: true, maxBulk: 16 * 1024 * 1024 });
      try {
        for (;;) {
          const v = await c.read(dec);
          if (!answer) continue;
          const args = Array.isArray(v) ? v.map((x) => (Buffer.isBuffer(x) ? x.toString("utf8") : String(x))) : [];
          const reply = answer(args);
          if (reply) await c.write(reply);
        }
      } catch {
        c.destroy();
      }
    },
    { readMs: 0 },
  );
}
