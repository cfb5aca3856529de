/** Helpers of the drill tests: the --json result on stdout, and whether a port was closed. */
import { expect } from "bun:test";
import { connect } from "../../lib/net/index.ts";

/** The one result object a `kvr drill --json` prints on stdout (exactly one line). */
export function parseResult(stdout: string): any {
  const lines = stdout.trim().split("\n").filter(Boolean);
  expect(lines.length).toBe(1);
  return JSON.parse(lines[0]);
}

/** True when nothing listens on host:port any more (the connection is refused). */
export async function refused(host: string, port: number): Promise<boolean> {
  try {
    const c = await connect(host, port, { connectMs: 1000 });
    c.destroy();
    return false;
  } catch (e) {
    return (e as { code?: string }).code === "REFUSED";
  }
}
