/**
 * dead-master-detection: 20 trials of a master that stalls mid-file (KVR FAULT ADD stall: the
 * socket stays open, no FIN, no RST) under a 1 s read deadline; the figure is the time from the
 * stall being in effect (+OK of the fault command) to the replica's READ_TIMEOUT (its `retry`
 * event). Goal: p99 within deadline + 50 ms, never before the deadline.
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
  // Rate-limited, so almost nothing is in flight when the stall starts.
  const a = await startMaster(ctx.bin, ["--generate", "200x256KiB", "--rate", "4"]);
  const ctl = await client(a.port);
  const times: number[] = [];
  const codes: string[] = [];
  try {
    for (let t = 0; t < trials; t++) {
      if (replyText(await ctl.call(["KVR", "FAULT", "CLEAR"])) !== "OK") throw new Error("KVR FAULT CLEAR failed");
      const dir = join(ctx.tmp, `r${t}`);
      mkdirSync(dir);
      // A fresh replica per trial (retry backoff would grow within one run); the long retry
      // delay keeps it from reconnecting before it is stopped.
      const r = spawnKvr(ctx.bin, [
        "replica", "--port", "0", "--log-level", "error", "--dir", dir, "--master", `127.0.0.1:${a.port}`,
        "--read-timeout", `${DEADLINE_MS}ms`, "--max-retries", "1", "--retry-delay", "60s",
      ]);
      try {
        await r.wait((e) => e.event === "file-done", 15_000);
        if (replyText(await ctl.call(["KVR", "FAULT", "ADD", "stall"])) !== "OK") throw new Error("KVR FAULT ADD stall failed");
        const t0 = performance.now();
        const ev = await r.wait((e) => e.event === "retry", DEADLINE_MS + 10_000);
        times.push(ev.at - t0);
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
      note: `${trials} trials, 4 fetch connections each; measured from the stall's +OK to the replica's retry event on our end of its stdout pipe; ${early} before the deadline${wrong.length ? `; other error codes: ${wrong.join(", ")}` : ""}`,
      details: { ms: s, raw: times.map((x) => Math.round(x * 10) / 10), codes },
    },
  ];
}

if (import.meta.main) await runStandalone(NAME, bench);
