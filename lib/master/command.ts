/**
 * kvr master — a Kvrocks-compatible master serving a checkpoint's files over the replication
 * protocol, with fault injection (see faults/). Runs until SIGINT/SIGTERM.
 */
import type { Output } from "../ui/output.ts";
import { EXIT } from "../ui/output.ts";
import { isNetError } from "../net/index.ts";
import { formatBytes, list, parseDuration, parseIntFlag, parsePort, parseSize, portInUse, single, UsageError } from "../ui/units.ts";
import { parseFault } from "./faults/spec.ts";
import { DEFAULT_GENERATE, DEFAULT_GENERATED_SEQ, parseGenerateSpec } from "./generate.ts";
import { startMaster, type MasterConfig } from "./server.ts";
import { dirSource, generatedSource, totalBytes } from "./source.ts";
import { checkpointSequence } from "../rocksdb/index.ts";
import { NODE_ID_LEN } from "../cluster/index.ts";

/** --rate: a bare number is MB/s in Kvrocks' sense (MiB/s, like max-replication-mb); units give bytes/s. */
export function parseRate(v: unknown): number {
  const s = String(v).trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1024 * 1024);
  return parseSize("rate", s);
}

/** Turn the CLI options into a master configuration (throws UsageError). */
export function configFromOptions(opts: Record<string, unknown>): MasterConfig {
  if (opts.dir !== undefined && opts.generate !== undefined) throw new UsageError("give either --dir or --generate, not both");
  const one = (k: string) => single(k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()), opts[k]);
  const seqText = one("seq");
  const seq = seqText === undefined ? undefined : parseIntFlag("seq", seqText, 1);
  const spec = one("dir") === undefined ? parseGenerateSpec(one("generate") ?? DEFAULT_GENERATE, seq ?? DEFAULT_GENERATED_SEQ) : null;
  const source = spec ? generatedSource(spec) : dirSource(one("dir")!);
  const pw = one("requirepass") ?? process.env.KVR_REQUIREPASS ?? "";
  const nodeId = one("nodeId") ?? null;
  if (nodeId !== null && Buffer.byteLength(nodeId, "utf8") !== NODE_ID_LEN) throw new UsageError(`--node-id: must be exactly ${NODE_ID_LEN} characters (got ${nodeId.length})`);
  return {
    host: one("bind") ?? "127.0.0.1",
    port: parsePort("port", one("port") ?? "6666"),
    source,
    dbName: one("dbName") ?? "change.me.db",
    password: pw === "" ? null : pw,
    rate: parseRate(one("rate") ?? "0"),
    faults: list(opts.fault).map(parseFault),
    seq: seq ?? DEFAULT_GENERATED_SEQ,
    heartbeatMs: Math.max(1, parseDuration("heartbeat", one("heartbeat") ?? "2s")),
    sendTimeoutMs: parseDuration("send-timeout", one("sendTimeout") ?? "30s"),
    idleMs: parseDuration("idle-timeout", one("idleTimeout") ?? "300s"),
    writeRate: parseWriteRate(one("writeRate") ?? "0"),
    walWindow: parseIntFlag("wal-window", one("walWindow") ?? "100000", 1, 100_000_000),
    writeTotal: parseIntFlag("write-total", one("writeTotal") ?? "0", 0),
    streamSeed: spec?.seed ?? 1,
    psync: parsePsyncMode(one("psync") ?? "accept"),
    nodeId,
  };
}

/** --psync: accept (a PSYNC inside the window streams, as on Kvrocks) | refuse (always a full sync). */
export function parsePsyncMode(v: string): "accept" | "refuse" {
  if (v === "accept" || v === "refuse") return v;
  throw new UsageError(`--psync: '${v}' is not one of accept, refuse`);
}

/** --write-rate: WriteBatches per second, `5000` or `5000/s` (0 = no writes). */
export function parseWriteRate(v: string): number {
  const m = /^\s*(\d+)\s*(?:\/s)?\s*$/.exec(v);
  if (!m || Number(m[1]) > 1_000_000) throw new UsageError(`--write-rate: '${v}' is not a number of batches per second between 0 and 1000000 (example: 5000)`);
  return Number(m[1]);
}

/**
 * --dir without --seq: the served checkpoint's own sequence (MANIFEST and WAL files), so a
 * replica that restored it continues with PSYNC → +OK. Unreadable → a usage error naming the fix.
 */
export async function dirDefaultSeq(dir: string): Promise<number> {
  let seq: number;
  try {
    seq = await checkpointSequence(dir);
  } catch (e) {
    throw new UsageError(`--dir: cannot read the checkpoint's sequence from '${dir}' (${(e as Error).message}); give --seq <n> to serve it anyway`);
  }
  if (seq < 1) throw new UsageError(`--dir: the checkpoint in '${dir}' has sequence 0 (an empty database); give --seq <n> (≥ 1)`);
  return seq;
}

export async function run(opts: Record<string, unknown>, out: Output): Promise<number> {
  const cfg = configFromOptions(opts);
  if (opts.dir !== undefined && opts.seq === undefined) cfg.seq = await dirDefaultSeq(String(opts.dir));
  const master = await startMaster(cfg, out).catch((e) => {
    throw isNetError(e, "ADDR_IN_USE") ? portInUse("the master's port", `${cfg.host}:${cfg.port}`) : e;
  });
  const { source } = cfg;
  out.event(
    "source",
    { description: source.description, files: source.files.length, bytes: totalBytes(source), seq: cfg.seq },
    `serving ${source.description}: ${source.files.length} files, ${formatBytes(totalBytes(source))}, sequence ${cfg.seq}`,
  );
  if (cfg.password === null && !["127.0.0.1", "localhost", "::1"].includes(cfg.host)) {
    out.warn(`listening on ${cfg.host} without a password: anyone who can reach it can fetch the checkpoint (set --requirepass)`);
  }
  if (cfg.faults.length) out.info(`faults: ${cfg.faults.map((f) => f.text).join(" ")}`);
  if (cfg.rate > 0) out.info(`rate limit ${formatBytes(cfg.rate)}/s shared by all fetch connections`);
  if (cfg.nodeId) out.info(`cluster mode: node id ${cfg.nodeId} (CLUSTERX, CLUSTER NODES); waiting for CLUSTERX SETNODES`);
  if (cfg.writeRate) out.info(`writing ${cfg.writeRate} batches/s after sequence ${cfg.seq}; PSYNC window ${cfg.walWindow} batches`);
  if (out.json) out.event("listening", { host: master.host, port: master.port });
  else out.info(`listening on ${master.host}:${master.port}`);

  const onUsr1 = () => {
    out.info("SIGUSR1: stalling every connection");
    void master.ctx.faults.add("stall");
  };
  const onUsr2 = () => {
    out.info("SIGUSR2: clearing every fault");
    void master.ctx.faults.clear();
  };
  process.on("SIGUSR1", onUsr1);
  process.on("SIGUSR2", onUsr2);
  const signal = await new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
  out.info(`${signal}: stopping`);
  process.off("SIGUSR1", onUsr1);
  process.off("SIGUSR2", onUsr2);
  await Promise.race([master.close(), Bun.sleep(700)]);
  out.event("stopped", { signal });
  return EXIT.OK;
}
