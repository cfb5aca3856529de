/** Ports for tests: always from the OS, never guessed. */
import { listen } from "../../lib/net/index.ts";

/** A port of 127.0.0.1 that nothing listens on: the OS gave it to a listener of ours, now closed (a connect is refused; a server may bind it). */
export async function closedPort(): Promise<number> {
  const s = await listen("127.0.0.1", 0, (c) => c.destroy());
  const port = s.port;
  await s.close(0);
  return port;
}
