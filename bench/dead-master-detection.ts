/**
 * dead-master-detection: 20 trials of a master that stalls mid-file (stall:after-bytes: the
 * socket stays open, no FIN, no RST) under a 1 s read deadline; the figure is the time from the
 * first fetch connection going silent (the master's `fault` event, sent right after that
 * connection's last byte) to the replica's READ_TIMEOUT (its `retry` event), both timed on
 * arrival at our end of the children's stdout pipes. Goal: p99 within deadline + 50 ms, never
 * before the deadline.
 *
 * Not from the +OK of a run-time KVR FAULT ADD stall: a rate-limited connection may have sent
 * its last byte tens of ms before that, and a replica that starts its wait at once then times
 * out "before" the deadline counted from the +OK while exactly on time from its last byte.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { replyText } from "../lib/resp/index.ts";
import { runStandalone, summary, type BenchContext, type Row } from "./support/harness.ts";
import { client, spawnKvr, startMaster } from "./support/kvr.ts";

export const NAME = "dead-master-detection";
const DEADLINE_MS = 1000;

export async function bench(ctx: BenchContext): Promise<Row[]> {
  const trials = Number(process.env.KVR_BENCH_DEAD_TRIALS ?? 20);
  // Rate-limited, so almost nothing is in flight when the stall starts. Each fetch connection
  // stalls after 300 KiB of file bytes (in its second file).
  const a = await startMaster(ctx.bin, ["--generate", "200x256KiB", "--rate", "4"]);
  const ctl = await client(a.port);
  const times: number[] = [];
  const codes: string[] = [];
  try {
    for (let t = 0; t < trials; t++) {
      if (replyText(await ctl.call(["KVR", "FAULT", "CLEAR"])) !== "OK") throw new Error("KVR FAULT CLEAR failed");
      if (replyText(await ctl.call(["KVR", "FAULT", "ADD", "stall:after-bytes=300KiB"])) !== "OK") throw new Error("KVR FAULT ADD stall failed");
      const from = a.child.lines.length;
      const dir = join(ctx.tmp, `r${t}`);
      mkdirSync(dir);
      // A fresh replica per trial (retry backoff would grow within one run); the long retry
      // delay keeps it from reconnecting before it is stopped.
      const r = spawnKvr(ctx.bin, [
        "replica", "--port", "0", "--log-level", "error", "--dir", dir, "--master", `127.0.0.1:${a.port}`,
        "--read-timeout", `${DEADLINE_MS}ms`, "--max-retries", "1", "--retry-delay", "60s",
      ]);
      try {
        const silent = await a.child.waitAfter(from, (e) => e.event === "fault" && e.kind === "stall", 15_000);
        const ev = await r.wait((e) => e.event === "retry", DEADLINE_MS + 10_000);
        times.push(ev.at - silent.at);
        codes.push(String(ev.code));
      } finally {
        await r.stop("SIGTERM", 2000);
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    ctl.close();
    await a.stop();
  }
  const s = summary(times);
  const early = times.filter((x) => x < DEADLINE_MS).length;
  const wrong = codes.filter((c) => c !== "READ_TIMEOUT");
  return [
    {
      name: NAME,
      figure: `p99 ${s.p99} ms (min ${s.min}, median ${s.median}, max ${s.max})`,
      value: s.p99,
      unit: "ms",
      reference: `deadline ${DEADLINE_MS} ms`,
      ratio: s.p99 / DEADLINE_MS,
      goal: "p99 ≤ deadline + 50 ms, never before it",
      met: s.p99 <= DEADLINE_MS + 50 && early === 0 && wrong.length === 0,
      note: `${trials} trials, 4 fetch connections each; measured from the first fetch connection's last byte (the master's fault event) to the replica's retry event, both on our end of the stdout pipes; ${early} before the deadline${wrong.length ? `; other error codes: ${wrong.join(", ")}` : ""}`,
      details: { ms: s, raw: times.map((x) => Math.round(x * 10) / 10), codes },
    },
  ];
}

if (import.meta.main) await runStandalone(NAME, bench);
