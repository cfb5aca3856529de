/**
 * stop-latency: 50 trials of the mission. The replica is mid-file from master A, A is stalled
 * (KVR FAULT ADD stall: no FIN, no RST), and `CLUSTERX SETNODES` moves the replica to master B;
 * the figure is send → +OK on the admin port. Goal: p99 < 50 ms (a distribution, no reference).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { replyText, type RespValue } from "../lib/resp/index.ts";
import { runStandalone, summary, type BenchContext, type Row } from "./support/harness.ts";
import { client, startMaster, startReplica } from "./support/kvr.ts";

export const NAME = "stop-latency";
const ID_A = "a".repeat(40);
const ID_B = "b".repeat(40);
const ID_R = "c".repeat(40);

function topology(rPort: number, aPort: number, bPort: number, of: "a" | "b"): string {
  return [
    `${ID_A} 127.0.0.1 ${aPort} master - 0-8191`,
    `${ID_B} 127.0.0.1 ${bPort} master - 8192-16383`,
    `${ID_R} 127.0.0.1 ${rPort} slave ${of === "a" ? ID_A : ID_B}`,
  ].join("\n");
}

export async function bench(ctx: BenchContext): Promise<Row[]> {
  const trials = Number(process.env.KVR_BENCH_STOP_TRIALS ?? 50);
  // B: a small directory checkpoint whose names differ from A's.
  const bSrc = join(ctx.tmp, "b");
  mkdirSync(bSrc);
  writeFileSync(join(bSrc, "900001.sst"), Buffer.alloc(64 * 1024, 7));
  writeFileSync(join(bSrc, "MANIFEST-900000"), Buffer.alloc(500, 9));
  writeFileSync(join(bSrc, "CURRENT"), "MANIFEST-900000\n");
  const dir = join(ctx.tmp, "replica");
  mkdirSync(dir);
  // A: many 256 KiB files at 4 MiB/s shared by the 4 fetch workers (~0.25 s per file).
  const a = await startMaster(ctx.bin, ["--generate", "400x256KiB", "--rate", "4"]);
  const b = await startMaster(ctx.bin, ["--dir", bSrc, "--seq", "100"]).catch(async (e) => {
    await a.stop();
    throw e;
  });
  const r = await startReplica(ctx.bin, ["--dir", dir, "--node-id", ID_R, "--read-timeout", "3s"]).catch(async (e) => {
    await Promise.all([a.stop(), b.stop()]);
    throw e;
  });
  const ctl = await client(a.port);
  const adm = await client(r.port);
  const times: number[] = [];
  const stopMs: number[] = [];
  try {
    let version = 0;
    for (let t = 0; t < trials; t++) {
      expectOk(await ctl.call(["KVR", "FAULT", "CLEAR"]), "KVR FAULT CLEAR");
      let from = r.child.lines.length;
      expectOk(await adm.call(["CLUSTERX", "SETNODES", topology(r.port, a.port, b.port, "a"), String(++version)]), "SETNODES to A");
      // Mid-file: one file done since the switch, so the workers are inside the next ones.
      await r.child.waitAfter(from, (e) => e.event === "file-done", 15_000);
      expectOk(await ctl.call(["KVR", "FAULT", "ADD", "stall"]), "KVR FAULT ADD stall");
      await Bun.sleep(30);
      from = r.child.lines.length;
      const t0 = performance.now();
      const reply = await adm.call(["CLUSTERX", "SETNODES", topology(r.port, a.port, b.port, "b"), String(++version)]);
      times.push(performance.now() - t0);
      expectOk(reply, "SETNODES to B");
      const stopped = await r.child.waitAfter(from, (e) => e.event === "stopped", 5_000);
      stopMs.push(Number(stopped.ms));
      await r.child.waitAfter(from, (e) => e.event === "done", 15_000);
    }
  } finally {
    ctl.close();
    adm.close();
    await Promise.all([r.stop(), a.stop(), b.stop()]);
  }
  const s = summary(times);
  const st = summary(stopMs);
  return [
    {
      name: NAME,
      figure: `p99 ${s.p99} ms (min ${s.min}, median ${s.median}, max ${s.max})`,
      value: s.p99,
      unit: "ms",
      reference: "— (distribution)",
      ratio: null,
      goal: "p99 < 50 ms",
      met: s.p99 < 50,
      note: `${trials} trials, SETNODES send → +OK on a kept-open admin connection, master A stalled mid-file with 4 fetch connections; the replica's own stop (abort → sockets closed, .tmp removed): median ${st.median} ms, max ${st.max} ms`,
      details: { sendToOkMs: s, replicaStopMs: st, raw: times.map((x) => Math.round(x * 100) / 100) },
    },
  ];
}

function expectOk(v: RespValue, what: string): void {
  const t = replyText(v);
  if (t !== "OK") throw new Error(`${what} replied ${JSON.stringify(t)}`);
}

if (import.meta.main) await runStandalone(NAME, bench);
