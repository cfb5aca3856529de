/**
 * Which socket API should lib/net stand on? Loopback throughput (server → client, client
 * discards) of raw Bun.listen/Bun.connect, raw node:net, and lib/net's Conn (node:net based),
 * plus the abort latency of a blocked Conn read. Figures are ratios to raw Bun sockets measured
 * in the same run.  Run: bun run bench/socket-api.ts [MiB]  (part of bench/run.ts)
 */
import net from "node:net";
import { connect, listen } from "../lib/net/index.ts";
import { runStandalone, type BenchContext, type Row } from "./support/harness.ts";

export const NAME = "socket-api";
const MiB = 1 << 20;
let TOTAL = 512 * MiB;
const BLOCK = Buffer.alloc(MiB, 0x5a);

async function rawBun(): Promise<number> {
  let sent = 0;
  const pump = (s: Bun.Socket<undefined>) => {
    while (sent < TOTAL) {
      const want = Math.min(BLOCK.length, TOTAL - sent);
      const n = s.write(BLOCK.subarray(0, want));
      sent += n;
      if (n < want) return;
    }
    s.end();
  };
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: pump, drain: pump, data() {} } });
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    let got = 0;
    Bun.connect({
      hostname: "127.0.0.1",
      port: server.port,
      socket: {
        data(_s, d) {
          got += d.length;
        },
        end(s) {
          if (got !== TOTAL) throw new Error(`raw Bun got ${got}`);
          s.end();
          resolve();
        },
      },
    });
  });
  const ms = performance.now() - t0;
  server.stop(true);
  return TOTAL / MiB / (ms / 1000);
}

async function rawNode(): Promise<number> {
  const server = net.createServer(async (s) => {
    for (let sent = 0; sent < TOTAL; sent += BLOCK.length) {
      if (!s.write(BLOCK)) await new Promise((r) => s.once("drain", r));
    }
    s.end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    let got = 0;
    const c = net.connect(port, "127.0.0.1");
    c.on("data", (d) => (got += d.length));
    c.on("end", () => {
      if (got !== TOTAL) throw new Error(`node got ${got}`);
      c.destroy();
      resolve();
    });
  });
  const ms = performance.now() - t0;
  server.close();
  return TOTAL / MiB / (ms / 1000);
}

async function kvrConn(): Promise<number> {
  const server = await listen("127.0.0.1", 0, async (c) => {
    for (let sent = 0; sent < TOTAL; sent += BLOCK.length) await c.write(BLOCK);
    c.end();
  });
  const t0 = performance.now();
  const c = await connect("127.0.0.1", server.port);
  let got = 0;
  await c.readExactly(TOTAL, (b) => void (got += b.length));
  const ms = performance.now() - t0;
  c.destroy();
  await server.close(50);
  return TOTAL / MiB / (ms / 1000);
}

async function abortLatency(trials: number): Promise<number[]> {
  const server = await listen("127.0.0.1", 0, () => {}, { readMs: 0 });
  const out: number[] = [];
  for (let i = 0; i < trials; i++) {
    const ac = new AbortController();
    const c = await connect("127.0.0.1", server.port, { readMs: 60_000, signal: ac.signal });
    const p: Promise<number> = c.readExactly(10, () => {}).then(() => NaN, () => performance.now());
    await Bun.sleep(2);
    const t0 = performance.now();
    ac.abort();
    out.push((await p) - t0);
  }
  await server.close(50);
  return out.sort((a, b) => a - b);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Throughput (MiB/s, median of 3 interleaved runs) of each API, and the abort latency of a
 * blocked Conn read. Goal (kvr's own, not the issue's): lib/net's Conn ≥ 0.9 × the best raw API.
 */
export async function bench(ctx: BenchContext): Promise<Row[]> {
  TOTAL = Math.max(64, Math.round(512 * Math.min(1, ctx.scale))) * MiB;
  const runs = 3;
  const res: Record<string, number[]> = { "Bun.listen/connect (raw)": [], "node:net (raw)": [], "lib/net Conn": [] };
  for (let i = 0; i < runs; i++) {
    res["Bun.listen/connect (raw)"].push(await rawBun());
    res["node:net (raw)"].push(await rawNode());
    res["lib/net Conn"].push(await kvrConn());
  }
  const m = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, median(v)]));
  const bunRaw = m["Bun.listen/connect (raw)"];
  const nodeRaw = m["node:net (raw)"];
  const conn = m["lib/net Conn"];
  const best = Math.max(bunRaw, nodeRaw);
  const ab = await abortLatency(200);
  const mb = (x: number) => `${((x * MiB) / 1e6).toFixed(0)} MB/s`;
  ctx.log(`Bun raw ${mb(bunRaw)}, node:net raw ${mb(nodeRaw)}, lib/net Conn ${mb(conn)}`);
  return [
    {
      name: NAME,
      figure: `lib/net Conn ${mb(conn)}`,
      value: (conn * MiB) / 1e6,
      unit: "MB/s",
      reference: `raw Bun sockets ${mb(bunRaw)}, raw node:net ${mb(nodeRaw)}`,
      ratio: conn / best,
      goal: "Conn ≥ 0.9 × best raw API (kvr's own goal)",
      met: conn >= 0.9 * best,
      note: `${TOTAL / MiB} MiB one-way loopback in one process, median of ${runs}; abort of a blocked Conn read, 200 trials: p50 ${ab[100].toFixed(3)} ms, p99 ${ab[197].toFixed(3)} ms, max ${ab[199].toFixed(3)} ms`,
      details: { MBps: Object.fromEntries(Object.entries(res).map(([k, v]) => [k, v.map((x) => Math.round((x * MiB) / 1e6))])), abortMs: { p50: ab[100], p99: ab[197], max: ab[199] } },
    },
  ];
}

if (import.meta.main) {
  if (process.argv[2]) process.env.KVR_BENCH_SCALE = String(Number(process.argv[2]) / 512);
  await runStandalone(NAME, bench);
}
